import type { JobKind, JobSpec, TaskWorker } from '../kind.ts'
import type { CameraRunner } from './camera-work.ts'
import { outcomeDefaults, vertexBlockDefaults, vertexLimits } from './defaults.ts'
import { type Block, blockKey, blockResult, type BlockResult, type Frame, type VertexJob } from './block.ts'
import { blockSchema, decodeBlockResult, encodeBlockResult, vertexJobSchema } from './schemas.ts'
import { FrameAggregation } from './aggregator.ts'
import type { Camera } from './camera.ts'
import { cpuWorker } from './cpu-worker.ts'
import type { FrameDecider } from './decide-thread.ts'
import { colouredVertices, decideFrame, type FrameOutcome, type OutcomeRule } from './outcome.ts'
import { decodeOutcome, encodeOutcome, type OutcomeSnapshot } from './outcome-codec.ts'
import { VertexRoundPlan } from './round-plan.ts'
import { alphaForCoverage } from './sampling.ts'
import { vertexValidation } from './validation.ts'
import { levelSpace, targetSpace, type TargetSpace, vertexCount } from './target-space.ts'

/*
 * Vertex colouring as a job kind: a round is one moment of a show, its inputs the cameras' frames;
 * a task (a `Block`) is a run of vertex ids seen from one camera, and one unit is one vertex seen
 * from one camera (a data thread). Results are 4 bytes a unit; the round's sink aggregates them and
 * decides each vertex (README, "Deciding a vertex").
 */

/** How a vertex job's frames are decided (defaults in `outcomeDefaults` and `defaultOutcomeRule`). */
export interface VertexKindOptions {
  /** Least foreground share of a vertex's area for a camera to count it occupied. */
  minCoverage?: number
  outcomeRule?: Partial<OutcomeRule>
  /**
   * Where a frame's depth sweep and line-of-sight tests run (default: the deciding thread;
   * `SweepThreads` spreads them in Node).
   */
  sweep?: CameraRunner
  /**
   * Where a frame is decided (default: on the coordinator's event loop, with `sweep`). `DecideThread`
   * decides off the loop (Node), so a live show's leases and results do not wait for it.
   */
  decider?: FrameDecider
}

/** The header of a binary block result, before its job id and colours (see `encodeBlockResult`). */
const resultHeaderBytes = 24

