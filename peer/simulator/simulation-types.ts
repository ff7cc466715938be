import type { LiveMode, SchedulingOptions } from '../coordinator/coordinator.ts'
import type { PriorityClass, TaskBase } from '../jobs/kind.ts'
import type { Capability } from '../protocol/capability.ts'
import type { Lease } from '../protocol/job.ts'
import type { ValidationCounters } from '../coordinator/validation.ts'
import type { ValidationPolicy } from '../protocol/defaults.ts'
import type { AdversaryMix, Behaviour } from './adversaries.ts'
import type { CrowdProfile, DeviceClass } from './profile.ts'
import type { JobRun } from './simulated-jobs.ts'

/*
 * The simulator's types, apart from `simulation.ts` so that the report (`report.ts`) and the
 * simulation both depend on them rather than on each other.
 */

/**
 * A job of a simulated event, of any registered kind. Its compute and transfer times come from the
 * kind's cost model (`kind.cost`), its job, inputs and results from `kind.simulation`.
 */
export interface SimulatedJob {
  /** Registry name of its kind (`vertex`, `image-filter`; see `jobKinds`). */
  kind: string
  /** `live` tasks go before every `batch` task; a live job gets the simulation's `live` mode (its latency budget). */
  class: PriorityClass
  /**
   * Units a round asks for (the kind may round it: an image is a square). 0 chooses: a live (or
   * streamed) job the size that keeps `autoGridLoad` of the crowd's nominal capacity busy by itself
   * (the default show: the grid `showGrid` picks), a queued batch job what the whole crowd computes
   * in `autoBatchRoundSeconds`.
   */
  units: number
  /**
   * Rounds per second, arriving through the event as a show's moments do. Default: the simulation's
   * `fps` for a live job; a batch job without `fps` is queued instead (see `rounds`).
   */
  fps?: number
  /**
   * A queued batch job: rounds queued when the event starts. Default: topped up through the event,
   * so that it never runs dry (at least two rounds open and one round's units not yet cut into
   * tasks); after the event its open rounds drain.
   */
  rounds?: number
  /** Share among the jobs of its class (default 1). */
  weight?: number
  /**
   * Each round is leased whole, as one task (a match run's slice is), instead of cut into tasks the
   * size of each participant's speed (default false).
   */
  wholeRounds?: boolean
  /**
   * Its outcomes are kept (a match run's results store), so a round an identity answered for is
   * computed again once that identity is caught (README, "Trust"). Default: a batch job of a kind
   * whose findings are sparse (matches); a show's frames are shown and gone.
   */
  kept?: boolean
}

/** What to simulate. */
export interface SimulationInit {
  /** Participants present at once (leavers are replaced by joiners). */
  peers: number
  profile: CrowdProfile
  /** Length of the event: frames arrive during this time, ms (virtual). */
  durationMs: number
  /** Moments per second the cameras send (and the default rate of live `jobs`). */
  fps: number
  /** Share of the crowd that leaves per minute, each replaced by a newcomer (0.2 = 20 %/min). */
  churnPerMinute: number
  /**
   * Share of the crowd that crashes per minute (0.05 = 5 %/min): the participant vanishes without a
   * word in the middle of its block, its work lost, and is replaced by a newcomer.
   */
  failRate: number
  seed: number
  /**
   * Vertices per axis of the job's grid; 0 chooses it from the crowd (the seed: resolution follows the
   * compute available): the largest grid whose frames keep the crowd's nominal capacity `autoGridLoad` busy.
   * Only without `jobs`.
   */
  grid: number
  /** Cameras around the stage. Only without `jobs`. */
  cameras: number
  /**
   * Jobs of any kinds, run at once by one coordinator. Absent: the single-job form, one vertex job
   * over `grid` seen by `cameras` cameras, its frames at `fps` (live when `live` is set).
   */
  jobs?: SimulatedJob[]
  /** Live mode (for the live jobs); absent: every round completes however late. */
  live?: LiveMode
  scheduling?: Partial<SchedulingOptions>
  /** Pull (participants ask) or push (the coordinator hands out leases); see `CoordinatorInit.mode`. */
  mode?: 'pull' | 'push'
  /**
   * Pull mode: a participant refused work while a result of its own is still on its way asks again
   * once that result has arrived, as the real participant loop does (a refusal of a request sent
   * while it held a lease may only mean "not while you hold one"). Off, it waits on standby for the
   * next `workQueued`, which can leave a batch job's last rounds waiting for ever once no new input
   * comes. Default: on with `jobs`; off in the single-job form, whose seeded reports predate it.
   */
  askAfterResult?: boolean
  /** How long after a crash the transport notices the participant is gone, ms. */
  disconnectDetectMs: number
  /** Time allowed after the last frame for the backlog to finish, ms. */
  drainMs: number
  /** Called now and then with the virtual time reached. */
  onProgress?: (virtualMs: number, totalMs: number) => void
  /**
   * Result validation (README, "Trust"), with this policy over `validationDefaults`. Absent: results
   * are taken as they come, as the simulator did before validation (its seeded reports stay the same).
   */
  validation?: Partial<ValidationPolicy>
  /** Adversaries among the crowd (each newcomer is one with the mix's share); needs `validation`. */
  adversaries?: AdversaryMix
  /**
   * Whether the coordinator can check its jobs' results: default, where the kind has a checker;
   * false simulates kinds validated by replication and a quorum alone.
   */
  checkers?: boolean
}

