import { serverLimits } from './defaults.ts'
import { InvalidMessageError, MessageTooDeepError, MessageTooLargeError } from './errors.ts'

/** Limits a JSON text is held to before `JSON.parse` sees it. */
export interface JsonLimits {
  /** Largest text, UTF-8 bytes. */
  maxBytes: number
  /** Deepest nesting of arrays and objects (1: a flat object). */
  maxDepth: number
}

/**
 * How deeply `text` nests arrays and objects, scanning at most to `limit + 1` levels: a string's
 * brackets do not count. A message 10,000 levels deep parses fine but overflows the stack of
 * whatever walks it next (`JSON.stringify`, a schema), so depth is refused before parsing.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/** UTF-8 length of a string without allocating it. */
export function utf8Bytes(text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}

/**
 * Parses JSON from a stranger: size first (`MessageTooLargeError`), then depth
 * (`MessageTooDeepError`), then `JSON.parse` (`InvalidMessageError`). Each limit defaults from
 * `serverLimits`.
 */
export function parseBoundedJson(text: string, limits: Partial<JsonLimits> = {}): unknown {
  const maxBytes = limits.maxBytes ?? serverLimits.maxJsonBytes
  const maxDepth = limits.maxDepth ?? serverLimits.maxJsonDepth
  // A UTF-8 character is at most 3 bytes per UTF-16 unit: count exactly only when it could matter.
  if (text.length > maxBytes || (text.length * 3 > maxBytes && utf8Bytes(text) > maxBytes))
    throw new MessageTooLargeError(utf8Bytes(text), maxBytes)
  if (jsonDepthExceeds(text, maxDepth)) throw new MessageTooDeepError(maxDepth)
  try {
    return JSON.parse(text) as unknown
  } catch (cause) {
    throw new InvalidMessageError('(root)', `not JSON: ${(cause as Error).message}`)
  }
}
