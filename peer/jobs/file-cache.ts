import { MessageTooLargeError } from '../protocol/errors.ts'
import type { FileSource } from './kind.ts'

/** Fetches bytes by URL, at most `maxBytes`. */
export type FetchBytes = (url: string, maxBytes: number, signal?: AbortSignal) => Promise<Uint8Array>

/**
 * A file source over `fetch` that keeps the most recently used files, `cacheBytes` in all: the
 * reference fingerprints of a match slice come to the same participant query after query.
 */
export function cachedFiles(fetch: FetchBytes, cacheBytes: number): FileSource {
  const cache = new Map<string, Uint8Array>()
  let cached = 0
  return {
    async bytes(url, maxBytes, signal) {
      const known = cache.get(url)
      if (known !== undefined) {
        if (known.length > maxBytes) throw new MessageTooLargeError(known.length, maxBytes)
        cache.delete(url)
        cache.set(url, known)
        return known
      }
      const bytes = await fetch(url, maxBytes, signal)
      cache.set(url, bytes)
      cached += bytes.length
      for (const [key, value] of cache) {
        if (cached <= cacheBytes) break
        cache.delete(key)
        cached -= value.length
      }
      return bytes
    },
  }
}
