import type { SnapshotStore } from '../jobs/kind.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { chooseSnapshot, filesToCopy, type Snapshot, type SnapshotFile } from './snapshots.ts'

/*
 * A participant's snapshot cache (issue 15, the seed's snapshot component): a configurable number
 * of folders, each holding the input files (fingerprint shards) of the tasks it last served. A new
 * task takes the folder the similarity function picks (`snapshots.ts`); only the files it lacks are
 * copied, and a folder that scores 0 everywhere is wiped first. What the cache holds is what the
 * participant states when it asks for work, so the coordinator can prefer tasks whose inputs it
 * already has. Where the folders live is a `SnapshotStorage`: files on disk in Node
 * (`snapshot-disk.ts`), Cache Storage in a browser (`peer/browser/snapshot-storage.ts`).
 */

/** An input file of a task: its class, its location (its identity), and where to fetch it. */
export interface CachedFile extends SnapshotFile {
  url: string
  /** A name for it inside the folder (unique within a task). */
  name: string
}

/** Fetches a file's bytes (bounded by the caller). */
export type FetchFile = (url: string, signal?: AbortSignal) => Promise<Uint8Array>

/** Where snapshot folders are kept. Folder ids are short names (`snapshot-0`). */
export interface SnapshotStorage {
  /** Removes a folder and everything in it. */
  wipe(folder: string): Promise<void>
  write(folder: string, name: string, bytes: Uint8Array): Promise<void>
  remove(folder: string, name: string): Promise<void>
  /** A file's bytes; throws `MessageTooLargeError` past `maxBytes`, `SnapshotCacheError` if missing. */
  read(folder: string, name: string, maxBytes: number): Promise<Uint8Array>
  /** The names in a folder (tests, diagnostics). */
  list(folder: string): Promise<string[]>
}

/** A folder made ready for a task. */
export interface PreparedSnapshot {
  folder: string
  /** Files copied for this task, and their bytes. */
  copied: number
  copiedBytes: number
  /** Files it already held. */
  reused: number
  wiped: boolean
}

/** A snapshot folder could not be made ready, or a file is not in it. */
export class SnapshotCacheError extends CrowdmeshError {}

/** Options of a snapshot cache. */
export interface SnapshotCacheInit {
  storage: SnapshotStorage
  /** How many folders (default 3). */
  folders?: number
  fetch: FetchFile
  /** The clock ordering folders by use (default Date.now). */
  now?: () => number
  /**
   * The most bytes its folders may hold, read before each task (a browser's allowance can grow once
   * the person agrees): the least recently used folders are wiped to stay under it. Default: no limit.
   */
  maxBytes?: () => number
}

interface Folder extends Snapshot {
  names: Map<string, string>
  sizes: Map<string, number>
  label: string | undefined
  nextName: number
}

export class SnapshotCache {
  private readonly storage: SnapshotStorage
  private readonly fetch: FetchFile
  private readonly now: () => number
  private readonly maxBytes: () => number
  private readonly snapshots: Folder[]
  private tick = 0

  constructor(init: SnapshotCacheInit) {
    this.storage = init.storage
    this.fetch = init.fetch
    this.now = init.now ?? Date.now
    this.maxBytes = init.maxBytes ?? (() => Number.POSITIVE_INFINITY)
    this.snapshots = Array.from({ length: init.folders ?? 3 }, (_, i) => ({
      id: `snapshot-${i}`,
      files: [],
      usedAt: -1 - i,
      names: new Map(),
      sizes: new Map(),
      label: undefined,
      nextName: 0,
    }))
  }

  /** Every file the cache holds (what a participant states when it asks for work). */
  holds(): SnapshotFile[] {
    return this.snapshots.flatMap((s) => s.files)
  }

  /** Bytes its folders hold. */
  get bytes(): number {
    let total = 0
    for (const s of this.snapshots) for (const size of s.sizes.values()) total += size
    return total
  }

  /** Whether a task with these input locations would copy nothing. */
  holdsAll(locations: readonly string[]): boolean {
    return this.snapshots.some((s) => locations.every((l) => s.files.some((f) => f.location === l)))
  }

