import { parentPort, workerData } from 'node:worker_threads'
import type { FrameAggregation } from './aggregator.ts'
import type { Camera } from './camera.ts'
import { decideFrame, type FrameOutcome, type OutcomeRule } from './outcome.ts'
import { SweepThreads } from './sweep-threads.ts'
import type { TargetSpace } from './target-space.ts'

/*
 * The thread of `DecideThread`: decides the frames it is given, one at a time, and hands each
 * outcome's arrays back (moved, not copied). It never logs: what goes wrong goes back as the
 * frame's error, for the coordinator to report.
 */

/** A complete frame to decide: what `decideFrame` reads of its aggregation. */
export interface DecideRequest {
  id: number
  aggregation: Pick<
    FrameAggregation,
    'jobId' | 'frameIndex' | 'totalVertices' | 'cameraIds' | 'planes' | 'seen' | 'background'
  >
  space: TargetSpace
  cameras: Camera[]
  rule: Partial<OutcomeRule>
}

/** The answer: the outcome, or why there is none (or, to a ping, neither). */
export type DecideReply =
  { id: number; outcome: FrameOutcome } | { id: number; error: string } | { id: number }

const sweep = new SweepThreads((workerData as { sweepThreads: number }).sweepThreads)
// The sweep's helpers start now, while this thread still runs its event loop: started from inside a
// decision, which holds this thread until it ends, they would not be at work before it did.
const helpersReady = sweep.ready()

parentPort?.on('message', (request: DecideRequest | { id: number; ping: true }) => {
  void helpersReady.then(() => answer(request))
})

function answer(request: DecideRequest | { id: number; ping: true }): void {
  if ('ping' in request) {
    parentPort?.postMessage({ id: request.id } satisfies DecideReply)
    return
  }
  try {
    const { aggregation, space, cameras, rule } = request
    // decideFrame reads only these fields: the rest of a FrameAggregation stayed behind.
    const outcome = decideFrame(aggregation as FrameAggregation, space, cameras, rule, sweep)
    parentPort?.postMessage({ id: request.id, outcome } satisfies DecideReply, [
      outcome.decision.buffer as ArrayBuffer,
      outcome.colour.buffer as ArrayBuffer,
      outcome.std.buffer as ArrayBuffer,
      outcome.views.buffer as ArrayBuffer,
      outcome.votes.buffer as ArrayBuffer,
      outcome.modalClass.buffer as ArrayBuffer,
      outcome.offset.buffer as ArrayBuffer,
    ])
  } catch (error) {
    parentPort?.postMessage({ id: request.id, error: (error as Error).message } satisfies DecideReply)
  }
}
