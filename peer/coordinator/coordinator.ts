import { EventEmitter } from 'node:events'
import type { AnyJobKind, JobSpec, PriorityClass, RoundSink, TaskBase, WorkerEnv } from '../jobs/kind.ts'
import { kindValidator } from '../jobs/validator.ts'
import type { Capability } from '../protocol/capability.ts'
import type { Clock } from '../protocol/clock.ts'
import { randomInt } from 'node:crypto'
import { schedulingDefaults, validationDefaults } from '../protocol/defaults.ts'
import { BlockMismatchError, CrowdmeshError, QuarantinedError, UnknownJobError } from '../protocol/errors.ts'
import type { Lease } from '../protocol/job.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { backupsWanted, chooseBackup } from './backups.ts'
import {
  expectedTaskMs,
  type SizerLimits,
  type SpeedEstimate,
  type TaskCost,
  taskUnits,
} from './block-sizer.ts'
import type {
  CoordinatorAudit,
  CoordinatorComponents,
  CoordinatorEvents,
  CoordinatorInit,
  CoordinatorStatistics,
  FrameReport,
  JobInit,
  JobState,
  SchedulingOptions,
} from './coordinator-contract.ts'
import { LeaseBook, type LeaseRecord } from './lease-book.ts'
import { ParticipantBook, type ParticipantRecord, type ParticipantRow } from './participant-book.ts'
import { type JobSlot, leastShare, openSlot, pickSlot, reweigh, slotState } from './job-slots.ts'
import { ResultValidation } from './result-validation.ts'
import { RoundDecisions } from './round-decisions.ts'
import type { RoundWork } from './work-queue.ts'

export type * from './coordinator-contract.ts'

/**
 * The coordinator core: takes the inputs of each job's rounds (the images of a moment of a show,
 * a photograph to filter), leases tasks to participants that ask (sized to each one's measured speed, of a kind
 * each one runs), counts every unit of a round exactly once, and hands complete rounds to their
 * sink. Several jobs run at once: live work before batch work, and jobs of one class share by
 * weight (a stride scheduler over the reference units granted). What a task computes is its kind's
 * business (`peer/jobs/`): the core only cuts, counts and routes. Transport-agnostic: a transport
 * calls the `handle*` methods and forwards what they return; the clock is injected, so the same
 * code runs in-process, in the simulator's virtual time and over libp2p. See README, "Scheduling".
 *
 * `new Coordinator({ jobs })` runs any set of jobs, and `addJob`/`endJob` change it while
 * participants work.
 */
export class Coordinator<T = unknown, K extends TaskBase = TaskBase> extends EventEmitter<
  CoordinatorEvents<T, K>