  /** The labels of the folders that hold files, most recently used first. */
  labels(): string[] {
    return this.snapshots
      .filter((s) => s.label !== undefined && s.files.length > 0)
      .sort((a, b) => b.usedAt - a.usedAt)
      .map((s) => s.label!)
  }

  /**
   * Makes a folder hold exactly `files` (copying only what it lacks), and returns it; `label` names
   * what it holds now (a match run's shard).
   */
  async prepare(
    files: readonly CachedFile[],
    signal?: AbortSignal,
    label?: string,
  ): Promise<PreparedSnapshot> {
    const choice = chooseSnapshot(this.snapshots, files)
    if (choice === undefined) throw new SnapshotCacheError('the cache has no folders')
    const snapshot = this.snapshots.find((s) => s.id === choice.snapshot.id)!
    if (choice.wipe) await this.wipe(snapshot)
    // Files of classes that no longer agree go; files the task shares with the folder stay.
    const keep = new Set(files.map((f) => f.location))
    for (const [location, name] of snapshot.names)
      if (!keep.has(location)) {
        await this.storage.remove(snapshot.id, name)
        snapshot.names.delete(location)
        snapshot.sizes.delete(location)
      }
    snapshot.files = snapshot.files.filter((f) => keep.has(f.location))
    const missing = filesToCopy(snapshot, files) as CachedFile[]
    let copiedBytes = 0
    let copied = 0
    for (const file of missing) {
      signal?.throwIfAborted()
      // A location is one file whatever classes it serves in (a video both queried and
      // referenced): held already, it only gains the class.
      if (!snapshot.names.has(file.location)) {
        const bytes = await this.fetch(file.url, signal)
        // Names are never reused within a folder: a name freed by a removed file could otherwise
        // be taken by another location while a stale mapping still pointed at it.
        const name = `${snapshot.nextName++}-${file.name.replace(/[^\w.-]/g, '_')}`
        await this.storage.write(snapshot.id, name, bytes)
        snapshot.names.set(file.location, name)
        snapshot.sizes.set(file.location, bytes.length)
        copiedBytes += bytes.length
        copied++
      }
      snapshot.files = [...snapshot.files, { class: file.class, location: file.location }]
    }
    // Strictly increasing: two tasks in one millisecond still have an order.
    this.tick = Math.max(this.now(), this.tick + 1)
    snapshot.usedAt = this.tick
    snapshot.label = label
    // Within its allowance: the least recently used other folders go first.
    const others = this.snapshots
      .filter((s) => s !== snapshot && s.files.length > 0)
      .sort((a, b) => a.usedAt - b.usedAt)
    let limit = this.maxBytes()
    for (const other of others) {
      if (this.bytes <= limit) break
      await this.wipe(other)
      limit = this.maxBytes()
    }
    return {
      folder: snapshot.id,
      copied,
      copiedBytes,
      reused: files.length - missing.length,
      wiped: choice.wipe,
    }
  }

  /** A file of a prepared folder, by location. */
  read(folder: string, location: string, maxBytes: number): Promise<Uint8Array> {
    const name = this.snapshots.find((s) => s.id === folder)?.names.get(location)
    if (name === undefined)
      return Promise.reject(new SnapshotCacheError(`${location.slice(0, 128)} is not in the snapshot`))
    return this.storage.read(folder, name, maxBytes)
  }

  /** The files stored, folder by folder (tests, diagnostics). */
  async stored(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {}
    for (const s of this.snapshots) out[s.id] = await this.storage.list(s.id)
    return out
  }

  private async wipe(snapshot: Folder): Promise<void> {
    await this.storage.wipe(snapshot.id)
    snapshot.files = []
    snapshot.names.clear()
    snapshot.sizes.clear()
    snapshot.label = undefined
  }
}

/** A snapshot cache as a worker's environment offers it (`WorkerEnv.snapshots`). */
export function snapshotStore(cache: SnapshotCache): SnapshotStore {
  return {
    labels: () => cache.labels(),
    async prepare(files, label, signal) {
      const prepared = await cache.prepare(files, signal, label)
      return {
        copiedBytes: prepared.copiedBytes,
        read: (location, maxBytes) => cache.read(prepared.folder, location, maxBytes),
      }
    },
  }
}
