import { randomUUID } from 'node:crypto'
import { createWriteStream, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { FrameFetchError, MessageTooLargeError } from '../protocol/errors.ts'
import { fetchBytes } from '../participant/frame-source.ts'
import { SnapshotCache, snapshotStore } from '../pool/snapshot-cache.ts'
import { diskStorage } from '../pool/snapshot-disk.ts'
import { cachedFiles } from './file-cache.ts'
import type { FileSource, SnapshotStore, VideoFingerprinter, WorkerCapability, WorkerEnv } from './kind.ts'
import { fingerprintFile } from './match/ffmpeg-frames.ts'

/*
 * What a Node participant offers its workers beyond frames: video fingerprinting with ffmpeg and a
 * bounded, cached file source. Both are the participant's, so a lying coordinator can make it fetch
 * only what the bounds allow.
 */

/** Limits of the Node environment. */
export const nodeEnvLimits = {
  /** Largest video downloaded to fingerprint, bytes. */
  maxVideoBytes: 2 * 1024 ** 3,
  /** Videos kept downloaded (tasks of one video often come to the same participant). */
  videosKept: 4,
  /** Bytes of fetched files kept in memory. */
  fileCacheBytes: 64 * 1024 * 1024,
  /** Snapshot folders on disk (the seed's snapshot cache: a few reference shards kept). */
  snapshotFolders: 3,
  /** Largest file copied into a snapshot folder, bytes. */
  maxSnapshotFileBytes: 64 * 1024 * 1024,
} as const

/** The options of a Node participant's environment. */
export interface NodeEnvInit {
  /** Where its snapshot folders live (default: a folder of its own under the temp folder, removed at exit). */
  snapshotRoot?: string
  snapshotFolders?: number
  /** How snapshot folders fetch their files (default: bounded, uncached). */
  fetch?: (url: string, signal?: AbortSignal) => Promise<Uint8Array>
}

/** The capabilities and the environment of a Node participant. */
export function nodeWorkerEnv(init: NodeEnvInit = {}): {
  capabilities: WorkerCapability[]
  env: Omit<WorkerEnv, 'frames'>
} {
  const files = nodeFiles()
  // Snapshot folders copy through the file cache, which a prefetch has often filled already.
  const fetch = (url: string, signal?: AbortSignal) =>
    files.bytes(url, nodeEnvLimits.maxSnapshotFileBytes, signal)
  return {
    capabilities: ['videos', 'files'],
    env: { videos: nodeVideos(), files, snapshots: nodeSnapshots({ ...init, fetch }) },
  }
}

/** Snapshot roots this process made (removed when it exits). */
const ownRoots: string[] = []

/** Snapshot folders on disk (see `SnapshotCache`); a folder of its own is removed when the process exits. */
export function nodeSnapshots(init: NodeEnvInit = {}): SnapshotStore {
  let root = init.snapshotRoot
  if (root === undefined) {
    root = join(tmpdir(), `crowdmesh-snapshots-${process.pid}-${randomUUID().slice(0, 8)}`)
    if (ownRoots.length === 0)
      process.once('exit', () => {
        for (const own of ownRoots) rmSync(own, { recursive: true, force: true })
      })
    ownRoots.push(root)
  }
  const cache = new SnapshotCache({
    storage: diskStorage(root),
    folders: init.snapshotFolders ?? nodeEnvLimits.snapshotFolders,
    fetch: init.fetch ?? ((url, signal) => fetchBytes(url, nodeEnvLimits.maxSnapshotFileBytes, signal)),
  })
  return snapshotStore(cache)
}

/** Fetches bytes by URL (file:, http:, https:), at most `maxBytes`, keeping recent ones. */
export function nodeFiles(): FileSource {
  return cachedFiles(fetchBytes, nodeEnvLimits.fileCacheBytes)
}

/** Fingerprints videos by URL with ffmpeg; an http(s) video is downloaded first (ffmpeg then seeks freely). */
export function nodeVideos(): VideoFingerprinter {
  const downloads = new Map<string, Promise<string>>()
  let downloadCount = 0
  let folder: Promise<string> | undefined
  const local = (url: string, signal?: AbortSignal): Promise<string> => {
    if (url.startsWith('file:')) return Promise.resolve(fileURLToPath(url))
    if (!/^https?:/.test(url))
      return Promise.reject(new FrameFetchError(`${url.slice(0, 64)}: not a video URL`))
    let path = downloads.get(url)
    if (path === undefined) {
      folder ??= mkdtemp(join(tmpdir(), 'crowdmesh-videos-'))
      // Named now, not when the folder is ready: two downloads begun in one tick once shared a name
      // (the count and the clock read later were equal), and one video overwrote the other.
      const name = `${++downloadCount}-${randomUUID().slice(0, 8)}`
      path = folder.then((dir) => download(url, join(dir, name), signal))
      downloads.set(url, path)
      path.catch(() => downloads.delete(url))
      // Keep a few: the oldest download goes, file and all.
      while (downloads.size > nodeEnvLimits.videosKept) {
        const [oldest, file] = downloads.entries().next().value!
        downloads.delete(oldest)
        void file.then((p) => rm(p, { force: true })).catch(() => {})
      }
    }
    return path
  }
  return {
    async fingerprint(url, range) {
      const path = await local(url, range.signal)
      return fingerprintFile(path, range)
    },
  }
}

async function download(url: string, path: string, signal?: AbortSignal): Promise<string> {
  const response = await fetch(url, signal !== undefined ? { signal } : {})
  if (!response.ok || response.body === null)
    throw new FrameFetchError(`${url}: ${response.status} ${response.statusText}`)
  const declared = Number(response.headers.get('content-length') ?? 0)
  if (declared > nodeEnvLimits.maxVideoBytes)
    throw new MessageTooLargeError(declared, nodeEnvLimits.maxVideoBytes)
  let length = 0
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>)
  body.on('data', (chunk: Buffer) => {
    length += chunk.length
    if (length > nodeEnvLimits.maxVideoBytes)
      body.destroy(new MessageTooLargeError(length, nodeEnvLimits.maxVideoBytes))
  })
  await pipeline(body, createWriteStream(path), signal !== undefined ? { signal } : {})
  return path
}
