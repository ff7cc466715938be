import { EventEmitter } from 'node:events'
import type { Capability } from '../protocol/capability.ts'
import type { Clock } from '../protocol/clock.ts'
import { outcomeDefaults, schedulingDefaults } from '../protocol/defaults.ts'
import { BlockMismatchError, CrowdmeshError } from '../protocol/errors.ts'
import {
  type Block,
  blockKey,
  type BlockResult,
  type Frame,
  type Lease,
  type VertexJob,
} from '../protocol/job.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { alphaForCoverage } from '../jobs/vertex/sampling.ts'
import { levelSpace, vertexCount } from '../jobs/vertex/target-space.ts'
import { backupsWanted, chooseBackup } from './backups.ts'
import { blockVertices, expectedBlockMs } from './block-sizer.ts'
import type {
  CoordinatorAudit,
  CoordinatorComponents,
  CoordinatorEvents,
  CoordinatorInit,
  CoordinatorStatistics,
  FrameReport,
  LiveMode,
  SchedulingOptions,
} from './coordinator-contract.ts'
import { aggregationSinks, type FrameSink, type FrameSinkFactory } from './frame-sink.ts'
import { LeaseBook, type LeaseRecord } from './lease-book.ts'
import type { FrameOutcome } from '../jobs/vertex/outcome.ts'
import { ParticipantBook, type ParticipantRecord } from './participant-book.ts'
import { type FrameWork, WorkQueue } from './work-queue.ts'

export type * from './coordinator-contract.ts'

/**
 * The coordinator core: takes camera frames, leases blocks to participants that ask (sized to each
 * one's measured speed), counts every thread of a frame exactly once, and hands complete frames to
 * the frame sink. Transport-agnostic: a transport calls the `handle*` methods and forwards what they
 * return; the clock is injected, so the same code runs in-process, in the simulator's virtual time
 * and over libp2p. See README, "Scheduling".
 */
export class Coordinator<T = FrameOutcome> extends EventEmitter<CoordinatorEvents<T>> {
  readonly job: VertexJob
  private readonly clock: Clock
  private readonly log: Logger
  private readonly options: SchedulingOptions
  private readonly live: LiveMode | undefined
  private readonly push: boolean
  private offering = false
  private readonly sinks: FrameSinkFactory<T>
  private readonly queue = new WorkQueue()
  private readonly leases: LeaseBook
  private readonly participants: ParticipantBook
  private readonly frameSinks = new Map<number, FrameSink<T>>()
  private readonly duplicateThreads = new Map<number, number>()
  private readonly budgetTimers = new Map<number, unknown>()
  private readonly reports: FrameReport[] = []
  private readonly ended = new Set<number>()
  /** Frames whose tail was announced (`backupsWanted`), so it is announced once. */
  private readonly tails = new Set<number>()
  private threadsCounted = 0
  private threadsWasted = 0
  private stopped = false

  constructor(init: CoordinatorInit<T>, components: CoordinatorComponents) {
    super()
    this.job = init.job
    this.clock = components.clock
    this.log = components.logger ?? makeLogger('crowdmesh:coordinator')
    const fixed = init.blockVertices
    this.options = {
      ...schedulingDefaults,
      ...init.scheduling,
      ...(fixed !== undefined && {
        minBlockVertices: fixed,
        maxBlockVertices: fixed,
        calibrationVertices: fixed,
      }),
    }
    this.live = init.live
    this.push = init.mode === 'push'
    this.sinks =
      init.frameSinks ??
      (aggregationSinks({
        minCoverageAlpha: alphaForCoverage(init.minCoverage ?? outcomeDefaults.minCoverage),
        outcomeRule: init.outcomeRule ?? {},
      }) as unknown as FrameSinkFactory<T>)
    this.leases = new LeaseBook(this.clock, (record) => this.expire(record))
    this.participants = new ParticipantBook(this.options.rateSmoothing)
  }

  /** Vertices waiting to be leased (new and to redo). */
  get queuedVertices(): number {
    return this.queue.queuedVertices
  }