/** What validation did in a simulation with `validation` (README, "Trust"). */
export interface SimulatedValidation {
  /** The adversaries (`MODEL:SHARE`), or `none`. */
  adversaries: string
  /** Identities that joined: adversaries (a rejoiner counts each identity) and honest ones. */
  adversariesJoined: number
  honestJoined: number
  quarantined: number
  /** Honest identities quarantined: must be 0. */
  falseAccusations: number
  /** Adversaries that told at least one lie and were never caught. */
  liarsUncaught: number
  /** From an adversary's first lie to its quarantine, virtual ms. */
  quarantineMs: LatencyPercentiles & { max: number }
  /** Units and items (a vertex across cameras) wrong in published outcomes, and items published. */
  wrongUnitsPublished: number
  wrongItemsPublished: number
  itemsPublished: number
  wrongItemShare: number
  /**
   * A sparse kind's (a match run's) findings in the outcomes that stand at the end: units where the
   * truth has a match, those hidden, units reporting a match that is not there, and the share found.
   */
  findings?: { true: number; missing: number; invented: number; foundShare: number }
  /** Kept rounds (`SimulatedJob.kept`) taken back (an identity answerable for them was caught) and computed again. */
  roundsRecomputed: number
  /** When the last outcome was published, virtual ms. */
  lastOutcomeMs: number
  /**
   * Units computed beyond one copy for validation (replicas, results withdrawn and computed again,
   * published rounds computed again) ÷ units counted.
   */
  extraWorkShare: number
  /** Units the coordinator recomputed in its checks ÷ units counted. */
  checkedUnitsShare: number
  counters: ValidationCounters
}

/** One row of the report's management table. */
export interface SimulatedParticipantRow {
  id: string
  device: string
  cores: number
  meanMsPerThread: number
  threadsProcessed: number
  threadsAssigned: number
  threadsWasted: number
  leasesExpired: number
  present: boolean
}

/** Latency percentiles of a job's completed rounds, ms. */
export interface LatencyPercentiles {
  p50: number
  p95: number
  p99: number
}

/**
 * One job's row of the report. Busy and capacity figures are measured over the event (from the
 * first round's arrival, 1 s in, to its end, `durationMs` later), in participant-seconds: a virtual
 * participant computes one task at a time with all it lends (its cores at its duty cycle), so one
 * second of it computing is one busy participant-second, and one second of it present is one
 * participant-second of capacity.
 */
