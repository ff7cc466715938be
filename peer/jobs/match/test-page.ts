import { browserVideos, cpuLuma, type LumaTransform, webglLumaTransform } from './browser-videos.ts'

/*
 * The page script of test-page.html: the browser's video fingerprinting (WebCodecs or <video>, the
 * CPU or WebGL transform), driven from Node through `window.videoFingerprintTest`
 * (test/e2e/video-fingerprint.test.ts, and the matching section of `crowdmesh bench`).
 */

/** A video to fingerprint in the page. */
export interface VideoFingerprintRequest {
  url: string
  backend: 'cpu' | 'webgl'
  /** `element`: the <video> element whatever the container (default: WebCodecs where it can). */
  decoder?: 'auto' | 'element'
  /** Return the first this many sampled frames' luminance too (base64). */
  lumaFrames?: number
  first: number
  count: number
  phases: number[]
  duration: number
}

/** Its fingerprints (bits as base64), or the error that stopped them. */
export interface VideoFingerprintReport {
  backend: string
  fingerprints: { segment: number; phase: number; still: boolean; bits: string }[]
  frames: number
  lumas?: string[]
  ms: number
  error?: { name: string; message: string }
}

/** What the page offers Node. */
export interface VideoFingerprintTestApi {
  fingerprint(request: VideoFingerprintRequest): Promise<VideoFingerprintReport>
}

declare global {
  interface Window {
    videoFingerprintTest?: VideoFingerprintTestApi
  }
}

const transforms = new Map<string, Promise<LumaTransform>>()

function transformFor(backend: 'cpu' | 'webgl'): Promise<LumaTransform> {
  let transform = transforms.get(backend)
  if (transform === undefined) {
    transform =
      backend === 'cpu'
        ? Promise.resolve(cpuLuma())
        : import('./webgl-luma.ts').then((m) => webglLumaTransform(m.openWebglLuma()))
    transforms.set(backend, transform)
  }
  return transform
}

function base64(bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(text)
}

window.videoFingerprintTest = {
  async fingerprint(request) {
    let frames = 0
    const lumas: string[] = []
    const begun = performance.now()
    let backend: string = request.backend
    try {
      const transform = await transformFor(request.backend)
      backend = transform.backend
      const videos = browserVideos({
        transform,
        decoder: request.decoder ?? 'auto',
        onFrames: (n) => (frames = n),
        onLuma: (luma) => {
          if (lumas.length < (request.lumaFrames ?? 0)) lumas.push(base64(luma))
        },
      })
      const file = await videos.fingerprint(request.url, request)
      return {
        backend,
        frames,
        ...(lumas.length > 0 && { lumas }),
        ms: performance.now() - begun,
        fingerprints: file.fingerprints.map((f) => ({ ...f, bits: base64(f.bits) })),
      }
    } catch (error) {
      const e = error as Error
      return {
        backend,
        frames,
        ...(lumas.length > 0 && { lumas }),
        ms: performance.now() - begun,
        fingerprints: [],
        error: { name: e.name, message: e.message },
      }
    }
  },
}

/** The browser's snapshot cache (Cache Storage), driven from Node through `window.snapshotTest`. */
export interface SnapshotTestApi {
  /**
   * Runs tasks of `shards` (each a list of file URLs as references, plus a query URL) through a
   * fresh cache that may keep `askAboveBytes` without asking, answering the question with `answer`.
   */
  run(request: {
    tasks: { shard: string; references: string[]; query: string }[]
    askAboveBytes: number
    answer: boolean
  }): Promise<{
    /** Each task: whether every file read back as the bytes fetched, and bytes copied. */
    tasks: { intact: boolean; copiedBytes: number }[]
    labels: string[]
    bytes: number
    asked: number[]
    allowance: { bytes: number; state: string }
    caches: string[]
  }>
}

declare global {
  interface Window {
    snapshotTest?: SnapshotTestApi
  }
}

window.snapshotTest = {
  async run(request) {
    const { browserSnapshots } = await import('../../browser/snapshot-storage.ts')
    const asked: number[] = []
    const cache = browserSnapshots({
      askAboveBytes: request.askAboveBytes,
      ask: (bytes) => {
        asked.push(bytes)
        return Promise.resolve(request.answer)
      },
    })
    const tasks = []
    for (const task of request.tasks) {
      const files = [
        ...task.references.map((url, i) => ({ class: 'reference', location: url, url, name: `ref-${i}` })),
        { class: 'ugc', location: task.query, url: task.query, name: 'query' },
      ]
      const folder = await cache.store.prepare(files, task.shard)
      let intact = true
      for (const file of files) {
        const stored = await folder.read(file.location, 64 * 2 ** 20)
        const fetched = new Uint8Array(await (await fetch(file.url)).arrayBuffer())
        intact &&= stored.length === fetched.length && stored.every((b, i) => b === fetched[i])
      }
      tasks.push({ intact, copiedBytes: folder.copiedBytes })
      // Let the question's answer land between tasks, as it would between a person's clicks.
      await new Promise((r) => setTimeout(r, 50))
    }
    return {
      tasks,
      labels: cache.store.labels(),
      bytes: cache.bytes(),
      asked,
      allowance: cache.allowance(),
      caches: (await caches.keys()).filter((name) => name.startsWith('crowdmesh-snapshots')),
    }
  },
}
