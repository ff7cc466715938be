import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SnapshotStore } from '../jobs/kind.ts'
import { CrowdmeshError, MessageTooLargeError } from '../protocol/errors.ts'
import { chooseSnapshot, filesToCopy, type Snapshot, type SnapshotFile } from './snapshots.ts'

/*
 * A Node participant's snapshot cache (issue 15, the seed's snapshot component): a configurable
 * number of folders on disk, each holding the input files (fingerprint shards) of the tasks it last
 * served. A new task takes the folder the similarity function picks (`snapshots.ts`); only the
 * files it lacks are copied, and a folder that scores 0 everywhere is wiped first. What the cache
 * holds is what the participant states when it asks for work, so the coordinator can prefer tasks
 * whose inputs it already has. The next task's files can be fetched while the current one computes
 * (`prepare` is independent of the task running).
 */

/** An input file of a task: its class, its location (its identity), and where to fetch it. */
export interface CachedFile extends SnapshotFile {
  url: string
  /** A name for it inside the folder (unique within a task). */
  name: string
}

/** Fetches a file's bytes (bounded by the caller). */
export type FetchFile = (url: string, signal?: AbortSignal) => Promise<Uint8Array>

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

/** A snapshot folder could not be made ready. */
export class SnapshotCacheError extends CrowdmeshError {}

/** Options of a snapshot cache. */
export interface SnapshotCacheInit {
  /** Where its folders live. */
  root: string
  /** How many folders (default 3). */
  folders?: number
  fetch: FetchFile
  /** The clock ordering folders by use (default Date.now). */
  now?: () => number
}

export class SnapshotCache {
  private readonly root: string
  private readonly fetch: FetchFile
  private readonly now: () => number
  private readonly snapshots: (Snapshot & {
    names: Map<string, string>
    label: string | undefined
    nextName: number
  })[]
  private tick = 0

  constructor(init: SnapshotCacheInit) {
    this.root = init.root
    this.fetch = init.fetch
    this.now = init.now ?? Date.now
    this.snapshots = Array.from({ length: init.folders ?? 3 }, (_, i) => ({
      id: `snapshot-${i}`,
      files: [],
      usedAt: -1 - i,
      names: new Map(),
      label: undefined,
      nextName: 0,
    }))
  }

  /** Every file the cache holds (what a participant states when it asks for work). */
  holds(): SnapshotFile[] {
    return this.snapshots.flatMap((s) => s.files)
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
    const folder = join(this.root, snapshot.id)
    if (choice.wipe) {
      await rm(folder, { recursive: true, force: true })
      snapshot.files = []
      snapshot.names.clear()
    }
    await mkdir(folder, { recursive: true })
    // Files of classes that no longer agree go; files the task shares with the folder stay.
    const keep = new Set(files.map((f) => f.location))
    for (const [location, name] of snapshot.names)
      if (!keep.has(location)) {
        await rm(join(folder, name), { force: true })
        snapshot.names.delete(location)
      }
    snapshot.files = snapshot.files.filter((f) => keep.has(f.location))
    const missing = filesToCopy(snapshot, files) as CachedFile[]
    let copiedBytes = 0
    let copied = 0
    for (const file of missing) {
      signal?.throwIfAborted()
      // A location is one file on disk whatever classes it serves in (a video both queried and
      // referenced): held already, it only gains the class.
      if (!snapshot.names.has(file.location)) {
        const bytes = await this.fetch(file.url, signal)
        // Names are never reused within a folder: a name freed by a removed file could otherwise
        // be taken by another location while a stale mapping still pointed at it.
        const name = `${snapshot.nextName++}-${file.name.replace(/[^\w.-]/g, '_')}`
        await writeFile(join(folder, name), bytes)
        snapshot.names.set(file.location, name)
        copiedBytes += bytes.length
        copied++
      }
      snapshot.files = [...snapshot.files, { class: file.class, location: file.location }]
    }
    snapshot.usedAt = Math.max(this.now(), ++this.tick)
    snapshot.label = label
    return {
      folder,
      copied,
      copiedBytes,
      reused: files.length - missing.length,
      wiped: choice.wipe,
    }
  }

  /** The path of a file in a prepared folder. */
  pathOf(folder: string, location: string): string | undefined {
    const snapshot = this.snapshots.find((s) => join(this.root, s.id) === folder)
    const name = snapshot?.names.get(location)
    return name === undefined ? undefined : join(folder, name)
  }

  /** The files on disk, folder by folder (tests, diagnostics). */
  async onDisk(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {}
    for (const s of this.snapshots)
      out[s.id] = await readdir(join(this.root, s.id)).catch(() => [] as string[])
    return out
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
        async read(location, maxBytes) {
          const path = cache.pathOf(prepared.folder, location)
          if (path === undefined)
            throw new SnapshotCacheError(`${location.slice(0, 128)} is not in the snapshot`)
          const size = (await stat(path)).size
          if (size > maxBytes) throw new MessageTooLargeError(size, maxBytes)
          return new Uint8Array(await readFile(path))
        },
      }
    },
  }
}
