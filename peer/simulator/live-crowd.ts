import { EventEmitter } from 'node:events'
import type { Coordinator } from '../coordinator/coordinator.ts'
import type { TaskBase } from '../jobs/kind.ts'
import type { ConnectedParticipant } from '../mesh/coordinator-host.ts'
import type { Capability } from '../protocol/capability.ts'
import type { Clock } from '../protocol/clock.ts'

/** A simulated participant of a live crowd. */
export interface CrowdMember {
  /** Reference units per second it computes. */
  threadsPerSec: number
  /** The link label it came through (dedicated participants have their own). */
  label?: string
  agent?: string
  address?: string
  cores?: number
  rttMs?: number
  /** Kinds it runs (`name@version`); absent: every job's kind. */
  kinds?: string[]
}

interface Member extends CrowdMember {
  id: string
  connectedAt: number
  waiting: boolean
  timer: unknown
  gone: boolean
}

/** How long a participant told "no work" waits before it asks again (unless work is queued first), ms. */
const idleRetryMs = 500

/**
 * A crowd of simulated participants driving a real coordinator on any clock (the wall clock for the
 * console's benchmark, a manual one in tests): each asks for a task, computes it for as long as its
 * speed says, answers with its kind's simulated result (`JobKind.simulation.fakeResult`), and asks
 * again; on standby it waits for work to be queued. It is a `ParticipantDirectory` too, so the
 * operator's console and dedicated devices see it as they see a coordinator's host.
 */
export class LiveCrowd extends EventEmitter<{
  participantJoined: [{ participantId: string; label: string; agent: string }]
  participantLeft: [{ participantId: string }]
}> {
  private readonly coordinator: Coordinator<unknown, TaskBase>
  private readonly clock: Clock
  private readonly members = new Map<string, Member>()
  private wakeFrom = 0
  /** Wakes those on standby, starting one further along each time, so nobody is always first. */
  private readonly wake = () => {
    const members = [...this.members.values()]
    this.wakeFrom = (this.wakeFrom + 1) % Math.max(1, members.length)
    for (let i = 0; i < members.length; i++) {
      const member = members[(this.wakeFrom + i) % members.length]!
      if (!member.waiting) continue
      this.clock.clearTimer(member.timer)
      this.ask(member)
    }
  }

  constructor(coordinator: Coordinator<unknown, TaskBase>, clock: Clock) {
    super()
    this.coordinator = coordinator
    this.clock = clock
    coordinator.on('workQueued', this.wake)
  }

  get size(): number {
    return this.members.size
  }

  /** A participant joins, and starts asking for work. */
  join(id: string, member: CrowdMember): void {
    if (this.members.has(id)) return
    const record: Member = {
      ...member,
      id,
      connectedAt: this.clock.now(),
      waiting: false,
      timer: undefined,
      gone: false,
    }
    this.members.set(id, record)
    this.coordinator.handleParticipantJoined(id, this.capability(record))
    this.emit('participantJoined', {
      participantId: id,
      label: record.label ?? 'crowd',
      agent: record.agent ?? 'crowdmesh-node/simulated',
    })
    this.ask(record)
  }

  /** A participant leaves: its leases go back to the queue. */
  leave(id: string): void {
    const member = this.members.get(id)
    if (member === undefined) return
    member.gone = true
    this.clock.clearTimer(member.timer)
    this.members.delete(id)
    this.coordinator.handleParticipantGone(id)
    this.emit('participantLeft', { participantId: id })
  }

  connected(): ConnectedParticipant[] {
    return [...this.members.values()].map((m) => ({
      participantId: m.id,
      label: m.label ?? 'crowd',
      agent: m.agent ?? 'crowdmesh-node/simulated',
      address: m.address ?? '127.0.0.1:0',
      connectedAt: m.connectedAt,
    }))
  }

  /** The operator removes one: it leaves. */
  remove(participantId: string, _reason: string): boolean {
    if (!this.members.has(participantId)) return false
    this.leave(participantId)
    return true
  }

  /** Every participant leaves; the crowd stops listening to the coordinator. */
  stop(): void {
    for (const id of [...this.members.keys()]) this.leave(id)
    this.coordinator.off('workQueued', this.wake)
  }

  private capability(member: Member): Capability {
    return {
      cores: member.cores ?? 1,
      threadsPerSec: member.threadsPerSec,
      bandwidthBytesPerSec: 0,
      rttMs: member.rttMs ?? 5,
      dutyCycle: 1,
      kinds: member.kinds ?? this.coordinator.jobStates().map((j) => j.kind),
    }
  }

  private ask(member: Member): void {
    if (member.gone) return
    member.waiting = false
    const lease = this.coordinator.handleLeaseRequest(member.id, this.capability(member))
    if (lease === undefined) {
      member.waiting = true
      member.timer = this.clock.setTimer(() => this.ask(member), idleRetryMs)
      return
    }
    const kind = this.coordinator.kindOf(lease.block.jobId)
    if (kind === undefined) return void (member.timer = this.clock.setTimer(() => this.ask(member), 0))
    const units = kind.taskUnits(lease.block) * kind.cost.relativeCost
    member.timer = this.clock.setTimer(
      () => {
        if (member.gone) return
        this.coordinator.handleBlockResult(member.id, lease.leaseId, kind.simulation.fakeResult(lease.block))
        this.ask(member)
      },
      (units / member.threadsPerSec) * 1000,
    )
  }
}
