import type { CoordinatorAudit, CoordinatorStatistics, FrameReport } from '../coordinator/coordinator.ts'
import type { JobRun } from './simulated-jobs.ts'
import type {
  LatencyPercentiles,
  SimulatedJobRow,
  SimulatedValidation,
  SimulationInit,
  SimulationReport,
  VirtualParticipant,
} from './simulation-types.ts'

/** What the simulation counted itself, beside the coordinator's statistics. */
export interface RunCounters {
  audit: CoordinatorAudit
  runs: readonly JobRun[]
  threadsComputed: number
  joins: number
  leaves: number
  crashes: number
  events: number
  wallSeconds: number
  virtualMs: number
  /** The span busy and capacity figures are measured over (the event, up to where the run ended), ms. */
  window: { start: number; end: number }
  participants: Map<string, VirtualParticipant>
  trust: TrustCounters
}

/** What the simulation counted of adversaries and validation. */
export interface TrustCounters {
  adversariesJoined: number
  honestJoined: number
  /** Identities a join link turned away (it held all the identities it may). */
  turnedAway: number
  falseAccusations: number
  liarsUncaught: number
  /** Identities quarantined. */
  readonly caught: Set<string>
  /** First lie to quarantine, per caught adversary, ms. */
  readonly quarantineMs: number[]
  wrongUnits: number
  wrongItems: number
  items: number
  /** A sparse kind's units in standing outcomes: true findings, hidden ones, invented ones. */
  trueUnits: number
  missingUnits: number
  inventedUnits: number
  /** Kept rounds (`SimulatedJob.kept`) taken back (an identity answerable for them was caught) and computed again. */
  roundsRecomputed: number
  unitsRecomputed: number
  /** When the last outcome was published, virtual ms. */
  lastOutcomeMs: number
}

export function trustCounters(): TrustCounters {
  return {
    adversariesJoined: 0,
    honestJoined: 0,
    turnedAway: 0,
    falseAccusations: 0,
    liarsUncaught: 0,
    caught: new Set(),
    quarantineMs: [],
    wrongUnits: 0,
    wrongItems: 0,
    items: 0,
    trueUnits: 0,
    missingUnits: 0,
    inventedUnits: 0,
    roundsRecomputed: 0,
    unitsRecomputed: 0,
    lastOutcomeMs: 0,
  }
}

