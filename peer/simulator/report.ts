import type { Coordinator, CoordinatorStatistics } from '../coordinator/coordinator.ts'
import type { SimulationInit, SimulationReport, VirtualParticipant } from './simulation-types.ts'

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** Builds a simulation's report from the coordinator's statistics and the run's own counters. */
export function report(
  init: SimulationInit,
  stats: CoordinatorStatistics,
  run: {
    audit: ReturnType<Coordinator['audit']>
    latencies: number[]
    doubleCounted: number
    downgraded: number
    framesAdded: number
    threadsComputed: number
    joins: number
    leaves: number
    crashes: number
    events: number
    wallSeconds: number
    virtualMs: number
    participants: Map<string, VirtualParticipant>
  },
): SimulationReport {
  const sorted = run.latencies.slice().sort((a, b) => a - b)
  const round = (x: number) => Math.round(x * 10) / 10
  const participantSeconds = (init.peers * (init.durationMs + 1000)) / 1000
  return {
    seed: init.seed,
    profile: init.profile.name,
    peers: init.peers,
    virtualSeconds: round(run.virtualMs / 1000),
    framesAdded: run.framesAdded,
    framesCompleted: stats.framesCompleted,
    framesDropped: stats.framesDropped,
    framesDowngraded: run.downgraded,
    lostThreads: run.audit.unaccountedThreads,
    doubleCountedThreads: run.doubleCounted,
    framesUnfinished: run.audit.openFrames,
    latencyMs: {
      p50: round(percentile(sorted, 50)),
      p95: round(percentile(sorted, 95)),
      p99: round(percentile(sorted, 99)),
      max: round(sorted.at(-1) ?? 0),
    },
    outcomeFps: Math.round(stats.outcomeFps * 100) / 100,
    duplicateWorkShare:
      run.threadsComputed > 0
        ? Math.round((1 - stats.threadsCounted / run.threadsComputed) * 10000) / 10000
        : 0,
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
  }
}