  /** Leases outstanding. */
  get activeLeases(): number {
    return this.leases.active
  }

  /** True when no frame has work left or outstanding leases. */
  get idle(): boolean {
    return this.queue.size === 0
  }

  /** Adds a camera frame; its blocks join the queue in frame order. */
  addFrame(frame: Frame): void {
    if (this.stopped) throw new CrowdmeshError('the coordinator is stopped')
    const camera = this.job.cameras.find((c) => c.id === frame.cameraId)
    if (camera === undefined) {
      throw new BlockMismatchError(`frame names camera ${frame.cameraId}, not in job ${this.job.jobId}`)
    }
    const existing = this.queue.frame(frame.index)
    if (existing?.ranges.some((r) => r.frame.cameraId === frame.cameraId)) {
      this.log(`frame ${frame.index} of camera ${frame.cameraId} already added`)
      return
    }
    if (existing === undefined && this.ended.has(frame.index)) {
      this.log(`frame ${frame.index} already ended`)
      return
    }
    const level = existing?.level ?? this.admissionLevel()
    const space = levelSpace(this.job.space, level)
    const work = this.queue.addCameraFrame(
      frame,
      vertexCount(space),
      level,
      existing?.arrivedAt ?? this.clock.now(),
    )
    if (existing === undefined) {
      this.frameSinks.set(
        frame.index,
        this.sinks({ jobId: this.job.jobId, frameIndex: frame.index, space, cameras: this.job.cameras }),
      )
      if (level > 0) this.emit('frameDowngraded', { frameIndex: frame.index, level })
      if (this.live !== undefined) {
        const timer = this.clock.setTimer(() => this.dropLate(work.index), this.live.latencyBudgetMs)
        this.budgetTimers.set(frame.index, timer)
      }
    }
    this.emit('workQueued')
    this.offerWork()
  }

  /**
   * A participant asks for work, stating its capability: a lease on a block sized to its speed, or
   * undefined when there is none (standby) or it already holds as many leases as it may.
   */
  handleLeaseRequest(participantId: string, capability?: Capability): Lease | undefined {
    if (this.stopped) return undefined
    const now = this.clock.now()
    const participant = this.participants.touch(participantId, now, capability)
    const held = this.leases.activeOf(participantId)
    if (held.length >= this.options.maxLeasesPerParticipant) return undefined
    const speed = this.participants.speed(participant)
    // A second lease only hides the round trip; where the round trip is small beside the block it
    // would only make the block wait, and hold back a frame that another participant could finish.
    if (held.length > 0 && speed.threadsPerSec > 0) {
      const blockMs = expectedBlockMs(speed, held[0]!.units) - speed.rttMs
      if (blockMs > 4 * speed.rttMs) return undefined
    }
    const block = this.queue.next(this.job.jobId, blockVertices(speed, this.options))
    if (block !== undefined) {
      const record = this.grant(participant, block, held, false)
      this.announceTail(block.frameIndex)
      return record.lease
    }
    return this.options.speculation ? this.speculate(participant, held) : undefined
  }

  /** How many backup copies idle participants could usefully take now (see `backupsWanted`). */
  get backupsWanted(): number {
    if (!this.options.speculation || this.queue.firstWithWork() !== undefined) return 0
    return backupsWanted(this.queue, this.leases, this.options.maxCopies)
  }

  private announceTail(frameIndex: number): void {
    if (!this.options.speculation || this.tails.has(frameIndex)) return
    const work = this.queue.frame(frameIndex)
    if (work === undefined || this.queue.queuedIn(work) > 0 || work.ranges.length < this.job.cameras.length)
      return
    this.tails.add(frameIndex)
    this.emit('backupsWanted', frameIndex)
  }

