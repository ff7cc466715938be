import { constants } from 'node:os'
import { CrowdmeshError } from '../peer/protocol/errors.ts'

/*
 * How a long-running command ends. SIGINT, SIGTERM and an uncaught error (an exception thrown in a
 * listener, an unhandled rejection) all abort one signal, so the command's `finally` stops what it
 * started (coturn first among them) instead of the process dying around it. Once stopped, the process
 * ends the way the cause asks: by the same signal (a shell then sees 130 or 143, and knows it was
 * interrupted), or with the error, exit code 1. A second signal, or a stop slower than the grace,
 * ends the process at once; what it started then dies with it (`spawnGuarded`'s watchdogs).
 */

/** The command was asked to end by a signal. */
export class InterruptedError extends CrowdmeshError {
  readonly signal: NodeJS.Signals
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`)
    this.signal = signal
  }
}

/** The way out of a command, set up by `processEnding`. */
export interface ProcessEnding {
  /** Aborted on the first SIGINT, SIGTERM or uncaught error; its reason is an `InterruptedError` or the error. */
  readonly signal: AbortSignal
  /** Removes the handlers; safe to call twice. A forced exit already scheduled stays scheduled. */
  dispose(): void
  /**
   * After the orderly stop: disposes, then re-raises the signal or throws the uncaught error; returns
   * when neither came.
   */
  settle(): void
}

/** Options of `processEnding`. */
export interface ProcessEndingInit {
  /** How long the orderly stop may take after the first signal or error, ms (default 15 000). */
  graceMs?: number
}

/** Turns SIGINT, SIGTERM and uncaught errors into `signal` until `dispose()` or `settle()`. */
export function processEnding(init: ProcessEndingInit = {}): ProcessEnding {
  const controller = new AbortController()
  const graceMs = init.graceMs ?? 15_000
  const exitNow = (reason: Error): never => {
    dispose()
    if (reason instanceof InterruptedError) exitBySignal(reason.signal)
    process.stderr.write(`${reason.stack ?? String(reason)}\n`)
    process.exit(1)
  }
  const end = (reason: Error) => {
    if (controller.signal.aborted) {
      // Someone does not want to wait for the stop; a second error while stopping is only reported.
      if (reason instanceof InterruptedError) exitNow(reason)
      else process.stderr.write(`while stopping: ${reason.stack ?? String(reason)}\n`)
      return
    }
    controller.abort(reason)
    setTimeout(() => exitNow(reason), graceMs).unref()
  }
  const onSignal = (signal: NodeJS.Signals) => end(new InterruptedError(signal))
  const onError = (error: unknown) => end(error instanceof Error ? error : new Error(String(error)))
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('uncaughtException', onError)
  function dispose() {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    process.off('uncaughtException', onError)
  }
  return {
    signal: controller.signal,
    dispose,
    settle() {
      dispose()
      if (!controller.signal.aborted) return
      const reason = controller.signal.reason as Error
      if (reason instanceof InterruptedError) exitBySignal(reason.signal)
      throw reason
    },
  }
}

/**
 * Dies of `signal` (its default action, with no listener of ours left), or, when some other listener
 * catches it, exits with 128 + its number as a shell would report it.
 */
function exitBySignal(signal: NodeJS.Signals): never {
  process.kill(process.pid, signal)
  process.exit(128 + constants.signals[signal])
}
