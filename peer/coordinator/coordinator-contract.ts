import type { Clock } from '../protocol/clock.ts'
import type { CrowdmeshError } from '../protocol/errors.ts'
import type {
  AnyJobKind,
  JobSpec,
  PriorityClass,
  ResultValidator,
  TaskBase,
  WorkerEnv,
} from '../jobs/kind.ts'
import type { ValidationPolicy } from '../protocol/defaults.ts'
import type { Lease } from '../protocol/job.ts'
import type { Logger } from '../protocol/logger.ts'
import type { RoundSinkFactory } from './frame-sink.ts'
import type { ParticipantRow } from './participant-book.ts'
import type { TrustRow } from './trust-book.ts'
import type { ValidationCounters } from './validation.ts'

/*
 * The coordinator's contract with its callers: its options, its events and the reports it gives.
 * The scheduling itself is in `coordinator.ts`.
 */

/** Scheduling options; each defaults from `schedulingDefaults`. */
export interface SchedulingOptions {
  targetBlockMs: number
  batchBesideLiveMs: number
  maxLeasesPerParticipant: number
  maxTaskFailures: number
  deadlineSlack: number
  minDeadlineMs: number
  calibrationDeadlineMs: number
  speculation: boolean
  maxCopies: number
  rateSmoothing: number
  maxDecidingRounds: number
}

/** Live mode: what to do with a frame that cannot finish within its latency budget. */
export interface LiveMode {
  /** A frame not complete this long after it arrived is dropped (and reported), ms. */
  latencyBudgetMs: number
  /**
   * `downgrade`: a round that would not finish in time at the crowd's measured speed is admitted at a
   * coarser level of its kind (`JobKind.levels`), and reported; one late all the same is still dropped.
   * `drop`: rounds keep the job's full size and late ones are dropped.
   */
  overload: 'drop' | 'downgrade'
}

/** A job the coordinator runs beside others (see `CoordinatorInit.jobs`). */
export interface JobInit<T = unknown> {
  spec: JobSpec
  kind: AnyJobKind
  /** `live` work goes before every `batch` task (default: `live` when `live` mode is set, else `batch`). */
  class?: PriorityClass
  /** Share among the jobs of its class (default 1). */
  weight?: number
  /** Live mode with a latency budget for each round of this job. */
  live?: LiveMode
  /** Task sizes, units (default: the kind's `cost`). */
  taskUnits?: { min: number; max: number; calibration: number }
  /** How its rounds are reduced (default: the kind's own sink). */
  sinks?: RoundSinkFactory<T>
  /**
   * Where its rounds come from besides `addInput`: drawn one at a time when a participant asks and
   * none is queued (a durable task pool), so each round can be chosen for the participant that
   * will compute it (one that holds its inputs).
   */
  source?: RoundSource
  /**
   * How its results are validated against lying and broken participants (`kindValidator` builds one
   * from its kind). Absent: every well-formed result is taken as it comes.
   */
  validator?: ResultValidator
}

/** Rounds drawn on demand for the participant asking (see `JobInit.source`). */
export interface RoundSource {
  /** Whether a round may be drawn now: read on every lease request, so cheap. */
  readonly ready: boolean
  /**
   * A round for this participant, which holds `holds` (`Capability.holds`): its index and its
   * input, or undefined when there is none for it now. `jobId`: the round is of another job sharing
   * this source (one pool feeds the match jobs of several runs; default the job asked).
   */
  draw(
    participantId: string,
    holds: readonly string[],
  ): { jobId?: string; frameIndex: number; input: unknown } | undefined
  /** The round drawn could not open (its job is not running, its kind refused its input). */
  refused(jobId: string, frameIndex: number, reason: string): void
}

/** Options of a coordinator. */
export interface CoordinatorInit<T = unknown> {
  /**
   * Jobs of any kinds, run at once; more can be added and ended while participants work. (One vertex
   * job with the options it had before job kinds: `VertexCoordinator` in `peer/jobs/vertex/`.)
   */
  jobs: JobInit<T>[]
  scheduling?: Partial<SchedulingOptions>
  /**
   * `pull` (default): participants ask for work. `push`: the coordinator hands leases to the
   * participants it knows with spare capacity (`leaseOffered`) whenever work is queued or a result
   * frees a slot; the seed describes both. Pull keeps the coordinator simple and lets a participant
   * pace itself; push saves a round trip per task where round trips are long.
   */
  mode?: 'pull' | 'push'
  /** The validation policy (`validationDefaults`); it applies to jobs with a `validator`. */
  validation?: Partial<ValidationPolicy>
}

/** Injected dependencies. */
export interface CoordinatorComponents {
  clock: Clock
  logger?: Logger
  /**
   * Uniform in [0, 1): which results are checked and which of their units (default: the operating
   * system's cryptographic source, which no participant can predict; the simulator seeds its own).
   */
  random?: () => number
  /**
   * What the coordinator's checkers read inputs through (the frames, files and videos a worker would):
   * a job added without a `validator` gets its kind's (`kindValidator`). Absent: such a job's results
   * are taken as they come.
   */
  checkerEnv?: WorkerEnv
}

/** A result that was refused: why, for statistics and logs. */
export interface RejectedResult {
  participantId: string
  leaseId: number
  error: CrowdmeshError
}