  /**
   * A participant returns a block result. Returns whether it counted. The first valid result of a
   * block wins, even from a lease that expired meanwhile; later copies are dropped as duplicates.
   * A refused result never changes an outcome.
   */
  handleBlockResult(participantId: string, leaseId: number, result: BlockResult): boolean {
    const record = this.leases.get(leaseId)
    // Validate and decide first; act after. A listener that throws while the accepted result is acted
    // on (a `frameComplete` handler) must not turn a counted result into a rejected one.
    let accepted: { record: LeaseRecord; work: FrameWork; participant: ParticipantRecord; sink: FrameSink<T> }
    try {
      if (record === undefined)
        throw new BlockMismatchError(`lease ${leaseId} is not known (or its frame ended)`)
      if (record.participantId !== participantId) {
        throw new BlockMismatchError(`lease ${leaseId} belongs to another participant`)
      }
      const { block } = record.lease
      if (
        result.jobId !== block.jobId ||
        result.frameIndex !== block.frameIndex ||
        result.cameraId !== block.cameraId ||
        result.firstVertex !== block.firstVertex ||
        result.vertexCount !== block.vertexCount
      ) {
        throw new BlockMismatchError(`result does not describe the block of lease ${leaseId}`)
      }
      const work = this.queue.frame(block.frameIndex)!
      const participant = this.participants.touch(participantId, this.clock.now())
      if (work.done.has(record.key)) {
        this.wasted(participant, record)
        this.leases.close(record, 'settled')
        return false
      }
      const sink = this.frameSinks.get(block.frameIndex)!
      // The sink checks the result (overlaps, impossible values) before it takes it.
      sink.add(result)
      accepted = { record, work, participant, sink }
    } catch (error) {
      if (!(error instanceof CrowdmeshError)) throw error
      if (record?.participantId === participantId && record.state === 'active') this.fail(record)
      this.emit('resultRejected', { participantId, leaseId, error })
      return false
    }
    const { work, participant, sink } = accepted
    this.count(participant, accepted.record, work)
    if (sink.complete) this.completeFrame(work, sink)
    this.offerWork(participant)
    return true
  }

  /** A participant reports it could not compute a lease's block: it is queued again at once. */
  handleBlockFailed(participantId: string, leaseId: number): void {
    const record = this.leases.get(leaseId)
    if (record?.participantId !== participantId || record.state !== 'active') return
    this.fail(record)
  }

  /** Push mode: a participant introduces itself and its capability; it is offered work at once. */
  handleParticipantJoined(participantId: string, capability?: Capability): void {
    this.participants.touch(participantId, this.clock.now(), capability)
    this.offerWork()
  }

  /**
   * Push mode: fills every known participant's spare lease slots, fastest first, while work remains,
   * announcing each lease through `leaseOffered`.
   */
  private offerWork(only?: ParticipantRecord): void {
    if (!this.push || this.stopped || this.offering) return
    // Offering grants leases, which requeue nothing but must not re-enter here all the same.
    this.offering = true
    try {
      // After a result only its sender has a new free slot; the others were offered when work came.
      const idle =
        only !== undefined
          ? [only]
          : [...this.participants.present()].sort(
              (a, b) => this.participants.speed(b).threadsPerSec - this.participants.speed(a).threadsPerSec,
            )
      for (const participant of idle) {
        if (this.queue.firstWithWork() === undefined) break
        for (;;) {
          const lease = this.handleLeaseRequest(participant.id)
          if (lease === undefined) break
          this.emit('leaseOffered', { participantId: participant.id, lease })
        }
      }
    } finally {
      this.offering = false
    }
  }

  /** A participant left (or its connection broke): its leases are queued again at once. */
  handleParticipantGone(participantId: string): void {
    // Gone first, so that its own blocks are not offered back to it.
    this.participants.leave(participantId, this.clock.now())
    for (const record of this.leases.activeOf(participantId)) {
      this.leases.close(record, 'abandoned')
      this.requeue(record)
    }
  }

