import type { FrameReport } from '../coordinator/coordinator.ts'
import type { Clock } from '../protocol/clock.ts'
import { consoleDefaults } from '../protocol/defaults.ts'
import type { SeriesPoint } from './console-protocol.ts'

interface Track {
  completed: number
  dropped: number
  /** Latencies of its last rounds, ms (a ring of `latencyRounds`). */
  latencies: number[]
  /** Units of its last completed round: what one round costs. */
  unitsPerRound: number
  units: number
  /** Once a second: [at, rounds completed, units], over the rate window. */
  recent: [number, number, number][]
  points: SeriesPoint[]
}

/**
 * Each job's figures over time, from the coordinator's events: rounds completed and dropped, latency
 * percentiles of its last rounds, rates over the last `rateWindowMs`, and its diagram (one point a
 * second, the last `maxSeriesPoints`). Also when each alert's condition began.
 */
export class JobTracks {
  private readonly clock: Clock
  private readonly startedAt: number
  private readonly tracks = new Map<string, Track>()
  private readonly endedIds = new Set<string>()
  private readonly conditions = new Map<string, number>()

  constructor(clock: Clock) {
    this.clock = clock
    this.startedAt = clock.now()
  }

  round(report: FrameReport): void {
    const track = this.track(report.jobId)
    if (report.dropped) track.dropped++
    else {
      track.completed++
      track.unitsPerRound = report.threads
    }
    track.latencies.push(report.latencyMs)
    if (track.latencies.length > consoleDefaults.latencyRounds) track.latencies.shift()
  }

  units(jobId: string, units: number): void {
    this.track(jobId).units += units
  }

  ended(jobId: string): void {
    this.track(jobId)
    this.endedIds.add(jobId)
  }

  endedJobs(): string[] {
    return [...this.endedIds]
  }

  /** Units one round of the job costs (0 before its first completes). */
  unitsPerRound(jobId: string | undefined): number {
    return jobId === undefined ? 0 : (this.tracks.get(jobId)?.unitsPerRound ?? 0)
  }

  /** A new point for every job's diagram; `participants` connected now. */
  sample(participants: number): void {
    const now = this.clock.now()
    for (const [jobId, track] of this.tracks) {
      if (this.endedIds.has(jobId) && track.points.length > 0) continue
      track.recent.push([now, track.completed, track.units])
      while (track.recent.length > 1 && now - track.recent[0]![0] > consoleDefaults.rateWindowMs)
        track.recent.shift()
      track.points.push([
        Math.round((now - this.startedAt) / 100) / 10,
        track.completed,
        percentile(track.latencies, 0.95),
        participants,
        Math.round(rates(track).units),
      ])
      if (track.points.length > consoleDefaults.maxSeriesPoints) track.points.shift()
    }
  }

  figures(jobId: string): {
    roundsCompleted: number
    roundsDropped: number
    rate: number
    latencyP50: number | null
    latencyP95: number | null
    unitsPerSec: number
  } {
    const track = this.tracks.get(jobId)
    if (track === undefined)
      return {
        roundsCompleted: 0,
        roundsDropped: 0,
        rate: 0,
        latencyP50: null,
        latencyP95: null,
        unitsPerSec: 0,
      }
    const { rounds, units } = rates(track)
    return {
      roundsCompleted: track.completed,
      roundsDropped: track.dropped,
      rate: Math.round(rounds * 100) / 100,
      latencyP50: percentile(track.latencies, 0.5),
      latencyP95: percentile(track.latencies, 0.95),
      unitsPerSec: Math.round(units),
    }
  }

  /** Every job's whole diagram. */
  histories(): Record<string, SeriesPoint[]> {
    return Object.fromEntries([...this.tracks].map(([jobId, t]) => [jobId, t.points.slice()]))
  }

  /** Every job's newest point. */
  newest(): Record<string, SeriesPoint[]> {
    const out: Record<string, SeriesPoint[]> = {}
    for (const [jobId, t] of this.tracks) if (t.points.length > 0) out[jobId] = [t.points.at(-1)!]
    return out
  }

  /** When the condition `id` was first seen in a row of `conditionsNow` calls (now, if new). */
  conditionSince(id: string, now: number): number {
    let since = this.conditions.get(id)
    if (since === undefined) {
      since = now
      this.conditions.set(id, now)
    }
    return since
  }

  /** The conditions that hold now: the others are forgotten, so they start anew if they return. */
  conditionsNow(ids: readonly string[]): void {
    const keep = new Set(ids)
    for (const id of this.conditions.keys()) if (!keep.has(id)) this.conditions.delete(id)
  }

  private track(jobId: string): Track {
    let track = this.tracks.get(jobId)
    if (track === undefined) {
      track = {
        completed: 0,
        dropped: 0,
        latencies: [],
        unitsPerRound: 0,
        units: 0,
        recent: [],
        points: [],
      }
      this.tracks.set(jobId, track)
    }
    return track
  }
}

/** Rounds and units per second over the track's recent samples (its first second: none yet). */
function rates(track: Track): { rounds: number; units: number } {
  const first = track.recent[0]
  const last = track.recent.at(-1)
  if (first === undefined || last === undefined || last[0] <= first[0]) return { rounds: 0, units: 0 }
  const seconds = (last[0] - first[0]) / 1000
  return { rounds: (last[1] - first[1]) / seconds, units: (last[2] - first[2]) / seconds }
}

function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!)
}
