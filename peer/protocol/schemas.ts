import type { z } from 'zod'
import { messageLimits } from './defaults.ts'
import { InvalidMessageError } from './errors.ts'
import { parseBoundedJson } from './json-limits.ts'

/*
 * Parsing what crosses a process boundary, for every schema (each job kind has its own schemas, in
 * its folder).
 */

/** Parses `data` with `schema`, throwing `InvalidMessageError` that names the field on failure. */
export function parseMessage<T>(schema: z.ZodType<T>, data: unknown): T {
  const parsed = schema.safeParse(data)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]!
  const field = issue.path.length > 0 ? issue.path.join('.') : '(root)'
  throw new InvalidMessageError(field, issue.message)
}

/** Parses a JSON control message with size and depth limits (`json-limits.ts`). */
export function parseJsonMessage<T>(schema: z.ZodType<T>, text: string): T {
  return parseMessage(schema, parseBoundedJson(text, { maxBytes: messageLimits.maxControlBytes }))
}

/** Parses UTF-8 JSON bytes (a kind's result or outcome) with size and depth limits, then `schema`. */
export function parseJsonBytes<T>(schema: z.ZodType<T>, bytes: Uint8Array, maxBytes: number): T {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new InvalidMessageError('(root)', 'not UTF-8')
  }
  return parseMessage(schema, parseBoundedJson(text, { maxBytes }))
}

/** The UTF-8 JSON bytes of a value (what `parseJsonBytes` reads back). */
export const jsonBytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value))

/** Whether `check` passes (a kind's `result.matches` from the check its sink runs). */
export function passes(check: () => void): boolean {
  try {
    check()
    return true
  } catch {
    return false
  }
}