/** The vertex kind, deciding frames with these options. */
export function createVertexKind(
  options: VertexKindOptions = {},
): JobKind<VertexJob, Block, BlockResult, FrameOutcome, OutcomeSnapshot> {
  const minCoverageAlpha = alphaForCoverage(options.minCoverage ?? outcomeDefaults.minCoverage)
  const rule = options.outcomeRule ?? {}
  return {
    name: 'vertex',
    version: 1,
    schemas: { job: vertexJobSchema, task: blockSchema },
    limits: {
      maxTaskUnits: vertexLimits.maxBlockVertices,
      maxResultBytes: (task) =>
        resultHeaderBytes + new TextEncoder().encode(task.jobId).length + 4 * task.vertexCount,
    },
    openRound: (job, frameIndex, level) => new VertexRoundPlan(job, frameIndex, level),
    taskUnits: (task) => task.vertexCount,
    taskKey: blockKey,
    taskSpan: (task) => ({ lane: task.cameraId, first: task.firstVertex, count: task.vertexCount }),
    levels: {
      maxLevel: 3,
      unitsAt: (job, level) =>
        vertexCount(levelSpace(job.description.space, level)) * job.description.cameras.length,
    },
    result: {
      encode: encodeBlockResult,
      decode: (bytes) => decodeBlockResult(bytes),
      matches: (task, result) =>
        result.jobId === task.jobId &&
        result.frameIndex === task.frameIndex &&
        result.cameraId === task.cameraId &&
        result.firstVertex === task.firstVertex &&
        result.vertexCount === task.vertexCount,
    },
    openSink(job, plan, level) {
      const { space, cameras } = job.description
      const grid = levelSpace(space, level)
      const aggregation = new FrameAggregation({
        jobId: job.jobId,
        frameIndex: plan.frameIndex,
        cameraIds: cameras.map((c) => c.id),
        totalVertices: vertexCount(grid),
        minCoverageAlpha,
      })
      return {
        add: (_task, result) => aggregation.add(result),
        withdraw: (task) => aggregation.withdraw(task),
        get complete() {
          return aggregation.complete
        },
        finish: () =>
          options.decider !== undefined
            ? options.decider.decide(aggregation, grid, cameras, rule)
            : decideFrame(aggregation, grid, cameras, rule, options.sweep),
      }
    },
    outcome: {
      encode(outcome, _job, maxBytes) {
        const { ids, rgb } = colouredVertices(outcome)
        return encodeOutcome(
          {
            frameIndex: outcome.frameIndex,
            resolution: outcome.resolution,
            colouredTotal: outcome.coloured,
            ids,
            rgb,
          },
          maxBytes,
        )
      },
      decode: decodeOutcome,
      summary: (snapshot) => ({ frameIndex: snapshot.frameIndex, items: snapshot.colouredTotal }),
    },
    workers: {
      cpu(env) {
        const worker = cpuWorker({ frames: env.frames })
        return Promise.resolve({
          backend: 'cpu',
          run: (job, task, signal) => worker.run(job.description, task, signal),
        })
      },
      async webgl(env) {
        // Loaded only when a participant first computes a vertex task on the GPU.
        const { createWebglWorker } = await import('./webgl-worker.ts')
        const worker = createWebglWorker({
          frames: env.frames,
          ...(env.canvas !== undefined && { canvas: env.canvas }),
        })
        const taskWorker: TaskWorker<VertexJob, Block, BlockResult> = {
          backend: worker.backend,
          run: (job, task, signal) => worker.run(job.description, task, signal),
          dispose: () => worker.dispose(),
        }
        return taskWorker
      },
    },
    validation: vertexValidation,
    cost: {
      relativeCost: 1,
      inputBytesPerUnit: 0,
      resultBytesPerUnit: 4,
      minTaskUnits: vertexBlockDefaults.minBlockVertices,
      maxTaskUnits: vertexBlockDefaults.maxBlockVertices,
      calibrationUnits: vertexBlockDefaults.calibrationVertices,
    },
    simulation: {
      job: (jobId, unitsPerRound) => {
        const cameras = 8
        return ringJob(jobId, Math.max(4, Math.floor(Math.cbrt(unitsPerRound / cameras))), cameras)
      },
      inputs: (job, frameIndex) =>
        job.description.cameras.map((c): Frame => ({
          cameraId: c.id,
          index: frameIndex,
          captureTime: frameIndex,
          imageUrl: 'data:,',
        })),
      fakeResult: (task) => blockResult(task, zeros(task.vertexCount * 4)),
    },
  }
}

/** The vertex kind with the default decision. */
export const vertexKind = createVertexKind()

/** A vertex job as a job spec. */
export function vertexJobSpec(job: VertexJob): JobSpec<VertexJob> {
  return { jobId: job.jobId, kind: vertexKind.name, version: vertexKind.version, description: job }
}

/** A job over a 4 m stage seen by `cameraCount` cameras on a ring: only its sizes matter (the simulator's). */
export function ringJob(jobId: string, grid: number, cameraCount: number): VertexJob {
  const space: TargetSpace = targetSpace({ min: [-2, -2, 0], max: [2, 2, 3] }, grid)
  const cameras: Camera[] = Array.from({ length: cameraCount }, (_, id) => ({
    id,
    name: `cam${id}`,
    k: [800, 0, 320, 0, 800, 240, 0, 0, 1],
    r: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    t: [0, 0, 6],
    width: 640,
    height: 480,
  }))
  return { jobId, space, cameras, maxAreaRadius: 8, backgroundSum: 130 }
}

// Fake results share one buffer of zeros: their contents never matter.
let zeroBuffer = new Uint8Array(0)
function zeros(bytes: number): Uint8Array {
  if (zeroBuffer.length < bytes) zeroBuffer = new Uint8Array(Math.max(bytes, zeroBuffer.length * 2))
  return zeroBuffer.subarray(0, bytes)
}
