import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { CrowdmeshError } from '../../protocol/errors.ts'
import type { FrameAggregation } from './aggregator.ts'
import type { Camera } from './camera.ts'
import type { DecideReply, DecideRequest } from './decide-worker.ts'
import type { FrameOutcome, OutcomeRule } from './outcome.ts'
import type { TargetSpace } from './target-space.ts'

/** Decides a complete frame somewhere other than the calling thread (`VertexKindOptions.decider`). */
export interface FrameDecider {
  /**
   * The frame's outcome, as `decideFrame` gives it. The aggregation is handed over: its arrays are
   * moved to the deciding thread, so it must not be read again (a round's sink is not).
   */
  decide(
    aggregation: FrameAggregation,
    space: TargetSpace,
    cameras: readonly Camera[],
    rule: Partial<OutcomeRule>,
  ): Promise<FrameOutcome>
}

/** A frame's outcome could not be decided off the event loop: the deciding thread failed or was closed. */
export class DecisionFailedError extends CrowdmeshError {}

/**
 * The coordinator's frame decision in a thread of its own (Node). At 128³ with the depth sweep a
 * frame takes about 2.5 s to decide; on the event loop that long, leases, results, admissions and
 * the console of a live show would all wait. Here the loop only hands the frame's arrays over (moved,
 * not copied) and takes the outcome's back. The thread spreads the sweep over the machine's cores
 * (`SweepThreads`) as the loop did. Frames are decided one at a time, in the order given (the
 * coordinator gives a job's next one when the last is decided). A thread that dies fails the frames it
 * held, with the reason, and the next frame starts a new one.
 */
export class DecideThread implements FrameDecider {
  private worker: Worker | undefined
  private readonly pending = new Map<
    number,
    { resolve: (outcome: FrameOutcome) => void; reject: (error: Error) => void }
  >()
  private nextId = 1
  private closed = false
  private readonly sweepThreads: number

  /** `sweepThreads` helpers of the deciding thread's sweep (default: one per core, less its own). */
  constructor(options: { sweepThreads?: number } = {}) {
    this.sweepThreads = Math.max(0, options.sweepThreads ?? availableParallelism() - 1)
  }

  decide(
    aggregation: FrameAggregation,
    space: TargetSpace,
    cameras: readonly Camera[],
    rule: Partial<OutcomeRule>,
  ): Promise<FrameOutcome> {
    if (this.closed) return Promise.reject(new DecisionFailedError('the deciding thread is closed'))
    const worker = this.thread()
    const id = this.nextId++
    const request: DecideRequest = {
      id,
      aggregation: {
        jobId: aggregation.jobId,
        frameIndex: aggregation.frameIndex,
        totalVertices: aggregation.totalVertices,
        cameraIds: [...aggregation.cameraIds],
        planes: aggregation.planes,
        seen: aggregation.seen,
        background: aggregation.background,
      },
      space,
      cameras: [...cameras],
      rule,
    }
    const { promise, resolve, reject } = Promise.withResolvers<FrameOutcome>()
    this.pending.set(id, { resolve, reject })
    worker.ref()
    try {
      worker.postMessage(request, [
        ...aggregation.planes.map((plane) => plane.buffer as ArrayBuffer),
        aggregation.seen.buffer as ArrayBuffer,
        aggregation.background.buffer as ArrayBuffer,
      ])
    } catch (error) {
      // Nothing was sent (a rule that cannot be cloned): this frame fails, the thread stays.
      this.pending.delete(id)
      if (this.pending.size === 0) worker.unref()
      reject(new DecisionFailedError(`the frame could not be handed over: ${(error as Error).message}`))
    }
    return promise
  }

  /** Starts the thread now (it starts with the first frame otherwise); resolves once it listens. */
  async ready(): Promise<void> {
    const worker = this.thread()
    await new Promise<void>((resolve) => {
      const ping = this.nextId++
      this.pending.set(ping, { resolve: () => resolve(), reject: () => resolve() })
      worker.ref()
      worker.postMessage({ id: ping, ping: true })
    })
  }

  /** Ends the thread; frames it still held fail with `DecisionFailedError`. */
  async close(): Promise<void> {
    this.closed = true
    const worker = this.worker
    this.worker = undefined
    this.failAll('the deciding thread was closed')
    await worker?.terminate()
  }

  private thread(): Worker {
    if (this.worker !== undefined) return this.worker
    const worker = new Worker(new URL('./decide-worker.ts', import.meta.url), {
      workerData: { sweepThreads: this.sweepThreads },
    })
    // An idle thread must never keep a process alive that has finished its work.
    worker.unref()
    worker.on('message', (reply: DecideReply) => {
      const waiting = this.pending.get(reply.id)
      if (waiting === undefined) return
      this.pending.delete(reply.id)
      if (this.pending.size === 0) worker.unref()
      if ('outcome' in reply) waiting.resolve(reply.outcome)
      else if ('error' in reply) waiting.reject(new DecisionFailedError(reply.error))
      else waiting.resolve(undefined as unknown as FrameOutcome)
    })
    const gone = (why: string) => {
      if (this.worker !== worker) return
      this.worker = undefined
      this.failAll(why)
    }
    worker.once('error', (error: Error) => gone(`the deciding thread failed: ${error.message}`))
    worker.once('exit', (code) => gone(`the deciding thread exited (code ${code})`))
    this.worker = worker
    return worker
  }

  private failAll(why: string): void {
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const { reject } of waiting) reject(new DecisionFailedError(why))
  }
}
