import type {
  AnyJobKind,
  JobSpec,
  PriorityClass,
  ResultValidator,
  RoundSink,
  TaskBase,
} from '../jobs/kind.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'
import type { SizerLimits, TaskCost } from './block-sizer.ts'
import type { JobInit, JobState, LiveMode, RoundSource } from './coordinator-contract.ts'
import { kindSinks, type RoundSinkFactory } from './frame-sink.ts'
import type { Contribution } from './validation.ts'
import { type RoundWork, WorkQueue } from './work-queue.ts'

/*
 * The jobs a coordinator runs, one slot each, and which one a participant's next task comes from.
 */

/** Round ids of job slot k start at k·2³² (see `RoundWork.round`). */
const roundsPerSlot = 2 ** 32

/** A job the coordinator runs: its kind, its share of the crowd, its rounds and their sinks. */
export interface JobSlot<T> {
  readonly id: number
  readonly spec: JobSpec
  readonly kind: AnyJobKind
  /** `name@version`, as participants state the kinds they run. */
  readonly tag: string
  readonly class: PriorityClass
  /** Its share among the jobs of its class; the operator may change it (`Coordinator.setWeight`). */
  weight: number
  /** Paused by the operator: none of its tasks is leased until it resumes; its open rounds wait. */
  paused: boolean
  readonly live: LiveMode | undefined
  readonly limits: SizerLimits
  readonly cost: TaskCost
  readonly sinks: RoundSinkFactory<T>
  readonly queue: WorkQueue
  /** Where more rounds are drawn from when none is queued (`JobInit.source`). */
  readonly source: RoundSource | undefined
  readonly roundSinks: Map<number, RoundSink<TaskBase, unknown, T>>
  readonly budgetTimers: Map<number, unknown>
  /** Rounds that ended (complete or dropped): a late input for one is ignored. */
  readonly ended: Set<number>
  /** Rounds whose tail was announced (`backupsWanted`), so it is announced once. */
  readonly tails: Set<number>
  readonly duplicateThreads: Map<number, number>
  /** How its results are validated (`JobInit.validator`); undefined: taken as they come. */
  readonly validator: ResultValidator | undefined
  /** Counted results waiting for a replica lease, oldest first. */
  replicas: Contribution[]
  /** Reference units granted (units × relative cost): its stride pass is this ÷ weight. */
  granted: number
  /** Rounds whose outcome is being decided off the event loop (0 or 1: one at a time). */
  deciding: number
  /** Complete rounds waiting for that decision to end before theirs starts, oldest first. */
  waiting: { work: RoundWork; sink: RoundSink<TaskBase, unknown, T>; answerable: string[] }[]
}

/**
 * A new job's slot `id`, its description checked against its kind's schema. It starts with the
 * least share of its class among `running`, so it neither waits for older jobs nor floods them.
 */
export function openSlot<T>(
  id: number,
  init: JobInit<T>,
  running: readonly JobSlot<T>[],
  targetBlockMs: number,
): JobSlot<T> {
  const { spec, kind } = init
  if (spec.kind !== kind.name || spec.version !== kind.version)
    throw new CrowdmeshError(
      `job ${spec.jobId} is ${spec.kind}@${spec.version}, not ${kind.name}@${kind.version}`,
    )
  parseMessage(kind.schemas.job, spec.description)
  const jobClass = init.class ?? (init.live !== undefined ? 'live' : 'batch')
  const weight = init.weight ?? 1
  if (!(weight > 0)) throw new CrowdmeshError(`job ${spec.jobId}: weight must be above 0`)
  return {
    id,
    spec,
    kind,
    tag: `${kind.name}@${kind.version}`,
    class: jobClass,
    weight,
    paused: false,
    live: init.live,
    limits: {
      targetBlockMs,
      minUnits: init.taskUnits?.min ?? kind.cost.minTaskUnits,
      maxUnits: init.taskUnits?.max ?? kind.cost.maxTaskUnits,
      calibrationUnits: init.taskUnits?.calibration ?? kind.cost.calibrationUnits,
    },
    cost: kind.cost,
    sinks: init.sinks ?? kindSinks<T>(),
    queue: new WorkQueue(id * roundsPerSlot),
    source: init.source,
    roundSinks: new Map(),
    budgetTimers: new Map(),
    ended: new Set(),
    tails: new Set(),
    duplicateThreads: new Map(),
    validator: init.validator,
    replicas: [],
    deciding: 0,
    waiting: [],
    granted: leastShare(
      running.filter((s) => s.class === jobClass),
      weight,
    ),
  }
}

/**
 * The reference units granted that put a job of `weight` level with the least-served of `peers` (0
 * when there are none): where a new or resumed job starts, so it neither waits nor floods.
 */
export function leastShare<T>(peers: readonly JobSlot<T>[], weight: number): number {
  return peers.length === 0 ? 0 : Math.min(...peers.map((s) => s.granted / s.weight)) * weight
}

/** Gives a job a new weight, keeping its stride pass: the change applies from now on. */
export function reweigh<T>(slot: JobSlot<T>, weight: number): void {
  if (!(weight > 0) || !Number.isFinite(weight))
    throw new CrowdmeshError(`job ${slot.spec.jobId}: weight must be a number above 0`)
  slot.granted = (slot.granted / slot.weight) * weight
  slot.weight = weight
}

/** A job as the operator's console shows it. */
export function slotState<T>(slot: JobSlot<T>): JobState {
  return {
    jobId: slot.spec.jobId,
    kind: slot.tag,
    class: slot.class,
    weight: slot.weight,
    paused: slot.paused,
    live: slot.live !== undefined,
    openRounds: slot.queue.size + slot.deciding + slot.waiting.length,
    queuedUnits: slot.queue.queuedUnits,
  }
}

/**
 * The job a participant's next task comes from: of the jobs not paused with queued work (or a round
 * source ready to draw) whose kind it runs,
 * a live one before any batch one, then the least share granted for its weight (ties: the job
 * added first).
 */
export function pickSlot<T>(
  slots: readonly JobSlot<T>[],
  runs: (tag: string) => boolean,
): JobSlot<T> | undefined {
  let best: JobSlot<T> | undefined
  let bestPass = 0
  for (const slot of slots) {
    if (slot.class === 'batch' && best?.class === 'live') continue
    if (slot.paused || !runs(slot.tag)) continue
    if (slot.queue.firstWithWork() === undefined && slot.replicas.length === 0 && slot.source?.ready !== true)
      continue
    const pass = slot.granted / slot.weight
    if (best === undefined || (slot.class === 'live' && best.class === 'batch') || pass < bestPass) {
      best = slot
      bestPass = pass
    }
  }
  return best
}