/** One frame's record in the statistics. */
export interface FrameReport {
  /** The job the round is of. */
  jobId: string
  frameIndex: number
  level: number
  threads: number
  arrivedAt: number
  /** Arrival to complete outcome (or to the drop), ms. */
  latencyMs: number
  /** Blocks granted again after an expiry, a failure or a participant leaving. */
  reassignments: number
  /** Threads computed twice (backup copies and late results of blocks already done). */
  duplicateThreads: number
  dropped: boolean
  /** Why a frame was dropped other than for its latency budget (its outcome could not be decided). */
  error?: string
  /**
   * Identities whose results (computed, or vouched for by an agreeing replica) stand in this outcome
   * without a check that covered them whole: if one of them is caught lying later, the outcome is
   * suspect. A consumer that keeps outcomes (a match run's pool) recomputes those rounds then
   * (`participantQuarantined`). Absent where the job is not validated.
   */
  answerable?: string[]
}

/** Control events of a coordinator. */
export interface CoordinatorEvents<T, K extends TaskBase = TaskBase> {
  /** Every thread of a frame counted once and its outcome is decided. */
  frameComplete: [T, FrameReport]
  /** A live frame missed its latency budget and was dropped: reported, never silent. */
  frameDropped: [FrameReport]
  /** A live frame was admitted on a coarser grid to meet its budget. */
  frameDowngraded: [{ jobId: string; frameIndex: number; level: number }]
  /** A task's result counted; `threads` is its size in its kind's units. */
  blockDone: [{ block: K; participantId: string; threads: number }]
  /** A task was leased (`units` of its kind; a backup copy or a replica too). */
  leaseGranted: [{ participantId: string; jobId: string; units: number }]
  /** A lease expired, failed or its participant left: the task is queued again. */
  leaseRequeued: [Lease<K>]
  /** A lease is no longer wanted (its block is done by another participant, or its frame ended): the transport may tell its holder to stop. */
  leaseCancelled: [{ participantId: string; leaseId: number }]
  /** A result was refused (bad bytes, a lease that is not its own, a lying participant). The coordinator keeps serving. */
  resultRejected: [RejectedResult]
  /** Blocks joined the queue: participants on standby may ask again. */
  workQueued: []
  /** Push mode: a lease for a participant that did not ask; the transport delivers it. */
  leaseOffered: [{ participantId: string; lease: Lease<K> }]
  /**
   * The last new block of a frame is out: idle participants that ask now may get backup copies of its
   * slowest outstanding blocks. The transport wakes a few fast participants on standby.
   */
  backupsWanted: [frameIndex: number, jobId: string]
  /** A job was added while the coordinator runs (the transport announces it). */
  jobAdded: [JobSpec]
  /** A job ended: its open rounds were dropped and its leases cancelled. */
  jobEnded: [jobId: string]
  /** The operator paused a job: none of its tasks is leased until it resumes. */
  jobPaused: [jobId: string]
  jobResumed: [jobId: string]
  /** The operator changed a job's share among the jobs of its class. */
  jobWeighted: [{ jobId: string; weight: number }]
  /**
   * A check proved one of a participant's results wrong: its identity is quarantined (it gets no more
   * work; the transport closes its connection with `reason`), and its results in open rounds were
   * withdrawn (`resultWithdrawn` for each).
   */
  participantQuarantined: [{ participantId: string; reason: string; withdrawn: number }]
  /**
   * A result was taken unverified: it waited `replicaPatienceMs` for a replica with no other identity
   * here to compute one, and the coordinator cannot check it (README, "Trust").
   */
  resultUnverified: [{ participantId: string; jobId: string; frameIndex: number; task: TaskBase }]
  /** A counted result was taken back from its open round (its participant was caught): its task is queued again. */
  resultWithdrawn: [{ participantId: string; jobId: string; frameIndex: number; units: number }]
}

/** A job as the operator's console shows it (`Coordinator.jobStates`). */
export interface JobState {
  jobId: string
  /** `name@version`. */
  kind: string
  class: PriorityClass
  weight: number
  paused: boolean
  live: boolean
  /** Rounds neither complete nor dropped. */
  openRounds: number
  /** Units waiting to be leased. */
  queuedUnits: number
}

/** The coordinator's books checked against each other: what the invariants tests and the simulator read. */
export interface CoordinatorAudit {
  /** Frames neither complete nor dropped. */
  openFrames: number
  /** Threads of open frames that are neither counted, nor queued, nor under an active lease: lost work. */
  unaccountedThreads: number
  /** Active leases whose deadline has passed without the coordinator noticing. */
  overdueLeases: number
  /** The frame the next new lease must come from (earliest with queued work). */
  firstFrameWithWork: number | undefined
}

/** The statistics of a coordinator (the seed's management table and per-frame figures). */
export interface CoordinatorStatistics {
  participants: ParticipantRow[]
  frames: FrameReport[]
  framesCompleted: number
  framesDropped: number
  threadsCounted: number
  /** Threads computed that did not count (backups that lost, late copies). */
  threadsWasted: number
  /** Completed frames per second over the span from the first arrival to the last completion. */
  outcomeFps: number
  /** Result validation: checks, replicas, withdrawals (README, "Trust"). */
  validation: ValidationCounters
  /** Every identity met: its trust, and its checks passed and failed. */
  trust: TrustRow[]
}
