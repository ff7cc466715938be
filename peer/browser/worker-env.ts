import type { FileSource, VideoFingerprinter, WorkerCapability, WorkerEnv } from '../jobs/kind.ts'
import { cachedFiles } from '../jobs/file-cache.ts'
import {
  browserSnapshotDefaults,
  browserSnapshots,
  fetchBounded,
  type SnapshotAllowance,
} from './snapshot-storage.ts'

/*
 * What a browser participant offers its workers beyond frames: video fingerprinting (WebCodecs or
 * the <video> element, the per-frame transform on the GPU when the app computes there) and a
 * bounded, cached file source. The video code (mp4box.js, the WebGL program) is loaded on the first
 * video task, as a kind's worker is.
 */

/** Bytes of fetched files a page keeps (fingerprint files of one match run's references). */
const fileCacheBytes = 32 * 1024 * 1024

/** The capabilities and the environment of a browser participant. */
export function browserWorkerEnv(init: {
  gpu: boolean
  onVideoBackend?: (backend: string) => void
  /**
   * Asks the person whether match data may be kept on the device (`browserSnapshots`); without it,
   * or without Cache Storage (a page outside a secure context), match tasks keep their last slice
   * in memory only.
   */
  askStorage?: (bytes: number) => Promise<boolean>
}): {
  capabilities: WorkerCapability[]
  env: Omit<WorkerEnv, 'frames'>
  /** What the snapshot cache holds and may hold, when there is one. */
  storage?: { bytes: () => number; allowance: () => SnapshotAllowance }
} {
  const canPlay = typeof document !== 'undefined'
  const files = browserFiles()
  const snapshots =
    init.askStorage !== undefined && typeof caches !== 'undefined'
      ? browserSnapshots({
          ask: init.askStorage,
          // Through the file cache, which a prefetch has often filled already.
          fetch: (url, signal) => files.bytes(url, browserSnapshotDefaults.maxFileBytes, signal),
        })
      : undefined
  return {
    capabilities: canPlay ? ['videos', 'files'] : ['files'],
    env: {
      ...(canPlay && { videos: lazyVideos(init) }),
      files,
      ...(snapshots !== undefined && { snapshots: snapshots.store }),
    },
    ...(snapshots !== undefined && { storage: { bytes: snapshots.bytes, allowance: snapshots.allowance } }),
  }
}

function lazyVideos(init: { gpu: boolean; onVideoBackend?: (backend: string) => void }): VideoFingerprinter {
  let loaded: Promise<VideoFingerprinter> | undefined
  const load = async (): Promise<VideoFingerprinter> => {
    const videos = await import('../jobs/match/browser-videos.ts')
    let transform = videos.cpuLuma()
    if (init.gpu) {
      try {
        const { openWebglLuma } = await import('../jobs/match/webgl-luma.ts')
        transform = videos.webglLumaTransform(openWebglLuma())
      } catch (error) {
        // No WebGL 2 program here: frames are reduced on the processor, with the same result.
        console.warn(`crowdmesh: video frames on the CPU: ${(error as Error).message}`)
      }
    }
    init.onVideoBackend?.(transform.backend)
    return videos.browserVideos({ transform })
  }
  return {
    fingerprint: async (url, range) => {
      loaded ??= load()
      return (await loaded).fingerprint(url, range)
    },
  }
}

/** Fetches bytes by URL, at most `maxBytes`, keeping recent ones. */
export function browserFiles(): FileSource {
  return cachedFiles(fetchBounded, fileCacheBytes)
}
