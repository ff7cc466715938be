import type { Camera } from '../jobs/vertex/camera.ts'
import { BlockMismatchError } from '../protocol/errors.ts'
import type { BlockResult } from '../protocol/job.ts'
import type { TargetSpace } from '../jobs/vertex/target-space.ts'
import { type AddOutcome, FrameAggregation } from '../jobs/vertex/aggregator.ts'
import { decideFrame, type FrameOutcome, type OutcomeRule } from '../jobs/vertex/outcome.ts'

/** Where the coordinator puts a frame's block results; it says when the frame is complete. */
export interface FrameSink<T> {
  add(result: BlockResult): AddOutcome
  readonly complete: boolean
  /** Called once, when complete: the frame's outcome. */
  finish(): T
}

/** What a sink is made for. */
export interface FrameSinkInit {
  jobId: string
  frameIndex: number
  /** The frame's grid (the job's, or a coarser one when downgraded). */
  space: TargetSpace
  cameras: readonly Camera[]
}

/** Makes the sink of each frame. */
export type FrameSinkFactory<T> = (init: FrameSinkInit) => FrameSink<T>

/** The real sink: aggregates thread results and decides the frame outcome (see `outcome.ts`). */
export function aggregationSinks(options: {
  minCoverageAlpha: number
  outcomeRule: Partial<OutcomeRule>
}): FrameSinkFactory<FrameOutcome> {
  return (init) => {
    const [nx, ny, nz] = init.space.resolution
    const aggregation = new FrameAggregation({
      jobId: init.jobId,
      frameIndex: init.frameIndex,
      cameraIds: init.cameras.map((c) => c.id),
      totalVertices: nx * ny * nz,
      minCoverageAlpha: options.minCoverageAlpha,
    })
    return {
      add: (result) => aggregation.add(result),
      get complete() {
        return aggregation.complete
      },
      finish: () => decideFrame(aggregation, init.space, init.cameras, options.outcomeRule),
    }
  }
}

/** What a ledger reports when its frame completes. */
export interface LedgerSummary {
  frameIndex: number
  threads: number
  /** Threads counted more than once: must be 0 (the simulator reports it). */
  doubleCounted: number
}

/**
 * A sink that only counts which threads arrived, for the simulator: a frame of virtual participants
 * has no pixels, but its exactly-once accounting is checked thread by thread all the same.
 */
export function ledgerSinks(): FrameSinkFactory<LedgerSummary> {
  return (init) => {
    const [nx, ny, nz] = init.space.resolution
    const perCamera = nx * ny * nz
    const slots = new Map(init.cameras.map((c, i) => [c.id, i]))
    const counts = new Uint8Array(perCamera * init.cameras.length)
    let received = 0
    let doubleCounted = 0
    return {
      add(result) {
        const slot = slots.get(result.cameraId)
        if (slot === undefined) throw new BlockMismatchError(`camera ${result.cameraId} is not in the frame`)
        if (result.firstVertex + result.vertexCount > perCamera)
          throw new BlockMismatchError('block past the grid')
        const base = slot * perCamera + result.firstVertex
        for (let i = 0; i < result.vertexCount; i++) {
          if (counts[base + i]! > 0) doubleCounted++
          else received++
          counts[base + i] = Math.min(255, counts[base + i]! + 1)
        }
        return 'added'
      },
      get complete() {
        return received === counts.length
      },
      finish: () => ({ frameIndex: init.frameIndex, threads: counts.length, doubleCounted }),
    }
  }
}