> {
  private readonly clock: Clock
  private readonly log: Logger
  private readonly options: SchedulingOptions
  private readonly push: boolean
  private offering = false
  private readonly slots = new Map<number, JobSlot<T>>()
  private readonly slotsByJob = new Map<string, JobSlot<T>>()
  /** Slots in the order they were added (the tie-break between equal shares). */
  private slotList: JobSlot<T>[] = []
  private nextSlot = 0
  private readonly leases: LeaseBook
  private readonly participants: ParticipantBook
  private readonly reports: FrameReport[] = []
  private threadsCounted = 0
  private threadsWasted = 0
  private stopped = false
  private started = false
  private readonly checkerEnv: WorkerEnv | undefined
  private readonly validation: ResultValidation<T>
  private readonly decisions: RoundDecisions<T>

  constructor(init: CoordinatorInit<T>, components: CoordinatorComponents) {
    super()
    this.clock = components.clock
    this.log = components.logger ?? makeLogger('crowdmesh:coordinator')
    this.options = { ...schedulingDefaults, ...init.scheduling }
    this.push = init.mode === 'push'
    this.leases = new LeaseBook(this.clock, (record) => this.expire(record))
    this.participants = new ParticipantBook(this.options.rateSmoothing)
    this.checkerEnv = components.checkerEnv
    this.decisions = new RoundDecisions<T>({
      log: this.log,
      stopped: () => this.stopped,
      maxDecidingRounds: this.options.maxDecidingRounds,
      endRound: (slot, work) => this.endRound(slot, work),
      decided: (slot, work, outcome, answerable) =>
        this.emit('frameComplete', outcome, this.reportRound(slot, work, answerable, false)),
      dropped: (slot, work, answerable, reason) =>
        this.emit('frameDropped', this.reportRound(slot, work, answerable, true, reason)),
    })
    this.validation = new ResultValidation<T>(
      {
        clock: this.clock,
        log: this.log,
        leases: this.leases,
        participants: this.participants,
        slots: this.slots,
        events: this,
        stopped: () => this.stopped,
        requeue: (record) => this.requeue(record),
        settle: (slot, work) => this.maybeComplete(slot, work),
        offerWork: (only) => this.offerWork(only),
        wasted: (slot, participant, record) => this.wasted(slot, participant, record),
        uncount: (units) => (this.threadsCounted -= units),
        multiJob: () => this.slotList.length > 1,
      },
      { ...validationDefaults, ...init.validation },
      components.random ?? cryptoRandom,
    )
    const { jobs } = init
    if (jobs.length === 0) throw new CrowdmeshError('a coordinator needs at least one job')
    for (const job of jobs) this.addJob(job)
    this.started = true
  }

  /** The jobs running now, in the order they were added. */
  get jobs(): JobSpec[] {
    return this.slotList.map((slot) => slot.spec)
  }

  /** The kind of a job running now. */
  kindOf(jobId: string): AnyJobKind | undefined {
    return this.slotsByJob.get(jobId)?.kind
  }

  /** A lease's task and its kind (a transport decodes its result with it), while its round is open. */
  leaseOf(leaseId: number): { kind: AnyJobKind; task: TaskBase } | undefined {
    const record = this.leases.get(leaseId)
    const kind = record === undefined ? undefined : this.slots.get(record.job)?.kind
    return kind === undefined ? undefined : { kind, task: record!.lease.block }
  }

  /** Units waiting to be leased (new and to redo), over every job. */
  get queuedUnits(): number {
    let total = 0
    for (const slot of this.slotList) {
      total += slot.queue.queuedUnits
      for (const c of slot.replicas) total += c.units
    }
    return total
  }

  /** Rounds of a job neither complete nor dropped. */
  openRounds(jobId: string): number {
    const slot = this.slotsByJob.get(jobId)
    return slot === undefined ? 0 : slot.queue.size + slot.deciding + slot.waiting.length
  }

  /** Leases outstanding. */
  get activeLeases(): number {
    return this.leases.active
  }

  /** True when no round of any job has work left, outstanding leases or an outcome being decided. */
  get idle(): boolean {
    for (const slot of this.slotList)
      if (slot.queue.size > 0 || slot.deciding > 0 || slot.waiting.length > 0) return false
    return true
  }

  /**
   * Adds a job while the coordinator runs (or at construction): its description is checked against
   * its kind's schema. It starts with the least share of its class so far, so it neither waits for
   * older jobs nor floods them.
   */
  addJob(init: JobInit<T>): void {
    if (this.stopped) throw new CrowdmeshError('the coordinator is stopped')
    const { spec } = init
    if (this.slotsByJob.has(spec.jobId)) throw new CrowdmeshError(`job ${spec.jobId} is already running`)
    const validator = init.validator ?? (this.checkerEnv && kindValidator(init.kind, spec, this.checkerEnv))
    const slot = openSlot(
      this.nextSlot++,
      validator === undefined ? init : { ...init, validator },
      this.slotList,
      this.options.targetBlockMs,
    )
    this.slots.set(slot.id, slot)
    this.slotsByJob.set(spec.jobId, slot)
    this.slotList.push(slot)
    if (this.started) {
      this.emit('jobAdded', spec)
      this.emit('workQueued')
    }
  }

  /**
   * Ends a job: its open rounds are dropped (reported with `error: 'job ended'`), its leases
   * cancelled (`leaseCancelled`), and late results for them refused. Other jobs carry on.
   */
  endJob(jobId: string): void {
    const slot = this.slotOf(jobId)
    for (const work of [...slot.queue.inOrder()])
      this.emit('frameDropped', this.endFrame(slot, work, true, 'job ended'))
    this.slots.delete(slot.id)
    this.slotsByJob.delete(jobId)
    this.slotList = this.slotList.filter((s) => s !== slot)
    this.emit('jobEnded', jobId)
  }

  /**
   * Pauses a job (the operator's console): none of its tasks is leased until `resumeJob`; leases out
   * now finish and count. A live job's rounds still arrive, and those that outlast their latency
   * budget are dropped as late, as they would be with no crowd. Pausing a paused job does nothing.
   */
  pauseJob(jobId: string): void {
    const slot = this.slotOf(jobId)
    if (slot.paused) return
    slot.paused = true
    this.emit('jobPaused', jobId)
  }

  /** Resumes a paused job: participants on standby are told to ask again. */
  resumeJob(jobId: string): void {
    const slot = this.slotOf(jobId)
    if (!slot.paused) return
    slot.paused = false
    // Its pass is taken to the least of its class, as a new job's: a long pause earns no flood.
    const peers = this.slotList.filter((s) => s !== slot && s.class === slot.class && !s.paused)
    slot.granted = Math.max(slot.granted, leastShare(peers, slot.weight))
    this.emit('jobResumed', jobId)
    this.emit('workQueued')
    this.offerWork()
  }

  /**
   * Changes a job's share among the jobs of its class (its priority, on the console). Its stride
   * pass is kept, so the change applies from now on rather than repaying the past.
   */
  setWeight(jobId: string, weight: number): void {
    reweigh(this.slotOf(jobId), weight)
    this.emit('jobWeighted', { jobId, weight })
  }

  /** Every job running now, as the operator's console shows it. */
  jobStates(): JobState[] {
    return this.slotList.map(slotState)
  }

  /** The management table alone (`statistics().participants`, without copying the round reports). */
  participantRows(): ParticipantRow[] {
    return this.participants.rows()
  }

  /** Trust per identity and the validation counters (`statistics()` without the round reports). */
  validationState(): Pick<CoordinatorStatistics, 'validation' | 'trust'> {
    return this.validation.statistics()
  }

  private slotOf(jobId: string): JobSlot<T> {
    const slot = this.slotsByJob.get(jobId)
    if (slot === undefined) throw new UnknownJobError(`job ${jobId} is not running`)
    return slot
  }

  /**
   * Adds an input of round `frameIndex` of a job (one image of a moment of a show, a photograph): the round
   * opens with its first input, and its tasks join the job's queue in round order. Throws for an
   * input its kind refuses, and for a job that is not running.
   */
  addInput(jobId: string, frameIndex: number, input: unknown): void {
    if (this.stopped) throw new CrowdmeshError('the coordinator is stopped')
    const slot = this.slotOf(jobId)
    const now = this.clock.now()
    const existing = slot.queue.frame(frameIndex)
    if (existing !== undefined) {
      if (!existing.plan.addInput(input)) {
        this.log(`round ${frameIndex} of job ${jobId}: that input is already in`)
        return
      }
      existing.arrivedAt = now
    } else {
      if (slot.ended.has(frameIndex)) {
        this.log(`round ${frameIndex} of job ${jobId} already ended`)
        return
      }
      const level = this.admissionLevel(slot)
      const plan = slot.kind.openRound(slot.spec, frameIndex, level)
      // The kind checks the input before the round exists: a refused one opens nothing.
      plan.addInput(input)
      const work = slot.queue.open(frameIndex, plan, level, now)
      slot.roundSinks.set(frameIndex, slot.sinks({ job: slot.spec, kind: slot.kind, plan, level }))
      if (level > 0) this.emit('frameDowngraded', { jobId, frameIndex, level })
      if (slot.class === 'live' && this.slotList.length > 1) this.preemptBatch(slot)
      if (slot.live !== undefined) {
        const timer = this.clock.setTimer(() => this.dropLate(slot, work.index), slot.live.latencyBudgetMs)
        slot.budgetTimers.set(frameIndex, timer)
      }
    }
    this.emit('workQueued')
    this.offerWork()
  }

  /**
   * A participant asks for work, stating its capability: a lease on a task sized to its speed, of a
   * kind it runs, or undefined when there is none (standby) or it already holds as many leases as it
   * may.
   */
  handleLeaseRequest(participantId: string, capability?: Capability): Lease<K> | undefined {
    if (this.stopped || this.validation.quarantined(participantId)) return undefined
    const now = this.clock.now()
    const participant = this.participants.touch(participantId, now, capability)
    participant.lastAskedAt = now
    const held = this.leases.activeOf(participantId)
    if (held.length >= this.options.maxLeasesPerParticipant) return undefined
    const speed = this.participants.speed(participant)
    // A second lease only hides the round trip; where the round trip is small beside the task it
    // would only make the task wait, and hold back a round that another participant could finish.
    if (held.length > 0 && speed.threadsPerSec > 0) {
      const first = held[0]!
      const cost = this.slots.get(first.job)?.cost ?? referenceCost
      const taskMs = expectedTaskMs(speed, cost, first.units) - speed.rttMs
      if (taskMs > 4 * speed.rttMs) return undefined
    }
    let slot: JobSlot<T> | undefined
    let limits: SizerLimits | undefined
    if (this.slotList.length === 1) {
      const only = this.slotList[0]!
      slot = !only.paused && this.participants.runs(participant, only.tag) ? only : undefined
      limits = slot?.limits
    } else {
      // Beside a live job it runs, a participant gets short batch tasks, so a live round waits at
      // most for the one in hand (a second one, not started, is taken back: `preemptBatch`).
      const besideLive = this.slotList.some(
        (s) => s.class === 'live' && this.participants.runs(participant, s.tag),
      )
      slot = pickSlot(this.slotList, (tag) => this.participants.runs(participant, tag))
      limits =
        slot?.class === 'batch' && besideLive
          ? { ...slot.limits, targetBlockMs: this.options.batchBesideLiveMs }
          : slot?.limits
    }
    // A live round's laggard goes before batch work: a copy of it, if the participant would finish
    // sooner, shortens the round that someone is watching.
    if (slot?.class === 'batch' && this.options.speculation) {
      const backup = this.speculate(participant, held, ['live'])
      if (backup !== undefined) return backup
    }
    if (slot !== undefined) {
      const replica = this.validation.replicaFor(slot, participant)
      if (replica !== undefined)
        return this.grant(participant, slot, replica.task, held, false, true).lease as Lease<K>
      const units = taskUnits(this.speedOf(participant, slot), slot.cost, limits!)
      const queued = slot.queue.next(units)
      const next = queued !== undefined ? { slot, task: queued } : this.draw(slot, participant, units)
      if (next !== undefined) {
        const record = this.grant(participant, next.slot, next.task, held, false)
        this.announceTail(next.slot, next.task.frameIndex)
        return record.lease as Lease<K>
      }
    }
    return this.options.speculation ? this.speculate(participant, held) : undefined
  }

  /**
   * A round drawn from the job's source for this participant (its stated holdings), opened, and its
   * first task: the pool-backed jobs of match runs. The round may be of another job the source feeds.
   */
  private draw(
    slot: JobSlot<T>,
    participant: ParticipantRecord,
    units: number,
  ): { slot: JobSlot<T>; task: TaskBase } | undefined {
    const source = slot.source
    if (source === undefined || !source.ready) return undefined
    const drawn = source.draw(participant.id, participant.capability?.holds ?? [])
    if (drawn === undefined) return undefined
    const jobId = drawn.jobId ?? slot.spec.jobId
    const target = this.slotsByJob.get(jobId)
    try {
      if (target?.source !== source) throw new UnknownJobError(`job ${jobId} is not fed by this source`)
      this.addInput(jobId, drawn.frameIndex, drawn.input)
    } catch (error) {
      if (!(error instanceof CrowdmeshError)) throw error
      source.refused(jobId, drawn.frameIndex, error.message)
      return undefined
    }
    const task = target.queue.next(units)
    return task === undefined ? undefined : { slot: target, task }
  }

  /**
   * A job's round source has new rounds (a pool gained tasks): participants on standby are told to
   * ask again (`workQueued`), and in push mode offered them.
   */
  roundsAvailable(): void {
    if (this.stopped) return
    this.emit('workQueued')
    this.offerWork()
  }

  /** How many backup copies idle participants could usefully take now (see `backupsWanted`). */
  get backupsWanted(): number {
    if (!this.options.speculation) return 0
    let wanted = 0
    for (const slot of this.slotList) {
      if (slot.queue.firstWithWork() !== undefined) return 0
      wanted += backupsWanted(slot.queue, this.leases, this.options.maxCopies)
    }
    return wanted
  }

  private announceTail(slot: JobSlot<T>, frameIndex: number): void {
    if (!this.options.speculation || slot.tails.has(frameIndex)) return
    const work = slot.queue.frame(frameIndex)
    if (work === undefined || slot.queue.queuedIn(work) > 0 || !work.plan.inputsComplete) return
    slot.tails.add(frameIndex)
    this.emit('backupsWanted', frameIndex, slot.spec.jobId)
  }

  /**
   * A participant returns a task's result. Returns whether it counted. The first valid result of a
   * task wins, even from a lease that expired meanwhile; later copies are dropped as duplicates.
   * A refused result never changes an outcome.
   */
  handleBlockResult(participantId: string, leaseId: number, result: unknown): boolean {
    const record = this.leases.get(leaseId)
    // Validate and decide first; act after. A listener that throws while the accepted result is acted
    // on (a `frameComplete` handler) must not turn a counted result into a rejected one.
    let accepted: {
      record: LeaseRecord
      slot: JobSlot<T>
      work: RoundWork
      participant: ParticipantRecord
      sink: RoundSink<TaskBase, unknown, T>
    }
    try {
      if (this.validation.quarantined(participantId))
        throw new QuarantinedError(`participant ${participantId} is quarantined: its results are refused`)
      if (record === undefined)
        throw new BlockMismatchError(`lease ${leaseId} is not known (or its frame ended)`)
      if (record.participantId !== participantId) {
        throw new BlockMismatchError(`lease ${leaseId} belongs to another participant`)
      }
      const slot = this.slots.get(record.job)
      if (slot === undefined) throw new BlockMismatchError(`lease ${leaseId} is of a job that ended`)
      const { block } = record.lease
      if (!slot.kind.result.matches(block, result)) {
        throw new BlockMismatchError(`result does not describe the block of lease ${leaseId}`)
      }
      const work = slot.queue.frame(block.frameIndex)!
      const participant = this.participants.touch(participantId, this.clock.now())
      if (record.replica) {
        this.validation.replicaReturned(slot, work, record, participant, result)
        return true
      }
      if (work.done.has(record.key)) {
        this.wasted(slot, participant, record)
        this.leases.close(record, 'settled')
        return false
      }
      const sink = slot.roundSinks.get(block.frameIndex)!
      // The sink checks the result (overlaps, impossible values) before it takes it.
      sink.add(block, result)
      accepted = { record, slot, work, participant, sink }
    } catch (error) {
      if (!(error instanceof CrowdmeshError)) throw error
      if (record?.participantId === participantId && record.state === 'active') this.fail(record)
      this.emit('resultRejected', { participantId, leaseId, error })
      return false
    }
    const { slot, work, participant } = accepted
    this.count(slot, participant, accepted.record, work)
    this.validation.validate(slot, work, accepted.record, participant.id, result)
    this.maybeComplete(slot, work)
    this.offerWork(participant)
    return !this.validation.quarantined(participantId)
  }

  /**
   * Admits a participant's identity through the join link it showed (the transport calls this at
   * its hello): see `ResultValidation.admit`.
   */
  admit(participantId: string, link: string): void {
    this.validation.admit(participantId, link)
  }

  /** Whether an identity is quarantined. */
  quarantined(participantId: string): boolean {
    return this.validation.quarantined(participantId)
  }

  /** Publishes a round once every unit is counted and no counted result is still being validated. */
  private maybeComplete(slot: JobSlot<T>, work: RoundWork): void {
    if (work.pending > 0 || slot.queue.frame(work.index) !== work) return
    const sink = slot.roundSinks.get(work.index)
    if (sink?.complete === true) this.decisions.complete(slot, work, sink)
  }

  /**
   * A participant reports it could not compute a lease's task: it is queued again at once. A task
   * that `maxTaskFailures` participants failed (a corrupt video that every decoder refuses) ends its
   * round, dropped with `reason`: the job goes on with its other rounds.
   */
  handleBlockFailed(participantId: string, leaseId: number, reason = 'failed'): void {
    const record = this.leases.get(leaseId)
    if (record?.participantId !== participantId || record.state !== 'active') return
    const slot = this.slots.get(record.job)
    const work = slot?.queue.frame(record.lease.block.frameIndex)
    if (slot !== undefined && work !== undefined) {
      const failures = (work.failures.get(record.key) ?? 0) + 1
      work.failures.set(record.key, failures)
      if (failures >= this.options.maxTaskFailures) {
        this.leases.close(record, 'failed')
        const why = `a task failed on ${failures} participants: ${reason.slice(0, 300)}`
        this.log(`round ${work.index} of job ${slot.spec.jobId}: ${why}`)
        this.emit('frameDropped', this.endFrame(slot, work, true, why))
        return
      }
    }
    this.fail(record)
  }

  /** Push mode: a participant introduces itself and its capability; it is offered work at once. */
  handleParticipantJoined(participantId: string, capability?: Capability): void {
    this.participants.touch(participantId, this.clock.now(), capability)
    this.offerWork()
  }

  /** Whether any job has a task waiting to be granted. */
  private hasQueuedWork(): boolean {
    for (const slot of this.slotList)
      if (slot.queue.firstWithWork() !== undefined || slot.replicas.length > 0) return true
    return false
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
        if (!this.hasQueuedWork()) break
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
    // Gone first, so that its own tasks are not offered back to it.
    this.participants.leave(participantId, this.clock.now())
    for (const record of this.leases.activeOf(participantId)) {
      this.leases.close(record, 'abandoned')
      this.requeue(record)
    }
  }

  /** The management table and round figures. */
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
      ...this.validation.statistics(),
    }
  }

  /** Checks the books: see `CoordinatorAudit`. Costs a pass over open rounds and their leases. */
  audit(): CoordinatorAudit {
    const now = this.clock.now()
    let unaccounted = 0
    let overdue = 0
    let open = 0
    for (const slot of this.slotList)
      for (const work of slot.queue.inOrder()) {
        open++
        const leased = new Map<string, number>()
        for (const record of this.leases.activeInFrame(work.round)) {
          // A replica recomputes a task already counted: its units are counted once, as done.
          if (record.replica) continue
          leased.set(record.key, record.units)
          if (record.lease.deadline < now) overdue++
        }
        let outstanding = 0
        for (const units of leased.values()) outstanding += units
        // Every unit cut into a task is counted, waiting to be redone, or under a lease.
        unaccounted += work.unitsCut - work.threadsDone - work.requeuedUnits - outstanding
      }
    return {
      openFrames: open,
      unaccountedThreads: unaccounted,
      overdueLeases: overdue,
      firstFrameWithWork: this.slotList[0]?.queue.firstWithWork(),
    }
  }

  /** Cancels every lease and budget timer. Safe to call twice. */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    this.leases.closeAll()
    for (const slot of this.slotList) {
      for (const timer of slot.budgetTimers.values()) this.clock.clearTimer(timer)
      slot.budgetTimers.clear()
    }
  }

  private grant(
    participant: ParticipantRecord,
    slot: JobSlot<T>,
    task: TaskBase,
    held: LeaseRecord[],
    speculative: boolean,
    replica = false,
  ): LeaseRecord {
    const now = this.clock.now()
    const speed = this.speedOf(participant, slot)
    const taskKey = slot.kind.taskKey(task)
    // Keys are per job: the first job's stand alone, as they did before there were several.
    const key = slot.id === 0 ? taskKey : `${slot.id}:${taskKey}`
    const units = slot.kind.taskUnits(task)
    // The participant works through its leases in turn: this one starts when the last one it holds ends.
    const startsAt = held.reduce((t, r) => Math.max(t, r.expectedAt), now)
    let expectedAt: number
    let deadline: number
    if (speed.threadsPerSec > 0) {
      const ms = expectedTaskMs(speed, slot.cost, units)
      expectedAt = startsAt + ms
      deadline = now + Math.max(this.options.minDeadlineMs, this.options.deadlineSlack * (expectedAt - now))
    } else {
      expectedAt = now + this.options.calibrationDeadlineMs / this.options.deadlineSlack
      deadline = now + this.options.calibrationDeadlineMs
    }
    const reference = units * slot.cost.relativeCost
    participant.threadsAssigned += reference
    slot.granted += reference
    this.emit('leaseGranted', { participantId: participant.id, jobId: slot.spec.jobId, units })
    return this.leases.grant(
      participant.id,
      task,
      { key, units, job: slot.id, round: slot.queue.roundOf(task.frameIndex) },
      { deadline, expectedAt, speculative, replica },
    )
  }

  /**
   * A live round opened: every participant that runs its kind and holds a batch task it has not
   * started (the second of two: it computes them in turn) gives that one back, so it asks again and
   * gets the live work next. The task goes back to its queue; a participant that started it after
   * all returns a result that still counts if no copy beat it.
   */
  private preemptBatch(live: JobSlot<T>): void {
    for (const participant of this.participants.present()) {
      if (!this.participants.runs(participant, live.tag)) continue
      const held = this.leases.activeOf(participant.id)
      if (held.length < 2) continue
      let newest = held[0]!
      for (const record of held) if (record.lease.leaseId > newest.lease.leaseId) newest = record
      if (this.slots.get(newest.job)?.class !== 'batch') continue
      this.leases.close(newest, 'cancelled')
      this.emit('leaseCancelled', { participantId: participant.id, leaseId: newest.lease.leaseId })
      this.requeue(newest)
    }
  }

  /**
   * A participant's speed for a job's tasks, in reference units: with several jobs, what it showed on
   * that kind once it has computed some (its overall speed until then).
   */
  private speedOf(participant: ParticipantRecord, slot: JobSlot<T>): SpeedEstimate {
    const speed = this.participants.speed(participant)
    if (this.slotList.length === 1) return speed
    const rate = participant.kindRates.get(slot.tag)
    return rate === undefined ? speed : { ...speed, threadsPerSec: rate * slot.cost.relativeCost }
  }

  /**
   * Backup tasks (see `backups.ts`): a copy of a laggard's task, granted to this idle participant;
   * live jobs first.
   */
  private speculate(
    participant: ParticipantRecord,
    held: LeaseRecord[],
    classes: readonly PriorityClass[] = ['live', 'batch'],
  ): Lease<K> | undefined {
    for (const jobClass of classes)
      for (const slot of this.slotList) {
        if (slot.class !== jobClass || slot.paused || !this.participants.runs(participant, slot.tag)) continue
        const laggard = chooseBackup(slot.queue, this.leases, {
          participantId: participant.id,
          speed: this.speedOf(participant, slot),
          held,
          now: this.clock.now(),
          maxCopies: this.options.maxCopies,
          cost: slot.cost,
        })
        if (laggard !== undefined)
          return this.grant(participant, slot, laggard.lease.block, held, true).lease as Lease<K>
      }
    return undefined
  }

  private count(
    slot: JobSlot<T>,
    participant: ParticipantRecord,
    record: LeaseRecord,
    work: RoundWork,
  ): void {
    const now = this.clock.now()
    const { block } = record.lease
    const { units } = record
    work.done.add(record.key)
    work.threadsDone += units
    this.threadsCounted += units
    this.leases.close(record, 'settled')
    // Copies of the task still out are no longer wanted, and a queued redo of it is void.
    if (this.leases.copies(record.key) > 0) {
      for (const copy of this.leases.activeOn(record.key)) {
        this.leases.close(copy, 'cancelled')
        this.emit('leaseCancelled', { participantId: copy.participantId, leaseId: copy.lease.leaseId })
      }
    }
    slot.queue.withdraw(block, record.key)
    this.participants.observe(
      participant,
      units * slot.cost.relativeCost,
      now - Math.max(record.grantedAt, participant.lastResultAt),
      now,
      this.slotList.length > 1 ? { tag: slot.tag, units } : undefined,
    )
    this.emit('blockDone', { block: block as K, participantId: participant.id, threads: units })
  }

  private wasted(slot: JobSlot<T>, participant: ParticipantRecord, record: LeaseRecord): void {
    const threads = record.units
    participant.threadsWasted += threads
    this.threadsWasted += threads
    const frame = record.lease.block.frameIndex
    slot.duplicateThreads.set(frame, (slot.duplicateThreads.get(frame) ?? 0) + threads)
  }

  private endFrame(slot: JobSlot<T>, work: RoundWork, dropped: boolean, error?: string): FrameReport {
    return this.reportRound(slot, work, this.endRound(slot, work), dropped, error)
  }

  /**
   * Ends a round's work: its timer, its outstanding leases, its place in the queue, its sink, its
   * results' validation. What it returns is who answers for its results (the report's `answerable`).
   */
  private endRound(slot: JobSlot<T>, work: RoundWork): string[] {
    const timer = slot.budgetTimers.get(work.index)
    if (timer !== undefined) this.clock.clearTimer(timer)
    slot.budgetTimers.delete(work.index)
    for (const record of this.leases.forgetFrame(work.round)) {
      this.emit('leaseCancelled', { participantId: record.participantId, leaseId: record.lease.leaseId })
    }
    slot.queue.remove(work.index)
    slot.roundSinks.delete(work.index)
    slot.ended.add(work.index)
    slot.tails.delete(work.index)
    return this.validation.roundEnded(slot, work)
  }

  /** The report of an ended round (its latency runs to now: when its outcome is known). */
  private reportRound(
    slot: JobSlot<T>,
    work: RoundWork,
    answerable: string[],
    dropped: boolean,
    error?: string,
  ): FrameReport {
    const now = this.clock.now()
    const report: FrameReport = {
      jobId: slot.spec.jobId,
      frameIndex: work.index,
      level: work.level,
      threads: work.plan.totalUnits,
      arrivedAt: work.arrivedAt,
      latencyMs: now - work.arrivedAt,
      reassignments: work.reassignments,
      duplicateThreads: slot.duplicateThreads.get(work.index) ?? 0,
      dropped,
      ...(error !== undefined && { error }),
      ...(slot.validator !== undefined && !dropped && { answerable }),
    }
    slot.duplicateThreads.delete(work.index)
    // Kept for statistics without who answered for it: a long run keeps a report per round.
    const { answerable: _answerable, ...kept } = report
    this.reports.push(kept)
    return report
  }

  private dropLate(slot: JobSlot<T>, index: number): void {
    const work = slot.queue.frame(index)
    if (work === undefined) return
    this.log(
      `round ${index} of job ${slot.spec.jobId} missed its latency budget: dropped with ${work.threadsDone} units done`,
    )
    this.emit('frameDropped', this.endFrame(slot, work, true))
  }

  /** The level a new live round is admitted at: coarser while the crowd cannot keep up. */
  private admissionLevel(slot: JobSlot<T>): number {
    const levels = slot.kind.levels
    if (slot.live?.overload !== 'downgrade' || levels === undefined) return 0
    let rate = 0
    for (const p of this.participants.present()) rate += this.participants.speed(p).threadsPerSec
    if (rate <= 0) return 0
    rate /= slot.cost.relativeCost
    const backlog = slot.queue.queuedUnits
    const budget = slot.live.latencyBudgetMs / 1000
    for (let level = 0; level < levels.maxLevel; level++) {
      const units = levels.unitsAt(slot.spec, level)
      if ((backlog + units) / rate <= budget * 0.8) return level
    }
    return levels.maxLevel
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

  /** Queues a task again unless another copy of it is still out (a backup that may yet win). */
  private requeue(record: LeaseRecord): void {
    if (record.replica) {
      this.validation.replicaLost(record)
      return
    }
    const { block } = record.lease
    if (this.leases.copies(record.key) > 0) return
    const slot = this.slots.get(record.job)
    const work = slot?.queue.frame(block.frameIndex)
    if (slot === undefined || work === undefined || work.done.has(record.key)) return
    slot.queue.requeue(block, record.key, record.units)
    this.emit('leaseRequeued', record.lease as Lease<K>)
    this.emit('workQueued')
    this.offerWork()
  }
}

/** Uniform in [0, 1) from the operating system's cryptographic source (48 bits). */
function cryptoRandom(): number {
  return randomInt(2 ** 47) / 2 ** 47
}

/** The reference unit's cost, for a lease whose job has ended. */
const referenceCost: TaskCost = { relativeCost: 1, inputBytesPerUnit: 0, resultBytesPerUnit: 4 }