/** The report's validation section (a simulation with `validation`). */
function validationReport(
  init: SimulationInit,
  stats: CoordinatorStatistics,
  trust: TrustCounters,
): SimulatedValidation {
  // One copy of the work: a round computed again after it was taken back counts once.
  const counted = Math.max(1, stats.threadsCounted - trust.unitsRecomputed)
  const v = stats.validation
  return {
    adversaries: init.adversaries?.name ?? 'none',
    adversariesJoined: trust.adversariesJoined,
    honestJoined: trust.honestJoined,
    quarantined: trust.caught.size,
    falseAccusations: trust.falseAccusations,
    liarsUncaught: trust.liarsUncaught,
    quarantineMs: latencies(trust.quarantineMs),
    wrongUnitsPublished: trust.wrongUnits,
    wrongItemsPublished: trust.wrongItems,
    itemsPublished: trust.items,
    wrongItemShare: trust.items > 0 ? trust.wrongItems / trust.items : 0,
    ...(trust.trueUnits + trust.inventedUnits > 0 && {
      findings: {
        true: trust.trueUnits,
        missing: trust.missingUnits,
        invented: trust.inventedUnits,
        foundShare: trust.trueUnits > 0 ? (trust.trueUnits - trust.missingUnits) / trust.trueUnits : 1,
      },
    }),
    roundsRecomputed: trust.roundsRecomputed,
    lastOutcomeMs: trust.lastOutcomeMs,
    extraWorkShare: share((v.replicaUnits + v.unitsWithdrawn + trust.unitsRecomputed) / counted),
    checkedUnitsShare: share(v.unitsChecked / counted),
    counters: v,
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

const tenth = (x: number) => Math.round(x * 10) / 10
const hundredth = (x: number) => Math.round(x * 100) / 100
const share = (x: number) => Math.round(x * 10000) / 10000

function latencies(values: readonly number[]): LatencyPercentiles & { max: number } {
  const sorted = values.slice().sort((a, b) => a - b)
  return {
    p50: tenth(percentile(sorted, 50)),
    p95: tenth(percentile(sorted, 95)),
    p99: tenth(percentile(sorted, 99)),
    max: tenth(sorted.at(-1) ?? 0),
  }
}

/** Completed rounds per second from the first arrival to the last completion (the coordinator's figure, for one job). */
function outcomeFps(frames: readonly FrameReport[]): number {
  const completed = frames.filter((r) => !r.dropped)
  const first = frames.reduce((m, r) => Math.min(m, r.arrivedAt), Number.POSITIVE_INFINITY)
  const last = completed.reduce((m, r) => Math.max(m, r.arrivedAt + r.latencyMs), 0)
  return completed.length > 0 && last > first ? (completed.length * 1000) / (last - first) : 0
}

/** Participant-milliseconds of presence within the window: the crowd's capacity (see `SimulationReport`). */
function capacityMs(participants: Iterable<VirtualParticipant>, window: RunCounters['window']): number {
  let total = 0
  for (const p of participants) {
    const from = Math.max(p.joinedAt, window.start)
    const to = Math.min(p.leftAt ?? Number.POSITIVE_INFINITY, window.end)
    if (to > from) total += to - from
  }
  return total
}

/** Builds a simulation's report from the coordinator's statistics and the run's own counters. */
export function report(
  init: SimulationInit,
  stats: CoordinatorStatistics,
  run: RunCounters,
): SimulationReport {
  const participantSeconds = (init.peers * (init.durationMs + 1000)) / 1000
  const capacity = capacityMs(run.participants.values(), run.window)
  const framesOf = new Map<string, FrameReport[]>(run.runs.map((job) => [job.jobId, []]))
  for (const frame of stats.frames) framesOf.get(frame.jobId)?.push(frame)
  const jobs = run.runs.map((job) => jobRow(job, framesOf.get(job.jobId)!, capacity))
  // The single-job figures are the primary job's: the first live one, else the first.
  const primaryAt = Math.max(
    0,
    run.runs.findIndex((job) => job.class === 'live'),
  )
  const primary = jobs[primaryAt]!
  const busyMs = run.runs.reduce((a, job) => a + job.busyMs, 0)
  return {
    seed: init.seed,
    profile: init.profile.name,
    peers: init.peers,
    virtualSeconds: tenth(run.virtualMs / 1000),
    framesAdded: primary.roundsAdded,
    framesCompleted: primary.roundsCompleted,
    framesDropped: primary.roundsDropped,
    framesDowngraded: primary.roundsDowngraded,
    lostThreads: run.audit.unaccountedThreads,
    doubleCountedThreads: run.runs.reduce((a, job) => a + job.doubleCounted, 0),
    framesUnfinished: primary.roundsUnfinished,
    latencyMs: latencies(run.runs[primaryAt]!.latencies),
    outcomeFps: hundredth(outcomeFps(framesOf.get(primary.jobId)!)),
    duplicateWorkShare: run.threadsComputed > 0 ? share(1 - stats.threadsCounted / run.threadsComputed) : 0,
    threadsComputed: run.threadsComputed,
    threadsCounted: stats.threadsCounted,
    reassignments: stats.frames.reduce((a, f) => a + f.reassignments, 0),
    joins: run.joins,
    leaves: run.leaves,
    crashes: run.crashes,
    events: run.events,
    wallSeconds: Math.round(run.wallSeconds * 1000) / 1000,
    participantSecondsPerWallSecond: Math.round(participantSeconds / Math.max(run.wallSeconds, 1e-6)),
    participants: stats.participants.map((row) => {
      const p = run.participants.get(row.id)
      return {
        id: row.id,
        device: p?.device.name ?? '?',
        cores: row.cores,
        meanMsPerThread: Math.round(row.meanMsPerThread * 10) / 10,
        threadsProcessed: row.threadsProcessed,
        threadsAssigned: row.threadsAssigned,
        threadsWasted: row.threadsWasted,
        leasesExpired: row.leasesExpired,
        present: row.present,
      }
    }),
    jobs,
    capacityParticipantSeconds: tenth(capacity / 1000),
    idleShare: capacity > 0 ? share(1 - busyMs / capacity) : 0,
    ...(init.validation !== undefined && { validation: validationReport(init, stats, run.trust) }),
  }
}

function jobRow(job: JobRun, frames: readonly FrameReport[], capacityMs: number): SimulatedJobRow {
  const completed = frames.filter((f) => !f.dropped)
  const { max: _max, ...percentiles } = latencies(job.latencies)
  return {
    jobId: job.jobId,
    kind: job.kind.name,
    class: job.class,
    weight: job.weight,
    unitsPerRound: job.unitsPerRound,
    roundsAdded: job.roundsAdded,
    roundsCompleted: completed.length,
    roundsDropped: frames.length - completed.length,
    roundsDowngraded: job.downgraded,
    roundsUnfinished: job.roundsAdded - frames.length,
    latencyMs: percentiles,
    unitsCounted: job.unitsCounted,
    unitsInCompletedRounds: completed.reduce((a, f) => a + f.threads, 0),
    doubleCountedUnits: job.doubleCounted,
    unitsComputed: job.unitsComputed,
    busyParticipantSeconds: tenth(job.busyMs / 1000),
    capacityShare: capacityMs > 0 ? share(job.busyMs / capacityMs) : 0,
  }
}