  /** The management table and frame figures. */
  statistics(): CoordinatorStatistics {
    const completed = this.reports.filter((r) => !r.dropped)
    const first = this.reports.reduce((m, r) => Math.min(m, r.arrivedAt), Number.POSITIVE_INFINITY)
    const last = completed.reduce((m, r) => Math.max(m, r.arrivedAt + r.latencyMs), 0)
    return {
      participants: this.participants.rows(),
      frames: this.reports.slice(),
      framesCompleted: completed.length,
      framesDropped: this.reports.length - completed.length,
      threadsCounted: this.threadsCounted,
      threadsWasted: this.threadsWasted,
      outcomeFps: completed.length > 0 && last > first ? (completed.length * 1000) / (last - first) : 0,
    }
  }

  /** Checks the books: see `CoordinatorAudit`. Costs a pass over open frames and their leases. */
  audit(): CoordinatorAudit {
    const now = this.clock.now()
    let unaccounted = 0
    let overdue = 0
    let open = 0
    for (const work of this.queue.inOrder()) {
      open++
      const leased = new Map<string, number>()
      for (const record of this.leases.activeInFrame(work.index)) {
        leased.set(record.key, record.units)
        if (record.lease.deadline < now) overdue++
      }
      let outstanding = 0
      for (const vertices of leased.values()) outstanding += vertices
      const total = work.verticesPerCamera * work.ranges.length
      unaccounted += total - work.threadsDone - this.queue.queuedIn(work) - outstanding
    }
    return {
      openFrames: open,
      unaccountedThreads: unaccounted,
      overdueLeases: overdue,
      firstFrameWithWork: this.queue.firstWithWork(),
    }
  }

