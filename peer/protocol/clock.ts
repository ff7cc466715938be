/**
 * Time as the coordinator sees it. Injected, so the same scheduling code runs on the wall clock,
 * in tests, and in the simulator's virtual time.
 */
export interface Clock {
  /** Milliseconds; only differences matter. */
  now(): number
  /** Calls `fn` after `ms`; returns a handle for `clearTimer`. */
  setTimer(fn: () => void, ms: number): unknown
  clearTimer(handle: unknown): void
}

/** The wall clock. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => {
    const handle = setTimeout(fn, ms)
    // A pending lease deadline must not keep a finished process alive.
    handle.unref?.()
    return handle
  },
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

/** Waits `ms` of wall time, or less if `signal` aborts first (it resolves either way, never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
