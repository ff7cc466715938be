import type { Clock } from '../protocol/clock.ts'
import type { TaskBase } from '../jobs/kind.ts'
import type { Lease } from '../protocol/job.ts'

/** Where a lease stands. Only `active` leases wait on a deadline; the others are kept for late results. */
export type LeaseState = 'active' | 'settled' | 'expired' | 'failed' | 'cancelled' | 'abandoned'

/** A lease and what the coordinator knows of it. */
export interface LeaseRecord {
  readonly lease: Lease<TaskBase>
  /** Its task's key (the kind's `taskKey`, prefixed by its job's slot but the first's): copies of one task share it. */
  readonly key: string
  /** Its task's size in the kind's units, worked out once at grant. */
  readonly units: number
  /** Its job's slot in the coordinator. */
  readonly job: number
  /** Its round's id across jobs (see `RoundWork.round`). */
  readonly round: number
  readonly participantId: string
  readonly grantedAt: number
  /** When the coordinator expects the result (clock ms). */
  readonly expectedAt: number
  /** A backup copy of a block another participant also holds. */
  readonly speculative: boolean
  /** A replica of a task already counted: its result is compared with the counted one, never counted. */
  readonly replica: boolean
  state: LeaseState
}

/**
 * Every lease the coordinator granted, with indexes of the active ones by participant, block and
 * frame. Deadlines are rounded up to a tick (`tickMs`) and each tick with a deadline in it has one
 * timer on the injected clock: no lease outlives its deadline unnoticed, and ten thousand leases
 * do not mean ten thousand timers. Closed leases are kept until their frame ends, so that a late
 * result can still be recognised.
 */
export class LeaseBook {
  private readonly records = new Map<number, LeaseRecord>()
  private readonly byParticipant = new Map<string, Set<number>>()
  private readonly byBlock = new Map<string, Set<number>>()
  /** Every lease of a frame, closed ones too (for late results); and the active ones alone. */
  private readonly byFrame = new Map<number, Set<number>>()
  private readonly activeByFrame = new Map<number, Set<number>>()
  /** Active leases by the tick of their deadline, and that tick's timer. */
  private readonly ticks = new Map<number, { leases: Set<LeaseRecord>; timer: unknown }>()
  private nextId = 1
  private activeCount = 0
  private readonly clock: Clock
  private readonly tickMs: number
  private readonly onDeadline: (record: LeaseRecord) => void

  /** `onDeadline` runs for each lease still active when its deadline comes. */
  constructor(clock: Clock, onDeadline: (record: LeaseRecord) => void, tickMs = 50) {
    this.clock = clock
    this.onDeadline = onDeadline
    this.tickMs = tickMs
  }

  /** Grants a lease; its deadline is rounded up to the next tick. */
  grant(
    participantId: string,
    block: TaskBase,
    task: { key: string; units: number; job: number; round: number },
    timing: { deadline: number; expectedAt: number; speculative: boolean; replica?: boolean },
  ): LeaseRecord {
    const now = this.clock.now()
    const deadline = Math.ceil(timing.deadline / this.tickMs) * this.tickMs
    const lease: Lease<TaskBase> = { leaseId: this.nextId++, block, deadline }
    const { key, units, job, round } = task
    const record: LeaseRecord = {
      lease,
      key,
      units,
      job,
      round,
      participantId,
      grantedAt: now,
      expectedAt: timing.expectedAt,
      speculative: timing.speculative,
      replica: timing.replica ?? false,
      state: 'active',
    }
    this.records.set(lease.leaseId, record)
    index(this.byParticipant, participantId, lease.leaseId)
    index(this.byBlock, key, lease.leaseId)
    index(this.byFrame, round, lease.leaseId)
    index(this.activeByFrame, round, lease.leaseId)
    let tick = this.ticks.get(deadline)
    if (tick === undefined) {
      const leases = new Set<LeaseRecord>()
      tick = { leases, timer: this.clock.setTimer(() => this.fire(deadline), deadline - now) }
      this.ticks.set(deadline, tick)
    }
    tick.leases.add(record)
    this.activeCount++
    return record
  }

  /** A lease by id (active or closed, until its frame is forgotten). */
  get(leaseId: number): LeaseRecord | undefined {
    return this.records.get(leaseId)
  }

  /** Closes an active lease: it no longer waits on its deadline and leaves the active indexes. */
  close(record: LeaseRecord, state: Exclude<LeaseState, 'active'>): void {
    if (record.state !== 'active') return
    record.state = state
    const tick = this.ticks.get(record.lease.deadline)
    if (tick !== undefined) {
      tick.leases.delete(record)
      if (tick.leases.size === 0) {
        this.clock.clearTimer(tick.timer)
        this.ticks.delete(record.lease.deadline)
      }
    }
    // A participant's set stays (it will hold leases again); block and frame sets go with them.
    this.byParticipant.get(record.participantId)?.delete(record.lease.leaseId)
    unindex(this.byBlock, record.key, record.lease.leaseId)
    unindex(this.activeByFrame, record.round, record.lease.leaseId)
    this.activeCount--
  }

  /** Active leases of a participant (a fresh array; a participant holds at most a few). */
  activeOf(participantId: string): LeaseRecord[] {
    const ids = this.byParticipant.get(participantId)
    const out: LeaseRecord[] = []
    if (ids !== undefined) for (const id of ids) out.push(this.records.get(id)!)
    return out
  }

  /** Active leases on a block. */
  activeOn(key: string): LeaseRecord[] {
    return [...(this.byBlock.get(key) ?? [])].map((id) => this.records.get(id)!)
  }

  /** Number of active leases on a block (no allocation: the scheduler asks often). */
  copies(key: string): number {
    return this.byBlock.get(key)?.size ?? 0
  }

  /** Active leases of a round (by its id across jobs), in the order they were granted. */
  *activeInFrame(round: number): Iterable<LeaseRecord> {
    for (const id of this.activeByFrame.get(round) ?? []) yield this.records.get(id)!
  }

  /** Number of active leases of a round. */
  activeCountInFrame(round: number): number {
    return this.activeByFrame.get(round)?.size ?? 0
  }

  /** Drops every record of a round (it completed or was dropped); closes any still active and returns those. */
  forgetFrame(round: number, state: Exclude<LeaseState, 'active'> = 'cancelled'): LeaseRecord[] {
    const closed: LeaseRecord[] = []
    for (const id of this.byFrame.get(round) ?? []) {
      const record = this.records.get(id)!
      if (record.state === 'active') {
        this.close(record, state)
        closed.push(record)
      }
      this.records.delete(id)
    }
    this.byFrame.delete(round)
    this.activeByFrame.delete(round)
    return closed
  }

  /** Number of active leases. */
  get active(): number {
    return this.activeCount
  }

  /** Closes every active lease (the coordinator stops). */
  closeAll(): void {
    for (const record of this.records.values()) this.close(record, 'cancelled')
  }

  private fire(deadline: number): void {
    const tick = this.ticks.get(deadline)
    this.ticks.delete(deadline)
    if (tick === undefined) return
    for (const record of tick.leases) if (record.state === 'active') this.onDeadline(record)
  }
}

function index<K>(map: Map<K, Set<number>>, key: K, id: number): void {
  let set = map.get(key)
  if (set === undefined) {
    set = new Set()
    map.set(key, set)
  }
  set.add(id)
}

function unindex<K>(map: Map<K, Set<number>>, key: K, id: number): void {
  const set = map.get(key)
  if (set === undefined) return
  set.delete(id)
  if (set.size === 0) map.delete(key)
}