  /** Cancels every lease and budget timer. Safe to call twice. */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.leases.closeAll()
    for (const timer of this.budgetTimers.values()) this.clock.clearTimer(timer)
    this.budgetTimers.clear()
  }

  private grant(
    participant: ParticipantRecord,
    block: Block,
    held: LeaseRecord[],
    speculative: boolean,
  ): LeaseRecord {
    const now = this.clock.now()
    const key = blockKey(block)
    const units = block.vertexCount
    const speed = this.participants.speed(participant)
    // The participant works through its leases in turn: this one starts when the last one it holds ends.
    const startsAt = held.reduce((t, r) => Math.max(t, r.expectedAt), now)
    let expectedAt: number
    let deadline: number
    if (speed.threadsPerSec > 0) {
      const ms = expectedBlockMs(speed, units)
      expectedAt = startsAt + ms
      deadline = now + Math.max(this.options.minDeadlineMs, this.options.deadlineSlack * (expectedAt - now))
    } else {
      expectedAt = now + this.options.calibrationDeadlineMs / this.options.deadlineSlack
      deadline = now + this.options.calibrationDeadlineMs
    }
    participant.threadsAssigned += units
    return this.leases.grant(participant.id, block, { key, units }, { deadline, expectedAt, speculative })
  }

  /** Backup tasks (see `backups.ts`): a copy of a laggard's block, granted to this idle participant. */
  private speculate(participant: ParticipantRecord, held: LeaseRecord[]): Lease | undefined {
    const speed = this.participants.speed(participant)
    const laggard = chooseBackup(this.queue, this.leases, {
      participantId: participant.id,
      speed,
      held,
      now: this.clock.now(),
      maxCopies: this.options.maxCopies,
    })
    return laggard === undefined ? undefined : this.grant(participant, laggard.lease.block, held, true).lease
  }

  private count(participant: ParticipantRecord, record: LeaseRecord, work: FrameWork): void {
    const now = this.clock.now()
    const { block } = record.lease
    const { units } = record
    work.done.add(record.key)
    work.threadsDone += units
    this.threadsCounted += units
    this.leases.close(record, 'settled')
    // Copies of the block still out are no longer wanted, and a queued redo of it is void.
    if (this.leases.copies(record.key) > 0) {
      for (const copy of this.leases.activeOn(record.key)) {
        this.leases.close(copy, 'cancelled')
        this.emit('leaseCancelled', { participantId: copy.participantId, leaseId: copy.lease.leaseId })
      }
    }
    this.queue.withdraw(block, record.key)
    this.participants.observe(
      participant,
      units,
      now - Math.max(record.grantedAt, participant.lastResultAt),
      now,
    )
    this.emit('blockDone', { block, participantId: participant.id, threads: units })
  }

  private wasted(participant: ParticipantRecord, record: LeaseRecord): void {
    const threads = record.units
    participant.threadsWasted += threads
    this.threadsWasted += threads
    const frame = record.lease.block.frameIndex
    this.duplicateThreads.set(frame, (this.duplicateThreads.get(frame) ?? 0) + threads)
  }

  private completeFrame(work: FrameWork, sink: FrameSink<T>): void {
    // The outcome is decided before the frame ends: a decision that throws ends the frame as
    // dropped, reported with its reason, instead of a frame that ended with no outcome at all.
    let outcome: T
    try {
      outcome = sink.finish()
    } catch (error) {
      const reason = (error as Error).message
      this.log.error(`frame ${work.index}: its outcome could not be decided: ${reason}`)
      this.emit('frameDropped', this.endFrame(work, true, reason))
      return
    }
    this.emit('frameComplete', outcome, this.endFrame(work, false))
  }

  private endFrame(work: FrameWork, dropped: boolean, error?: string): FrameReport {
    const now = this.clock.now()
    const timer = this.budgetTimers.get(work.index)
    if (timer !== undefined) this.clock.clearTimer(timer)
    this.budgetTimers.delete(work.index)
    for (const record of this.leases.forgetFrame(work.index)) {
      this.emit('leaseCancelled', { participantId: record.participantId, leaseId: record.lease.leaseId })
    }
    this.queue.remove(work.index)
    this.frameSinks.delete(work.index)
    const report: FrameReport = {
      frameIndex: work.index,
      level: work.level,
      threads: work.verticesPerCamera * this.job.cameras.length,
      arrivedAt: work.arrivedAt,
      latencyMs: now - work.arrivedAt,
      reassignments: work.reassignments,
      duplicateThreads: this.duplicateThreads.get(work.index) ?? 0,
      dropped,
      ...(error !== undefined && { error }),
    }
    this.duplicateThreads.delete(work.index)
    this.reports.push(report)
    this.ended.add(work.index)
    this.tails.delete(work.index)
    return report
  }

  private dropLate(index: number): void {
    const work = this.queue.frame(index)
    if (work === undefined) return
    this.log(`frame ${index} missed its latency budget: dropped with ${work.threadsDone} threads done`)
    this.emit('frameDropped', this.endFrame(work, true))
  }

  /** The grid level a new live frame is admitted at: coarser while the crowd cannot keep up. */
  private admissionLevel(): number {
    if (this.live?.overload !== 'downgrade') return 0
    let rate = 0
    for (const p of this.participants.present()) rate += this.participants.speed(p).threadsPerSec
    if (rate <= 0) return 0
    const backlog = this.queue.queuedVertices
    const budget = this.live.latencyBudgetMs / 1000
    for (let level = 0; level < 3; level++) {
      const threads = vertexCount(levelSpace(this.job.space, level)) * this.job.cameras.length
      if ((backlog + threads) / rate <= budget * 0.8) return level
    }
    return 3
  }

  private expire(record: LeaseRecord): void {
    this.log(`lease ${record.lease.leaseId} of ${record.participantId} missed its deadline`)
    this.leases.close(record, 'expired')
    const participant = this.participants.get(record.participantId)
    if (participant !== undefined) participant.leasesExpired++
    this.requeue(record)
  }

  private fail(record: LeaseRecord): void {
    this.leases.close(record, 'failed')
    const participant = this.participants.get(record.participantId)
    if (participant !== undefined) participant.blocksFailed++
    this.requeue(record)
  }

  /** Queues a block again unless another copy of it is still out (a backup that may yet win). */
  private requeue(record: LeaseRecord): void {
    const { block } = record.lease
    if (this.leases.copies(record.key) > 0) return
    const work = this.queue.frame(block.frameIndex)
    if (work === undefined || work.done.has(record.key)) return
    this.queue.requeue(block, record.key)
    this.emit('leaseRequeued', record.lease)
    this.emit('workQueued')
    this.offerWork()
  }
}
