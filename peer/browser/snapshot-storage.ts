import type { SnapshotStore } from '../jobs/kind.ts'
import { readLimited } from '../participant/read-limited.ts'
import { AbortError, FrameFetchError, MessageTooLargeError } from '../protocol/errors.ts'
import {
  SnapshotCache,
  SnapshotCacheError,
  type SnapshotStorage,
  snapshotStore,
} from '../pool/snapshot-cache.ts'

/*
 * A browser participant's snapshot cache (issue 15): the same folders and similarity function as a
 * Node participant's, kept in Cache Storage (one cache a folder) so that a match run's reference
 * shards survive between tasks without filling the page's memory. It stays small unless the person
 * agrees: past `askAboveBytes` the page asks once (`ask`), and only a yes lets it grow, to a share
 * of what the browser's quota leaves (and then asks the browser to keep it: `persist`). The task
 * never waits for the answer: until a yes, the least recently used folders are dropped instead.
 */

/** The browser cache's defaults. */
export const browserSnapshotDefaults = {
  folders: 3,
  /** What it may keep without asking, bytes. */
  askAboveBytes: 32 * 1024 * 1024,
  /** With a yes: at most this, bytes… */
  grantedBytes: 1024 * 1024 * 1024,
  /** …and at most this share of the quota the browser says is left. */
  quotaShare: 0.5,
  /** Largest file kept, bytes. */
  maxFileBytes: 64 * 1024 * 1024,
  /** Caches are named with this (those of an earlier visit are cleared: their index is not kept). */
  prefix: 'crowdmesh-snapshots',
} as const

/** Snapshot folders as caches of Cache Storage. */
export function cacheStorage(prefix: string = browserSnapshotDefaults.prefix): SnapshotStorage {
  const cacheOf = (folder: string) => caches.open(`${prefix}-${folder}`)
  // Cache Storage is keyed by request URL: a made-up origin that no page serves.
  const key = (name: string) => `https://snapshots.crowdmesh.invalid/${encodeURIComponent(name)}`
  return {
    async wipe(folder) {
      await caches.delete(`${prefix}-${folder}`)
    },
    async write(folder, name, bytes) {
      await (await cacheOf(folder)).put(key(name), new Response(bytes as Uint8Array<ArrayBuffer>))
    },
    async remove(folder, name) {
      await (await cacheOf(folder)).delete(key(name))
    },
    async read(folder, name, maxBytes) {
      const response = await (await cacheOf(folder)).match(key(name))
      if (response === undefined) throw new SnapshotCacheError(`${name} is gone from ${folder}`)
      try {
        return await readLimited(response, name, maxBytes)
      } catch (error) {
        if (error instanceof FrameFetchError) throw new MessageTooLargeError(maxBytes + 1, maxBytes)
        throw error
      }
    },
    async list(folder) {
      const requests = await (await cacheOf(folder)).keys()
      return requests.map((r) => decodeURIComponent(new URL(r.url).pathname.slice(1)))
    },
  }
}

/** Options of a browser participant's snapshot cache. */
export interface BrowserSnapshotsInit {
  /**
   * Asks the person whether the page may keep up to `bytes` on this device; resolves with the
   * answer (the app shows a prompt). Asked at most once a visit.
   */
  ask: (bytes: number) => Promise<boolean>
  folders?: number
  askAboveBytes?: number
  prefix?: string
  /** How folders fetch their files (default: bounded, uncached). */
  fetch?: (url: string, signal?: AbortSignal) => Promise<Uint8Array>
}

/** What the cache is allowed, as the app shows it. */
export interface SnapshotAllowance {
  bytes: number
  /** `unasked`, `asking`, or the answer. */
  state: 'unasked' | 'asking' | 'granted' | 'declined'
}

/** The browser's snapshot cache, for `WorkerEnv.snapshots`; caches of an earlier visit are cleared first. */
export function browserSnapshots(init: BrowserSnapshotsInit): {
  store: SnapshotStore
  allowance: () => SnapshotAllowance
  bytes: () => number
} {
  const prefix = init.prefix ?? browserSnapshotDefaults.prefix
  const allowance: SnapshotAllowance = {
    bytes: init.askAboveBytes ?? browserSnapshotDefaults.askAboveBytes,
    state: 'unasked',
  }
  const cleared = clearEarlier(prefix)
  const grow = async () => {
    allowance.state = 'asking'
    const yes = await init.ask(browserSnapshotDefaults.grantedBytes).catch(() => false)
    if (!yes) {
      allowance.state = 'declined'
      return
    }
    const estimate = await navigator.storage?.estimate?.().catch(() => undefined)
    const left = estimate?.quota === undefined ? Infinity : estimate.quota - (estimate.usage ?? 0)
    allowance.bytes = Math.max(
      allowance.bytes,
      Math.min(browserSnapshotDefaults.grantedBytes, browserSnapshotDefaults.quotaShare * left),
    )
    allowance.state = 'granted'
    // Asked and agreed: the browser is asked not to evict it under storage pressure.
    await navigator.storage?.persist?.().catch(() => false)
  }
  const cache = new SnapshotCache({
    storage: cacheStorage(prefix),
    folders: init.folders ?? browserSnapshotDefaults.folders,
    fetch: init.fetch ?? ((url, signal) => fetchBounded(url, browserSnapshotDefaults.maxFileBytes, signal)),
    maxBytes: () => {
      // Read when the folders hold more than allowed: the first time, the person is asked (the
      // task goes on meanwhile, within the small allowance).
      if (allowance.state === 'unasked' && cache.bytes > allowance.bytes) void grow()
      return allowance.bytes
    },
  })
  const store = snapshotStore(cache)
  return {
    store: {
      labels: () => store.labels(),
      prepare: async (files, label, signal) => {
        await cleared
        return store.prepare(files, label, signal)
      },
    },
    allowance: () => ({ ...allowance }),
    bytes: () => cache.bytes,
  }
}

async function clearEarlier(prefix: string): Promise<void> {
  for (const name of await caches.keys().catch(() => [] as string[]))
    if (name.startsWith(`${prefix}-`)) await caches.delete(name)
}

/** Fetches a URL's bytes, at most `maxBytes`. */
export async function fetchBounded(url: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
  let response: Response
  try {
    response = await fetch(url, signal ? { signal } : {})
  } catch (error) {
    if (signal?.aborted) throw new AbortError()
    throw new FrameFetchError(`cannot fetch ${url}: ${(error as Error).message}`)
  }
  if (!response.ok) throw new FrameFetchError(`cannot fetch ${url}: HTTP ${response.status}`)
  return readLimited(response, url, maxBytes)
}
