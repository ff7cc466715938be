import type { LiveMode, SchedulingOptions } from '../coordinator/coordinator.ts'
import type { Capability } from '../protocol/capability.ts'
import type { Lease } from '../protocol/job.ts'
import type { CrowdProfile, DeviceClass } from './profile.ts'

/*
 * The simulator's types, apart from `simulation.ts` so that the report (`report.ts`) and the
 * simulation both depend on them rather than on each other.
 */

/** What to simulate. */
export interface SimulationInit {
  /** Participants present at once (leavers are replaced by joiners). */
  peers: number
  profile: CrowdProfile
  /** Length of the event: frames arrive during this time, ms (virtual). */
  durationMs: number
  /** Moments per second the cameras send. */
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
   */
  grid: number
  /** Cameras around the stage. */
  cameras: number
  /** Live mode; absent: batch, every frame completes however late. */
  live?: LiveMode
  scheduling?: Partial<SchedulingOptions>
  /** Pull (participants ask) or push (the coordinator hands out leases); see `CoordinatorInit.mode`. */
  mode?: 'pull' | 'push'
  /** How long after a crash the transport notices the participant is gone, ms. */
  disconnectDetectMs: number
  /** Time allowed after the last frame for the backlog to finish, ms. */
  drainMs: number
  /** Called now and then with the virtual time reached. */
  onProgress?: (virtualMs: number, totalMs: number) => void
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

/** What a simulation reports. */
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
  latencyMs: { p50: number; p95: number; p99: number; max: number }
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
}

/** A simulated participant (exported for the report). */
export interface VirtualParticipant {
  readonly id: string
  readonly device: DeviceClass
  readonly capability: Capability
  /** Threads per second at its duty cycle. */
  readonly rate: number
  readonly bandwidth: number
  readonly rtt: number
  alive: boolean
  standby: boolean
  asking: boolean
  /** Leases received and not finished, in order. */
  readonly queue: Lease[]
  computing: { lease: Lease; startedAt: number; timer: unknown } | undefined
}
