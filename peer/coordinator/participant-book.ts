import { legacyKindTag } from '../jobs/registry.ts'
import type { Capability } from '../protocol/capability.ts'
import type { SpeedEstimate } from './block-sizer.ts'

/** What the coordinator knows of one participant. */
export interface ParticipantRecord {
  readonly id: string
  /** What it last stated. */
  capability: Capability | undefined
  /** The kinds it stated it runs (`name@version`); undefined: `legacyKindTag` alone. */
  kinds: ReadonlySet<string> | undefined
  /** Threads per second the coordinator observed (smoothed); 0 until its first result. */
  observedThreadsPerSec: number
  /**
   * Units per second it showed on each kind (`name@version`), smoothed, where the coordinator runs
   * several jobs: a kind's relative cost is an estimate, and a GPU may speed one kind more than another.
   */
  readonly kindRates: Map<string, number>
  readonly joinedAt: number
  leftAt: number | undefined
  threadsAssigned: number
  threadsProcessed: number
  /** Threads it computed that did not count (a copy of a block that was already done). */
  threadsWasted: number
  blocksDone: number
  blocksFailed: number
  leasesExpired: number
  /** Time its counted blocks took, as the coordinator saw it, ms. */
  busyMs: number
  lastResultAt: number
  /** When it last asked for work (a paused participant stays present but stops asking). */
  lastAskedAt: number
}

/** One row of the seed's management table. */
export interface ParticipantRow {
  id: string
  cores: number
  /** Mean execution time of one thread on one core, ms (the seed's figure: cores × busy time / threads). */
  meanMsPerThread: number
  threadsProcessed: number
  threadsAssigned: number
  threadsWasted: number
  blocksFailed: number
  leasesExpired: number
  /** Observed threads per second. */
  threadsPerSec: number
  /** Share of its processor it lends, (0, 1], and its round trip to the coordinator, ms (stated). */
  dutyCycle: number
  rttMs: number
  /** The job kinds it runs (`name@version`); absent: the first kind alone. */
  kinds: string[] | undefined
  joinedAt: number
  present: boolean
}

/** What a participant that states no kinds runs (every participant before job kinds). */

function sameKinds(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined || a.length !== b.length) return false
  return a.every((kind, i) => kind === b[i])
}

function kindsOf(capability: Capability | undefined): ReadonlySet<string> | undefined {
  return capability?.kinds === undefined ? undefined : new Set(capability.kinds)
}

/**
 * The participants the coordinator has seen, their stated capability, the speed it observed, and
 * their counters. Observed speed outranks stated speed: a participant cannot talk itself into blocks
 * it then fails to finish.
 */
export class ParticipantBook {
  private readonly records = new Map<string, ParticipantRecord>()

  private readonly smoothing: number

  constructor(smoothing: number) {
    this.smoothing = smoothing
  }

  /** The record of a participant, created (joined) on first contact. */
  touch(id: string, now: number, capability?: Capability): ParticipantRecord {
    let record = this.records.get(id)
    if (record === undefined || record.leftAt !== undefined) {
      record = {
        id,
        capability,
        kinds: kindsOf(capability),
        observedThreadsPerSec: 0,
        kindRates: new Map(),
        joinedAt: now,
        leftAt: undefined,
        threadsAssigned: 0,
        threadsProcessed: 0,
        threadsWasted: 0,
        blocksDone: 0,
        blocksFailed: 0,
        leasesExpired: 0,
        busyMs: 0,
        lastResultAt: now,
        lastAskedAt: now,
      }
      this.records.set(id, record)
    } else if (capability !== undefined) {
      if (!sameKinds(capability.kinds, record.capability?.kinds)) record.kinds = kindsOf(capability)
      record.capability = capability
    }
    return record
  }

  /** Whether a participant runs tasks of the kind tagged `tag` (`name@version`). */
  runs(record: ParticipantRecord, tag: string): boolean {
    return record.kinds === undefined ? tag === legacyKindTag : record.kinds.has(tag)
  }

  get(id: string): ParticipantRecord | undefined {
    return this.records.get(id)
  }

  /** Marks a participant gone. */
  leave(id: string, now: number): void {
    const record = this.records.get(id)
    if (record !== undefined && record.leftAt === undefined) record.leftAt = now
  }

  /** The speed to plan with: observed if known, else stated. */
  speed(record: ParticipantRecord): SpeedEstimate {
    const stated = record.capability
    return {
      threadsPerSec:
        record.observedThreadsPerSec > 0 ? record.observedThreadsPerSec : (stated?.threadsPerSec ?? 0),
      bandwidthBytesPerSec: stated?.bandwidthBytesPerSec ?? 0,
      rttMs: stated?.rttMs ?? 0,
    }
  }

  /**
   * Records a counted block: `elapsedMs` from when the participant could start it to its result;
   * `kind` (several jobs only): its kind and its size in that kind's units.
   */
  observe(
    record: ParticipantRecord,
    threads: number,
    elapsedMs: number,
    now: number,
    kind?: { tag: string; units: number },
  ): void {
    record.threadsProcessed += threads
    record.blocksDone++
    record.lastResultAt = now
    const ms = Math.max(1, elapsedMs)
    record.busyMs += ms
    const rate = (threads * 1000) / ms
    record.observedThreadsPerSec =
      record.observedThreadsPerSec === 0
        ? rate
        : record.observedThreadsPerSec + this.smoothing * (rate - record.observedThreadsPerSec)
    if (kind !== undefined) {
      const kindRate = (kind.units * 1000) / ms
      const before = record.kindRates.get(kind.tag)
      record.kindRates.set(
        kind.tag,
        before === undefined ? kindRate : before + this.smoothing * (kindRate - before),
      )
    }
  }

  /** Participants present now. */
  *present(): Iterable<ParticipantRecord> {
    for (const record of this.records.values()) if (record.leftAt === undefined) yield record
  }

  /** The management table: every participant seen, present ones first. */
  rows(): ParticipantRow[] {
    return [...this.records.values()]
      .map((r) => {
        const cores = r.capability?.cores ?? 1
        // Busy time counts at its duty cycle: a core lent a quarter of the time does a quarter of the work.
        const share = r.capability?.dutyCycle ?? 1
        return {
          id: r.id,
          cores,
          meanMsPerThread: r.threadsProcessed > 0 ? (cores * share * r.busyMs) / r.threadsProcessed : 0,
          threadsProcessed: r.threadsProcessed,
          threadsAssigned: r.threadsAssigned,
          threadsWasted: r.threadsWasted,
          blocksFailed: r.blocksFailed,
          leasesExpired: r.leasesExpired,
          threadsPerSec: r.observedThreadsPerSec,
          dutyCycle: share,
          rttMs: r.capability?.rttMs ?? 0,
          kinds: r.capability?.kinds,
          joinedAt: r.joinedAt,
          present: r.leftAt === undefined,
        }
      })
      .sort((a, b) => Number(b.present) - Number(a.present))
  }
}
