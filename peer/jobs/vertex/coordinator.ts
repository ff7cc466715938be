import type { FrameDecider } from './decide-thread.ts'
import type { CameraRunner } from './camera-work.ts'
import { Coordinator } from '../../coordinator/coordinator.ts'
import type {
  CoordinatorComponents,
  CoordinatorInit,
  JobInit,
  LiveMode,
  SchedulingOptions,
} from '../../coordinator/coordinator-contract.ts'
import type { RoundSinkFactory } from '../../coordinator/frame-sink.ts'
import type { PriorityClass, ResultValidator } from '../kind.ts'
import type { Block, Frame, VertexJob } from './block.ts'
import { vertexBlockDefaults } from './defaults.ts'
import { createVertexKind, vertexJobSpec } from './index.ts'
import type { FrameOutcome, OutcomeRule } from './outcome.ts'

/*
 * One vertex job on the job-agnostic coordinator, with the options it had before job kinds: block
 * sizes in vertices, the decision's coverage and rule, and `addFrame` for a camera's frame.
 */

/** Block sizes of a vertex job, vertices (defaults `vertexBlockDefaults`). */
export type VertexBlockLimits = {
  -readonly [K in keyof typeof vertexBlockDefaults]: number
}

/** How a vertex job runs on a coordinator. */
export interface VertexJobOptions<T = FrameOutcome> {
  /** Live mode with a latency budget; absent: batch mode, every frame completes however long it takes. */
  live?: LiveMode
  /** Its priority class (default: live with `live`, else batch) and share among its class. */
  class?: PriorityClass
  weight?: number
  /** Fixed block size, vertices: the smallest, largest and calibration block at once (tests, benchmarks). */
  blockVertices?: number
  /** Block sizes, vertices; `blockVertices` overrides them. */
  blocks?: Partial<VertexBlockLimits>
  /** Least foreground share of a vertex's area for a camera to count it occupied (default `outcomeDefaults.minCoverage`). */
  minCoverage?: number
  outcomeRule?: Partial<OutcomeRule>
  /** Where a frame's depth sweep and line-of-sight tests run (`VertexKindOptions.sweep`). */
  sweep?: CameraRunner
  /** Where a frame is decided (`VertexKindOptions.decider`: off the event loop with `DecideThread`). */
  decider?: FrameDecider
  /** How frames are aggregated (default: the real aggregation and decision; the simulator counts only). */
  frameSinks?: RoundSinkFactory<T>
  /** How its results are validated (`JobInit.validator`; `kindValidator` builds the kind's own). */
  validator?: ResultValidator
}

/** A vertex job as a job of a coordinator (`CoordinatorInit.jobs`), deciding frames with `options`. */
export function vertexJobInit<T = FrameOutcome>(
  job: VertexJob,
  options: VertexJobOptions<T> = {},
): JobInit<T> {
  const fixed = options.blockVertices
  const blocks = { ...vertexBlockDefaults, ...options.blocks }
  return {
    spec: vertexJobSpec(job),
    kind: createVertexKind({
      ...(options.minCoverage !== undefined && { minCoverage: options.minCoverage }),
      ...(options.outcomeRule !== undefined && { outcomeRule: options.outcomeRule }),
      ...(options.sweep !== undefined && { sweep: options.sweep }),
      ...(options.decider !== undefined && { decider: options.decider }),
    }),
    ...(options.live !== undefined && { live: options.live }),
    ...(options.class !== undefined && { class: options.class }),
    ...(options.weight !== undefined && { weight: options.weight }),
    taskUnits: {
      min: fixed ?? blocks.minBlockVertices,
      max: fixed ?? blocks.maxBlockVertices,
      calibration: fixed ?? blocks.calibrationVertices,
    },
    ...(options.frameSinks !== undefined && { sinks: options.frameSinks }),
    ...(options.validator !== undefined && { validator: options.validator }),
  }
}

/** Options of a `VertexCoordinator`. */
export interface VertexCoordinatorInit<T = FrameOutcome>
  extends
    Omit<CoordinatorInit<T>, 'jobs' | 'scheduling'>,
    Omit<VertexJobOptions<T>, 'blocks' | 'class' | 'weight'> {
  /** The vertex job: the first job, whose frames `addFrame` takes. */
  job: VertexJob
  /** Jobs run beside it. */
  jobs?: JobInit<T>[]
  /** Scheduling options, and the vertex job's block sizes. */
  scheduling?: Partial<SchedulingOptions & VertexBlockLimits>
}

/** A coordinator running one vertex job (and any jobs beside it). */
export class VertexCoordinator<T = FrameOutcome> extends Coordinator<T, Block> {
  constructor(init: VertexCoordinatorInit<T>, components: CoordinatorComponents) {
    const { job, jobs = [], scheduling = {}, mode, validation, ...options } = init
    const { minBlockVertices, maxBlockVertices, calibrationVertices, ...rest } = scheduling
    const blocks: Partial<VertexBlockLimits> = {
      ...(minBlockVertices !== undefined && { minBlockVertices }),
      ...(maxBlockVertices !== undefined && { maxBlockVertices }),
      ...(calibrationVertices !== undefined && { calibrationVertices }),
    }
    super(
      {
        jobs: [vertexJobInit(job, { ...options, blocks }), ...jobs],
        scheduling: rest,
        ...(mode !== undefined && { mode }),
        ...(validation !== undefined && { validation }),
      },
      components,
    )
    this.vertexJob = job
  }

  private readonly vertexJob: VertexJob

  /** The vertex job. */
  get job(): VertexJob {
    return this.vertexJob
  }

  /** Adds a camera frame to the vertex job; its blocks join the queue in frame order. */
  addFrame(frame: Frame): void {
    this.addInput(this.vertexJob.jobId, frame.index, frame)
  }

  /** Vertex·views waiting to be leased (`queuedUnits`, over every job). */
  get queuedVertices(): number {
    return this.queuedUnits
  }
}
