import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { frameCacheDefaults } from '../protocol/defaults.ts'
import { AbortError, FrameFetchError } from '../protocol/errors.ts'
import { openKeyedImage } from '../protocol/frame-keys.ts'
import type { FrameImage } from './frame-image.ts'
import { decodePng } from './png.ts'
import { readLimited } from './read-limited.ts'

/** Options of a frame source. */
export interface FrameSourceInit {
  /** Decoded frames kept in memory (default `frameCacheDefaults.maxFrames`). */
  maxFrames?: number
  /** Largest image file accepted, bytes (default 64 MiB). */
  maxBytes?: number
}

/** Fetches and decodes input images by URL, keeping the most recently used ones decoded. */
export interface FrameSource {
  get(url: string, signal?: AbortSignal): Promise<FrameImage>
  /** Number of decoded frames held. */
  readonly size: number
}

/**
 * A frame source for file:, http(s): and data: URLs. Concurrent requests for one URL share one
 * fetch; a failed fetch is not cached, so a retry can succeed.
 */
export function frameSource(init: FrameSourceInit = {}): FrameSource {
  const maxFrames = init.maxFrames ?? frameCacheDefaults.maxFrames
  const maxBytes = init.maxBytes ?? 64 * 1024 * 1024
  // Map keeps insertion order: re-inserting on use makes the first key the least recently used.
  const cache = new Map<string, Promise<FrameImage>>()

  async function load(url: string, signal?: AbortSignal): Promise<FrameImage> {
    // A keyed lease's URL carries its frame key in the fragment: the bytes are sealed with it.
    const bytes = await openKeyedImage(await fetchBytes(url.replace(/#.*$/, ''), maxBytes, signal), url)
    return decodePng(bytes, url.length > 120 ? `${url.slice(0, 120)}…` : url)
  }

  return {
    get(url, signal) {
      if (signal?.aborted) return Promise.reject(new AbortError())
      const hit = cache.get(url)
      if (hit !== undefined) {
        cache.delete(url)
        cache.set(url, hit)
        return hit
      }
      const pending = load(url, signal)
      cache.set(url, pending)
      pending.catch(() => {
        if (cache.get(url) === pending) cache.delete(url)
      })
      while (cache.size > maxFrames) cache.delete(cache.keys().next().value!)
      return pending
    },
    get size() {
      return cache.size
    },
  }
}

/** The bytes of a file:, http(s): or data: URL, at most `maxBytes`; a `FrameFetchError` otherwise. */
export async function fetchBytes(url: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array> {
  if (url.startsWith('file:')) {
    try {
      const bytes = await readFile(fileURLToPath(url), signal ? { signal } : {})
      if (bytes.length > maxBytes) throw new FrameFetchError(`${url} is larger than ${maxBytes} bytes`)
      return bytes
    } catch (cause) {
      if (cause instanceof FrameFetchError) throw cause
      if ((cause as Error).name === 'AbortError') throw new AbortError()
      throw new FrameFetchError(`cannot read ${url}: ${(cause as Error).message}`, { cause })
    }
  }
  if (/^(https?|data):/.test(url)) {
    let response: Response
    try {
      response = await fetch(url, signal ? { signal } : {})
    } catch (cause) {
      if ((cause as Error).name === 'AbortError') throw new AbortError()
      throw new FrameFetchError(`cannot fetch ${url.slice(0, 120)}: ${(cause as Error).message}`, { cause })
    }
    if (!response.ok) throw new FrameFetchError(`fetching ${url} answered ${response.status}`)
    const declared = Number(response.headers.get('content-length') ?? 0)
    if (declared > maxBytes) {
      await response.body?.cancel()
      throw new FrameFetchError(`${url} is larger than ${maxBytes} bytes`)
    }
    return readLimited(response, url, maxBytes)
  }
  throw new FrameFetchError(`unsupported URL scheme: ${url.slice(0, 40)}`)
}
