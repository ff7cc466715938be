import type { EventEmitter } from 'node:events'

/**
 * Adds `listener` for `name` on an emitter, whatever its typed event map, and returns what removes
 * it: an owner keeps the returned functions and calls them when it closes, so no listener outlives it.
 */
export function listen(emitter: object, name: string, listener: (...args: never[]) => void): () => void {
  const target = emitter as EventEmitter
  const handler = listener as (...args: unknown[]) => void
  target.on(name, handler)
  return () => target.off(name, handler)
}
