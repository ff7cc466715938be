import type { TaskBase } from '../jobs/kind.ts'
import type { Capability } from '../protocol/capability.ts'
import { sleep } from '../protocol/clock.ts'
import { AbortError, CrowdmeshError } from '../protocol/errors.ts'
import type { Lease } from '../protocol/job.ts'
import { type CapabilityMeter, dutyCyclePauseMs } from './capability-meter.ts'
import type { JobDirectory, KnownJob } from './job-directory.ts'

/** How a participant reaches its coordinator; implemented by each transport (threads now, libp2p later). */
export interface CoordinatorLink {
  /** Asks for work, stating what it can do; resolves undefined when there is none for it now. */
  requestLease(signal: AbortSignal, capability: Capability): Promise<Lease<TaskBase> | undefined>
  /** Returns a task's result, as its kind encodes it. */
  sendResult(leaseId: number, result: Uint8Array): Promise<void>
  /** Says a task could not be computed, so the coordinator re-assigns it at once. */
  reportFailure(leaseId: number, reason: string): Promise<void>
  /** Resolves when the coordinator announces new work (after a standby answer). */
  waitForWork(signal: AbortSignal): Promise<void>
  /**
   * Whether the coordinator took a lease back (another copy won, its round ended, or live work
   * came first); a lease taken back before it started is not computed at all.
   */
  isCancelled?(leaseId: number): boolean
}

/**
 * Holds a participant between blocks while its person has paused it: the block in hand finishes and
 * is returned, then no more work is asked for until `resume`.
 */
export class WorkGate {
  private opened: PromiseWithResolvers<void> | undefined

  get paused(): boolean {
    return this.opened !== undefined
  }

  pause(): void {
    this.opened ??= Promise.withResolvers<void>()
  }

  resume(): void {
    this.opened?.resolve()
    this.opened = undefined
  }

  /** Resolves at once when open, else on `resume`; rejects with `AbortError` when `signal` aborts. */
  async pass(signal: AbortSignal): Promise<void> {
    const opened = this.opened
    if (opened === undefined) return
    if (signal.aborted) throw new AbortError()
    const aborted = Promise.withResolvers<never>()
    const onAbort = () => aborted.reject(new AbortError())
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.race([opened.promise, aborted.promise])
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
}

/** Counters of one participant. */
export interface ParticipantStats {
  blocksDone: number
  /** Units of the tasks it computed, in their kinds' units. */
  threadsDone: number
  blocksFailed: number
  busyMs: number
}

/**
 * The participant loop: ask for a lease (stating its measured capability and the kinds it runs),
 * compute it with its kind's worker, return the result, pause to stay within its duty cycle, and ask
 * again, until the signal aborts. The next lease is requested while the current task computes,
 * hiding the round trip. A task that throws (or that its kind refuses) is reported as failed (the
 * coordinator re-queues it) and the loop goes on. `onTask` sees each task before it runs.
 */
export async function runParticipant(
  directory: JobDirectory,
  components: {
    link: CoordinatorLink
    meter: CapabilityMeter
    dutyCycle: number
    gate?: WorkGate
    onTask?: (job: KnownJob, task: TaskBase) => void
  },
  signal: AbortSignal,
): Promise<ParticipantStats> {
  const { link, meter, dutyCycle, gate } = components
  const ask = async (): Promise<Lease<TaskBase> | undefined> => {
    await gate?.pass(signal)
    const sent = performance.now()
    const holds = directory.holds()
    const lease = await link.requestLease(signal, {
      ...meter.current(),
      kinds: directory.tags,
      ...(holds.length > 0 && { holds }),
    })
    meter.recordRoundTrip(performance.now() - sent)
    return lease
  }
  const stats: ParticipantStats = { blocksDone: 0, threadsDone: 0, blocksFailed: 0, busyMs: 0 }
  let next: Promise<Lease<TaskBase> | undefined> = ask()
  // Whether `next` was asked for while a task was still computing: then "no" may only mean "not
  // while you hold one", and the answer to ask again, now idle, may differ.
  let prefetched = false
  while (!signal.aborted) {
    let lease: Lease<TaskBase> | undefined
    try {
      lease = await next
    } catch (error) {
      if (signal.aborted || error instanceof AbortError) break
      throw error
    }
    if (lease === undefined) {
      if (!prefetched) {
        try {
          await link.waitForWork(signal)
        } catch (error) {
          if (signal.aborted) break
          throw error
        }
      }
      prefetched = false
      next = ask()
      continue
    }
    if (link.isCancelled?.(lease.leaseId) === true) {
      // Taken back before it started (live work came first): ask again at once, nothing to report.
      prefetched = false
      next = ask()
      continue
    }
    next = ask()
    prefetched = true
    // The next task's inputs are fetched while this one computes.
    next
      .then((nextLease) => nextLease !== undefined && directory.prefetch(nextLease.block, signal))
      .catch(() => {})
    const started = performance.now()
    try {
      const job = directory.task(lease.block)
      components.onTask?.(job, job.task)
      const worker = await directory.worker(job.kind)
      const result = await worker.run(job.spec, job.task, signal)
      const busy = performance.now() - started
      const units = job.kind.taskUnits(job.task)
      stats.busyMs += busy
      // The meter measures reference units (relative cost 1), whatever the kind.
      meter.recordBlock(units * job.kind.cost.relativeCost, busy)
      await link.sendResult(lease.leaseId, job.kind.result.encode(result))
      stats.blocksDone++
      stats.threadsDone += units
      // Keep within the duty cycle: the device's own use comes first.
      const pause = dutyCyclePauseMs(busy, dutyCycle)
      if (pause > 0) await sleep(pause, signal)
    } catch (error) {
      if (signal.aborted) break
      stats.blocksFailed++
      const reason = error instanceof CrowdmeshError ? `${error.name}: ${error.message}` : String(error)
      await link.reportFailure(lease.leaseId, reason)
    }
  }
  // The prefetched request may still be pending; it settles (or rejects) on its own.
  next.catch(() => {})
  return stats
}