export interface SimulatedJobRow {
  jobId: string
  kind: string
  class: 'live' | 'batch'
  weight: number
  /** Units a round asked for. */
  unitsPerRound: number
  roundsAdded: number
  roundsCompleted: number
  roundsDropped: number
  roundsDowngraded: number
  /** Rounds still open when the drain time ran out. */
  roundsUnfinished: number
  /**
   * Arrival to outcome of its completed rounds. Meaningful for live (and streamed) jobs; a queued
   * batch round's includes the time it waited behind earlier rounds.
   */
  latencyMs: LatencyPercentiles
  /** Units counted (each once) in its rounds, complete or not. */
  unitsCounted: number
  /** Units of its completed rounds: equal to `unitsCounted` when no round was dropped or left open. */
  unitsInCompletedRounds: number
  /** Units counted more than once in a completed round: must be 0. */
  doubleCountedUnits: number
  /** Units computed, counted or not (backup copies that lost, late results, aborted work). */
  unitsComputed: number
  /** Virtual compute time spent on its tasks during the event, counted and wasted, participant-seconds. */
  busyParticipantSeconds: number
  /** `busyParticipantSeconds` ÷ the report's `capacityParticipantSeconds`. */
  capacityShare: number
}

/**
 * What a simulation reports. With several jobs, the frame figures (`frames*`, `latencyMs`,
 * `outcomeFps`) are the primary job's (the first live job, else the first job); thread figures
 * (`threads*`, `lostThreads`, `doubleCountedThreads`, `duplicateWorkShare`, `reassignments`) are
 * totals over every job, in each kind's own units.
 */
export interface SimulationReport {
  seed: number
  profile: string
  peers: number
  virtualSeconds: number
  framesAdded: number
  framesCompleted: number
  framesDropped: number
  framesDowngraded: number
  /** Threads of frames neither completed nor dropped that no queue or lease accounts for: must be 0. */
  lostThreads: number
  /** Threads counted more than once in a completed frame: must be 0. */
  doubleCountedThreads: number
  /** Frames still open when the drain time ran out (work not lost, just not finished). */
  framesUnfinished: number
  latencyMs: LatencyPercentiles & { max: number }
  outcomeFps: number
  /** Share of computed threads that did not count (backup copies that lost, late results, aborted work). */
  duplicateWorkShare: number
  threadsComputed: number
  threadsCounted: number
  reassignments: number
  joins: number
  leaves: number
  crashes: number
  events: number
  wallSeconds: number
  /** Participant-seconds simulated per wall-clock second. */
  participantSecondsPerWallSecond: number
  participants: SimulatedParticipantRow[]
  /** One row per job, in the order given (the single-job form's one vertex job). */
  jobs: SimulatedJobRow[]
  /**
   * The compute time the crowd had during the event: the sum over participants of the time each
   * was present within it, participant-seconds (see `SimulatedJobRow`).
   */
  capacityParticipantSeconds: number
  /** Share of `capacityParticipantSeconds` no task kept busy (1 − the jobs' busy time ÷ capacity). */
  idleShare: number
  /** With `validation`: what it did. */
  validation?: SimulatedValidation
}

/** A task being computed: its lease, its job, when it started and how long it takes unslowed. */
export interface Computation {
  readonly lease: Lease<TaskBase>
  readonly job: JobRun
  readonly startedAt: number
  /** Its compute time at the participant's rate, without a straggler's slowdown, ms. */
  readonly computeMs: number
  readonly timer: unknown
}

/** A simulated participant (exported for the report). */
export interface VirtualParticipant {
  readonly id: string
  readonly device: DeviceClass
  readonly capability: Capability
  /** Reference units (threads) per second at its duty cycle. */
  readonly rate: number
  readonly bandwidth: number
  readonly rtt: number
  /** When it joined and left (crashed), virtual ms. */
  readonly joinedAt: number
  leftAt: number | undefined
  alive: boolean
  standby: boolean
  asking: boolean
  /** Results sent and not yet arrived at the coordinator. */
  resultsInFlight: number
  /** Refused while a result was on its way: asks again when the last one arrives (`askAfterResult`). */
  askOnDelivery: boolean
  /** Leases received and not finished, in order. */
  readonly queue: Lease<TaskBase>[]
  computing: Computation | undefined
  /** The join link it came through (a rejoiner comes back through the same one). */
  readonly link: string
  /** An adversary's behaviour; undefined: honest. */
  readonly behaviour: Behaviour | undefined
  /** Results it returned, and when it first lied. */
  returned: number
  firstLieAt: number | undefined
}
