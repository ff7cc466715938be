import { type FrameImage, frameImage } from '../participant/frame-image.ts'
import type { FrameSource } from '../participant/frame-source.ts'
import { readLimited } from '../participant/read-limited.ts'
import { frameCacheDefaults } from '../protocol/defaults.ts'
import { AbortError, CrowdmeshError, FrameFetchError } from '../protocol/errors.ts'

/**
 * Decodes an image file's bytes in the browser into a frame image with the file's own pixel values:
 * no colour-space conversion, no premultiplication, so an opaque PNG gives bytes identical to pngjs in
 * Node (the WebGL test checks it on templeSparseRing). Pixels with partial alpha pass through the 2D
 * canvas, which stores them premultiplied, and may differ by rounding; camera frames are opaque.
 * A broken file raises `FrameFetchError`.
 */
export async function decodeImage(bytes: Uint8Array, what = 'image'): Promise<FrameImage> {
  let bitmap: ImageBitmap
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
    })
  } catch (cause) {
    throw new FrameFetchError(`${what} is not a readable image: ${(cause as Error).message}`, { cause })
  }
  try {
    const { width, height } = bitmap
    if (width === 0 || height === 0) throw new FrameFetchError(`${what} has no pixels`)
    const context = canvas2d(width, height)
    context.globalCompositeOperation = 'copy'
    context.drawImage(bitmap, 0, 0)
    const { data } = context.getImageData(0, 0, width, height)
    return frameImage(width, height, new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
  } finally {
    bitmap.close()
  }
}

type Context2d = OffscreenCanvasRenderingContext2D | CanvasRenderingContext2D

function canvas2d(width: number, height: number): Context2d {
  // willReadFrequently keeps the canvas on the CPU: a GPU canvas would be read back anyway.
  const options: CanvasRenderingContext2DSettings = {
    alpha: true,
    willReadFrequently: true,
    colorSpace: 'srgb',
  }
  let context: Context2d | null
  if (typeof OffscreenCanvas !== 'undefined') {
    context = new OffscreenCanvas(width, height).getContext('2d', options)
  } else {
    const canvas = document.createElement('canvas')
    canvas.width = width
    canvas.height = height
    context = canvas.getContext('2d', options)
  }
  if (context === null) throw new FrameFetchError('this browser gives no 2D canvas to decode frames with')
  return context
}

/** Options of a browser frame source. */
export interface BrowserFrameSourceInit {
  /** Decoded frames kept in memory (default `frameCacheDefaults.maxFrames`). */
  maxFrames?: number
  /** Largest image file accepted, bytes (default 64 MiB). */
  maxBytes?: number
  /** Applied to a frame's fetched bytes before decoding (e.g. decrypting a frame sent under a per-frame key). */
  transform?: (bytes: Uint8Array, url: string) => Promise<Uint8Array>
}

interface Entry {
  readonly promise: Promise<FrameImage>
  readonly controller: AbortController
  /** Callers still waiting; when the last one aborts, the fetch is aborted too. */
  waiting: number
  settled: boolean
}

/**
 * The browser's frame source: fetches http(s):, data: and blob: URLs with `fetch`, decodes them with
 * `decodeImage`, and keeps the most recently used frames decoded. Concurrent requests for one URL share
 * one fetch, which is aborted only when every caller waiting on it has aborted; a failed fetch is not
 * cached, so a retry can succeed.
 */
export function browserFrameSource(init: BrowserFrameSourceInit = {}): FrameSource {
  const maxFrames = init.maxFrames ?? frameCacheDefaults.maxFrames
  const maxBytes = init.maxBytes ?? 64 * 1024 * 1024
  // Map keeps insertion order: re-inserting on use makes the first key the least recently used.
  const cache = new Map<string, Entry>()

  async function load(url: string, signal: AbortSignal): Promise<FrameImage> {
    const what = url.length > 120 ? `${url.slice(0, 120)}…` : url
    let bytes = await fetchBytes(url, what, maxBytes, signal)
    if (init.transform !== undefined) {
      try {
        bytes = await init.transform(bytes, url)
      } catch (cause) {
        if (cause instanceof CrowdmeshError) throw cause
        throw new FrameFetchError(`cannot prepare ${what}: ${(cause as Error).message}`, { cause })
      }
    }
    if (signal.aborted) throw new AbortError()
    return decodeImage(bytes, what)
  }

  function follow(entry: Entry, signal: AbortSignal | undefined): Promise<FrameImage> {
    entry.waiting++
    if (signal === undefined || entry.settled) return entry.promise
    return new Promise<FrameImage>((resolve, reject) => {
      const onAbort = () => {
        if (--entry.waiting === 0 && !entry.settled) entry.controller.abort()
        reject(new AbortError())
      }
      signal.addEventListener('abort', onAbort, { once: true })
      entry.promise.then(
        (image) => {
          signal.removeEventListener('abort', onAbort)
          resolve(image)
        },
        (error: Error) => {
          signal.removeEventListener('abort', onAbort)
          reject(error)
        },
      )
    })
  }

  return {
    get(url, signal) {
      if (signal?.aborted) return Promise.reject(new AbortError())
      const hit = cache.get(url)
      // An entry whose fetch its last waiter aborted is on its way out: fetch afresh.
      if (hit !== undefined && !hit.controller.signal.aborted) {
        cache.delete(url)
        cache.set(url, hit)
        return follow(hit, signal)
      }
      const controller = new AbortController()
      const entry: Entry = { promise: load(url, controller.signal), controller, waiting: 0, settled: false }
      entry.promise.then(
        () => {
          entry.settled = true
        },
        () => {
          entry.settled = true
          if (cache.get(url) === entry) cache.delete(url)
        },
      )
      cache.delete(url)
      cache.set(url, entry)
      while (cache.size > maxFrames) cache.delete(cache.keys().next().value!)
      return follow(entry, signal)
    },
    get size() {
      return cache.size
    },
  }
}

async function fetchBytes(
  url: string,
  what: string,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Uint8Array> {
  if (url.startsWith('file:'))
    throw new FrameFetchError(`a browser cannot fetch ${what}: file: URLs are not served`)
  let response: Response
  try {
    response = await fetch(url, { signal })
  } catch (cause) {
    if (signal.aborted) throw new AbortError()
    throw new FrameFetchError(`cannot fetch ${what}: ${(cause as Error).message}`, { cause })
  }
  if (!response.ok) {
    await response.body?.cancel()
    throw new FrameFetchError(`fetching ${what} answered ${response.status}`)
  }
  const declared = Number(response.headers.get('content-length') ?? 0)
  if (declared > maxBytes) {
    await response.body?.cancel()
    throw new FrameFetchError(`${what} is larger than ${maxBytes} bytes`)
  }
  try {
    return await readLimited(response, what, maxBytes)
  } catch (cause) {
    if (cause instanceof CrowdmeshError) throw cause
    if (signal.aborted) throw new AbortError()
    throw new FrameFetchError(`cannot read ${what}: ${(cause as Error).message}`, { cause })
  }
}
