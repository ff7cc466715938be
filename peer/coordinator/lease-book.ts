import type { Clock } from '../protocol/clock.ts'
import { type Block, blockKey, type Lease } from '../protocol/job.ts'

/** Where a lease stands. Only `active` leases hold a timer; the others are kept for late results. */
export type LeaseState = 'active' | 'settled' | 'expired' | 'failed' | 'cancelled' | 'abandoned'

/** A lease and what the coordinator knows of it. */
export interface LeaseRecord {
  readonly lease: Lease
  readonly participantId: string
  readonly grantedAt: number
  /** When the coordinator expects the result (clock ms). */
  readonly expectedAt: number
  /** A backup copy of a block another participant also holds. */
  readonly speculative: boolean
  state: LeaseState
  timer: unknown
}

/**
 * Every lease the coordinator granted, with indexes of the active ones by participant and by block.
 * Each active lease has a deadline timer on the injected clock, so no lease outlives its deadline
 * unnoticed; closed leases are kept (without timers) until their frame ends, so that a late result
 * can still be recognised.
 */
export class LeaseBook {
  private readonly records = new Map<number, LeaseRecord>()
  private readonly byParticipant = new Map<string, Set<number>>()
  private readonly byBlock = new Map<string, Set<number>>()
  private readonly byFrame = new Map<number, Set<number>>()
  private nextId = 1
  private activeCount = 0

  private readonly clock: Clock

  constructor(clock: Clock) {
    this.clock = clock
  }

  /** Grants a lease; `onDeadline` runs if it is still active at `deadline`. */
  grant(
    participantId: string,
    block: Block,
    timing: { deadline: number; expectedAt: number; speculative: boolean },
    onDeadline: (record: LeaseRecord) => void,
  ): LeaseRecord {
    const now = this.clock.now()
    const lease: Lease = { leaseId: this.nextId++, block, deadline: timing.deadline }
    const record: LeaseRecord = {
      lease,
      participantId,
      grantedAt: now,
      expectedAt: timing.expectedAt,
      speculative: timing.speculative,
      state: 'active',
      timer: undefined,
    }
    record.timer = this.clock.setTimer(() => {
      if (record.state === 'active') onDeadline(record)
    }, timing.deadline - now)
    this.records.set(lease.leaseId, record)
    index(this.byParticipant, participantId, lease.leaseId)
    index(this.byBlock, blockKey(block), lease.leaseId)
    index(this.byFrame, block.frameIndex, lease.leaseId)
    this.activeCount++
    return record
  }

  /** A lease by id (active or closed, until its frame is forgotten). */
  get(leaseId: number): LeaseRecord | undefined {
    return this.records.get(leaseId)
  }

  /** Closes an active lease: clears its timer and takes it out of the active indexes. */
  close(record: LeaseRecord, state: Exclude<LeaseState, 'active'>): void {
    if (record.state !== 'active') return
    record.state = state
    this.clock.clearTimer(record.timer)
    record.timer = undefined
    unindex(this.byParticipant, record.participantId, record.lease.leaseId)
    unindex(this.byBlock, blockKey(record.lease.block), record.lease.leaseId)
    this.activeCount--
  }

  /** Active leases of a participant. */
  activeOf(participantId: string): LeaseRecord[] {
    return [...(this.byParticipant.get(participantId) ?? [])].map((id) => this.records.get(id)!)
  }

  /** Active leases on a block. */
  activeOn(block: Block): LeaseRecord[] {
    return [...(this.byBlock.get(blockKey(block)) ?? [])].map((id) => this.records.get(id)!)
  }

  /** Active leases of a frame. */
  activeInFrame(frameIndex: number): LeaseRecord[] {
    const out: LeaseRecord[] = []
    for (const id of this.byFrame.get(frameIndex) ?? []) {
      const record = this.records.get(id)!
      if (record.state === 'active') out.push(record)
    }
    return out
  }

  /** Drops every record of a frame (it completed or was dropped); closes any still active. */
  forgetFrame(frameIndex: number, state: Exclude<LeaseState, 'active'> = 'cancelled'): LeaseRecord[] {
    const closed: LeaseRecord[] = []
    for (const id of this.byFrame.get(frameIndex) ?? []) {
      const record = this.records.get(id)!
      if (record.state === 'active') {
        this.close(record, state)
        closed.push(record)
      }
      this.records.delete(id)
    }
    this.byFrame.delete(frameIndex)
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
