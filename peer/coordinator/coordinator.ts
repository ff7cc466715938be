import { EventEmitter } from 'node:events'
import type { AnyJobKind, JobSpec, RoundSink, TaskBase, WorkerEnv } from '../jobs/kind.ts'
import { kindValidator } from '../jobs/validator.ts'
import type { Capability } from '../protocol/capability.ts'
import type { Clock } from '../protocol/clock.ts'
import { randomInt } from 'node:crypto'
import { schedulingDefaults, validationDefaults, type ValidationPolicy } from '../protocol/defaults.ts'
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
  SchedulingOptions,
} from './coordinator-contract.ts'
import { LeaseBook, type LeaseRecord } from './lease-book.ts'
import { ParticipantBook, type ParticipantRecord } from './participant-book.ts'
import { type JobSlot, openSlot, pickSlot } from './job-slots.ts'
import { TrustBook } from './trust-book.ts'
import {
  type CheckOutcome,
  type Contribution,
  decide,
  emptyCounters,
  maxCopiesCompared,
  sampleUnits,
  type ValidationCounters,
} from './validation.ts'
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
  private readonly policy: ValidationPolicy
  private readonly trust: TrustBook
  private readonly random: () => number
  private readonly checkerEnv: WorkerEnv | undefined
  /** Whether a trusted identity is present, by kind tag, and when that was worked out (`trustedPresent`). */
  private readonly trustedHere = new Map<string, { at: number; present: boolean }>()
  private readonly counters: ValidationCounters = emptyCounters()
  /** Counted results of validated jobs in open rounds, by the identity they came from. */
  private readonly contributionsOf = new Map<string, Set<Contribution>>()

  constructor(init: CoordinatorInit<T>, components: CoordinatorComponents) {
    super()
    this.clock = components.clock
    this.log = components.logger ?? makeLogger('crowdmesh:coordinator')
    this.options = { ...schedulingDefaults, ...init.scheduling }
    this.push = init.mode === 'push'
    this.leases = new LeaseBook(this.clock, (record) => this.expire(record))
    this.participants = new ParticipantBook(this.options.rateSmoothing)
    this.policy = { ...validationDefaults, ...init.validation }
    this.trust = new TrustBook(this.policy)
    this.random = components.random ?? cryptoRandom
    this.checkerEnv = components.checkerEnv
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
    return this.slotsByJob.get(jobId)?.queue.size ?? 0
  }

  /** Leases outstanding. */
  get activeLeases(): number {
    return this.leases.active
  }

  /** True when no round of any job has work left or outstanding leases. */
  get idle(): boolean {
    for (const slot of this.slotList) if (slot.queue.size > 0) return false
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
    const slot = this.slotsByJob.get(jobId)
    if (slot === undefined) throw new UnknownJobError(`job ${jobId} is not running`)
    for (const work of [...slot.queue.inOrder()])
      this.emit('frameDropped', this.endFrame(slot, work, true, 'job ended'))
    this.slots.delete(slot.id)
    this.slotsByJob.delete(jobId)
    this.slotList = this.slotList.filter((s) => s !== slot)
    this.emit('jobEnded', jobId)
  }

  /**
   * Adds an input of round `frameIndex` of a job (one image of a moment of a show, a photograph): the round
   * opens with its first input, and its tasks join the job's queue in round order. Throws for an
   * input its kind refuses, and for a job that is not running.
   */
  addInput(jobId: string, frameIndex: number, input: unknown): void {
    if (this.stopped) throw new CrowdmeshError('the coordinator is stopped')
    const slot = this.slotsByJob.get(jobId)
    if (slot === undefined) throw new UnknownJobError(`job ${jobId} is not running`)
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
    if (this.stopped || this.trust.quarantined(participantId)) return undefined
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
      slot = this.participants.runs(participant, this.slotList[0]!.tag) ? this.slotList[0] : undefined
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
    if (slot !== undefined) {
      const replica = this.replicaFor(slot, participant)
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
      if (this.trust.quarantined(participantId))
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
        this.replicaReturned(slot, work, record, participant, result)
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
    this.validate(slot, work, accepted.record, participant.id, result)
    this.maybeComplete(slot, work)
    this.offerWork(participant)
    return !this.trust.quarantined(participantId)
  }

  /**
   * Admits a participant's identity through the join link it showed (the transport calls this at
   * its hello): a link holds `identitiesPerLink` identities, quarantined ones included. Throws
   * `LinkExhaustedError` for one too many, `QuarantinedError` for a quarantined identity.
   */
  admit(participantId: string, link: string): void {
    const record = this.trust.admit(participantId, link)
    if (record.state === 'quarantined')
      throw new QuarantinedError(
        `this participant was quarantined: ${record.reason ?? 'a proven wrong result'}`,
      )
  }

  /** Whether an identity is quarantined. */
  quarantined(participantId: string): boolean {
    return this.trust.quarantined(participantId)
  }

  /**
   * A counted result of a validated job: checked, replicated or taken on trust, as the policy decides
   * for its identity (`decide`). A check that runs in this thread settles before this returns.
   */
  private validate(
    slot: JobSlot<T>,
    work: RoundWork,
    record: LeaseRecord,
    participantId: string,
    result: unknown,
  ): void {
    const validator = slot.validator
    if (validator === undefined || this.policy.mode === 'off') return
    const contribution: Contribution = {
      key: record.key,
      slot: slot.id,
      frameIndex: work.index,
      task: record.lease.block,
      units: record.units,
      participantId,
      result,
      state: 'accepted',
      computedBy: new Set([participantId]),
      copies: new Map(),
      replicasOut: 0,
      checkedWhole: false,
      vouchedBy: new Set(),
    }
    work.contributions.set(record.key, contribution)
    this.remember(contribution)
    const decision = decide(this.policy, this.trust.of(participantId), validator, this.random)
    if ('replicate' in decision) this.replicate(slot, work, contribution)
    else if ('check' in decision) {
      contribution.state = 'checking'
      work.pending++
      const units = sampleUnits(record.units, decision.check, this.random)
      this.check(slot, contribution, units, (outcome) => {
        if (outcome.ok === true) contribution.checkedWhole = units.length === record.units
        this.checked(slot, work, contribution, outcome)
      })
    }
  }

  /** Indexes a contribution under `identity` (its owner, or an identity that vouched for it). */
  private remember(contribution: Contribution, identity = contribution.participantId): void {
    let set = this.contributionsOf.get(identity)
    if (set === undefined) {
      set = new Set()
      this.contributionsOf.set(identity, set)
    }
    set.add(contribution)
  }

  /** Whether a contribution is still its round's counted result (not withdrawn, round not ended). */
  private current(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): boolean {
    return (
      this.slots.get(slot.id) === slot &&
      slot.queue.frame(work.index) === work &&
      work.contributions.get(contribution.key) === contribution
    )
  }

  /**
   * Runs the job's checker on `units` of a contribution's result, and hands the outcome to `then`
   * (at once when the checker answers in this thread, later when it must fetch an input).
   */
  private check(
    slot: JobSlot<T>,
    contribution: Contribution,
    units: number[],
    then: (outcome: CheckOutcome) => void,
    result = contribution.result,
  ): void {
    const checker = slot.validator?.checker
    if (checker === undefined) {
      then({ ok: 'unavailable', reason: 'the job has no checker' })
      return
    }
    this.counters.checks++
    this.counters.unitsChecked += units.length
    const started = performance.now()
    let verdict: ReturnType<typeof checker.check>
    try {
      verdict = checker.check(contribution.task, result, units)
    } catch (error) {
      then({ ok: 'unavailable', reason: (error as Error).message })
      return
    } finally {
      this.counters.checkMs += performance.now() - started
    }
    if (verdict instanceof Promise) {
      verdict.then(then, (error: unknown) => then({ ok: 'unavailable', reason: (error as Error).message }))
    } else then(verdict)
  }

  /** A spot check's outcome: verified, refuted (the identity is caught), or replicated instead. */
  private checked(
    slot: JobSlot<T>,
    work: RoundWork,
    contribution: Contribution,
    outcome: CheckOutcome,
  ): void {
    if (this.stopped || !this.current(slot, work, contribution) || contribution.state !== 'checking') return
    if (outcome.ok === true) {
      contribution.state = 'verified'
      work.pending--
      this.trust.passed(this.trust.of(contribution.participantId))
      this.maybeComplete(slot, work)
    } else if (outcome.ok === false) {
      this.convict(contribution.participantId, `task ${contribution.key}: ${outcome.reason}`)
    } else {
      this.log(`task ${contribution.key} could not be checked (${outcome.reason}): replicated instead`)
      work.pending--
      this.replicate(slot, work, contribution)
    }
  }

  /** Queues a contribution for a replica on another identity; its round waits for the comparison. */
  private replicate(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    if (contribution.state !== 'replicating') {
      contribution.state = 'replicating'
      work.pending++
      this.awaitReplica(slot, work, contribution)
    }
    slot.replicas.push(contribution)
    this.emit('workQueued')
    this.offerWork()
  }

  /**
   * Every `replicaPatienceMs` while a contribution waits for a replica: with no other identity
   * present that could compute one, it is taken unverified (counted) rather than holding its round.
   */
  private awaitReplica(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    this.clock.setTimer(() => {
      if (this.stopped || !this.current(slot, work, contribution) || contribution.state !== 'replicating')
        return
      const now = this.clock.now()
      const someone = [...this.participants.present()].some(
        (p) =>
          !contribution.computedBy.has(p.id) &&
          now - p.lastAskedAt < this.policy.replicaPatienceMs &&
          !this.trust.quarantined(p.id) &&
          this.participants.runs(p, slot.tag),
      )
      if (someone || contribution.replicasOut > 0) {
        this.awaitReplica(slot, work, contribution)
        return
      }
      slot.replicas = slot.replicas.filter((c) => c !== contribution)
      if (slot.validator?.checker !== undefined) {
        // Nobody to replicate it (trusting nobody, alone): the coordinator checks it instead.
        contribution.state = 'checking'
        const units = sampleUnits(contribution.units, this.policy.sampleUnits, this.random)
        this.check(slot, contribution, units, (outcome) => {
          if (outcome.ok === true) contribution.checkedWhole = units.length === contribution.units
          this.checked(slot, work, contribution, outcome)
        })
        return
      }
      this.log(`task ${contribution.key}: no other participant to replicate it; taken unverified`)
      this.counters.unverifiedAccepted++
      contribution.state = 'accepted'
      work.pending--
      this.emit('resultUnverified', {
        participantId: contribution.participantId,
        jobId: slot.spec.jobId,
        frameIndex: work.index,
        task: contribution.task,
      })
      this.maybeComplete(slot, work)
    }, this.policy.replicaPatienceMs)
  }

  /**
   * The oldest replica this participant may compute: of a task it has not computed, given by an
   * identity of another join link (two identities of one link may be one person).
   */
  private replicaFor(slot: JobSlot<T>, participant: ParticipantRecord): Contribution | undefined {
    if (slot.replicas.length === 0) return undefined
    const link = this.trust.of(participant.id).link
    // While trusted identities are here, an untrusted result is replicated by one of them: two
    // untrusted identities agreeing may be two colluders.
    const untrusted = this.trust.of(participant.id).state !== 'trusted' && this.trustedPresent(slot.tag)
    for (let i = 0; i < slot.replicas.length; i++) {
      const c = slot.replicas[i]!
      if (c.computedBy.has(participant.id)) continue
      if (untrusted && this.trust.of(c.participantId).state !== 'trusted') continue
      if (link !== undefined && [...c.computedBy].some((id) => this.trust.of(id).link === link)) continue
      slot.replicas.splice(i, 1)
      c.computedBy.add(participant.id)
      c.replicasOut++
      this.counters.replicas++
      return c
    }
    return undefined
  }

  /**
   * A replica's result: agreeing, both identities earn a verified result; disagreeing, the checker
   * recomputes the disputed units of both and the one it refutes is caught. A kind without a checker
   * takes the first result two identities agree on (a quorum), and accuses nobody.
   */
  private replicaReturned(
    slot: JobSlot<T>,
    work: RoundWork,
    record: LeaseRecord,
    participant: ParticipantRecord,
    result: unknown,
  ): void {
    const now = this.clock.now()
    // A replica that comes back after its lease expired was already given up (`replicaLost`).
    const outstanding = record.state === 'active'
    this.leases.close(record, 'settled')
    this.counters.replicaUnits += record.units
    this.participants.observe(
      participant,
      record.units * slot.cost.relativeCost,
      now - Math.max(record.grantedAt, participant.lastResultAt),
      now,
      this.slotList.length > 1 ? { tag: slot.tag, units: record.units } : undefined,
    )
    const contribution = work.contributions.get(record.key)
    if (contribution === undefined || contribution.state !== 'replicating') {
      this.wasted(slot, participant, record)
      this.offerWork(participant)
      return
    }
    if (outstanding) contribution.replicasOut--
    contribution.computedBy.add(participant.id)
    const validator = slot.validator!
    const { task } = contribution
    const agreed = validator.agree(task, contribution.result, result)
    // Trusting nobody, two copies that agree are checked all the same where checks are cheap: two
    // colluders agree with each other.
    const checkAgreement = this.policy.mode === 'replicate-all' && validator.cheapCheckUnits !== undefined
    if (validator.checker !== undefined && (!agreed || checkAgreement)) {
      if (!agreed) this.counters.disputes++
      const units = agreed
        ? sampleUnits(record.units, validator.cheapCheckUnits ?? this.policy.sampleUnits, this.random)
        : this.disputedUnits(validator, contribution, result, record.units)
      const replicaId = participant.id
      this.check(slot, contribution, units, (original) => {
        this.check(
          slot,
          contribution,
          units,
          (copy) => this.disputeSettled(slot, work, contribution, replicaId, agreed, original, copy),
          result,
        )
      })
    } else this.quorum(slot, work, contribution, participant.id, result)
    this.offerWork(participant)
  }

  /**
   * Whether a trusted identity that runs `tag` is here and working: present, and asked for work within
   * `replicaPatienceMs` (a paused one stays present). Recomputed at most once a second: it is read on
   * lease requests. Until one is, two untrusted identities agreeing is all there is.
   */
  private trustedPresent(tag: string): boolean {
    const now = this.clock.now()
    const cached = this.trustedHere.get(tag)
    if (cached !== undefined && now - cached.at < 1000) return cached.present
    let present = false
    for (const p of this.participants.present())
      if (
        this.participants.runs(p, tag) &&
        now - p.lastAskedAt < this.policy.replicaPatienceMs &&
        this.trust.of(p.id).state === 'trusted'
      ) {
        present = true
        break
      }
    this.trustedHere.set(tag, { at: now, present })
    return present
  }

  /** Whether two identities agreeing decides a task: one of them is trusted, or nobody trusted is here. */
  private agreementCounts(a: string, b: string, tag: string): boolean {
    return (
      this.trust.of(a).state === 'trusted' ||
      this.trust.of(b).state === 'trusted' ||
      !this.trustedPresent(tag)
    )
  }

  /** The units two disagreeing copies differ on (where a check looks), or a sample where none is named. */
  private disputedUnits(
    validator: NonNullable<JobSlot<T>['validator']>,
    contribution: Contribution,
    copy: unknown,
    units: number,
  ): number[] {
    const disputed = validator.disputed(
      contribution.task,
      contribution.result,
      copy,
      this.policy.maxDisputedUnits,
    )
    return disputed.length > 0 ? disputed : sampleUnits(units, this.policy.sampleUnits, this.random)
  }

  /** Another identity's copy agreed with a contribution: verified, and both earn a verified result. */
  private vouched(slot: JobSlot<T>, work: RoundWork, contribution: Contribution, voucher: string): void {
    contribution.state = 'verified'
    if (slot.replicas.includes(contribution)) slot.replicas = slot.replicas.filter((c) => c !== contribution)
    contribution.vouchedBy.add(voucher)
    this.remember(contribution, voucher)
    work.pending--
    this.trust.passed(this.trust.of(contribution.participantId))
    this.trust.passed(this.trust.of(voucher))
    this.maybeComplete(slot, work)
  }

  /**
   * Both copies of a task checked on the same units (those they disagree on, or a cheap sample of two
   * that agree): whichever is refuted is caught; an original that passes is verified.
   */
  private disputeSettled(
    slot: JobSlot<T>,
    work: RoundWork,
    contribution: Contribution,
    replicaId: string,
    agreed: boolean,
    original: CheckOutcome,
    copy: CheckOutcome,
  ): void {
    if (this.stopped) return
    if (copy.ok === false) this.convict(replicaId, `replica of task ${contribution.key}: ${copy.reason}`)
    if (original.ok === false)
      this.convict(contribution.participantId, `task ${contribution.key}: ${original.reason}`)
    if (!this.current(slot, work, contribution) || contribution.state !== 'replicating') return
    if (original.ok === true && agreed && copy.ok === true) this.vouched(slot, work, contribution, replicaId)
    else if (original.ok === true) {
      contribution.state = 'verified'
      if (slot.replicas.includes(contribution))
        slot.replicas = slot.replicas.filter((c) => c !== contribution)
      work.pending--
      if (copy.ok !== false) this.trust.disputed(this.trust.of(replicaId))
      this.trust.passed(this.trust.of(contribution.participantId))
      this.maybeComplete(slot, work)
    } else this.replicate(slot, work, contribution)
  }

  /**
   * Copies are compared until two identities agree (a quorum; one of them trusted while trusted
   * identities are here): the agreed result is the counted one (swapped into the sink if need be),
   * and the identities whose copies disagree with it lose their run of verified results. Nothing
   * proves which lied, so nobody is quarantined: a kind the coordinator cannot check relies on this.
   */
  private quorum(
    slot: JobSlot<T>,
    work: RoundWork,
    contribution: Contribution,
    copyId: string,
    copy: unknown,
  ): void {
    const validator = slot.validator!
    const { task } = contribution
    const earlier: [string, unknown][] = [
      [contribution.participantId, contribution.result],
      ...contribution.copies,
    ]
    for (const [id, value] of earlier) {
      if (id === copyId || !validator.agree(task, value, copy) || !this.agreementCounts(id, copyId, slot.tag))
        continue
      for (const [other, theirs] of earlier)
        if (other !== id && !validator.agree(task, theirs, copy)) this.trust.disputed(this.trust.of(other))
      if (id !== contribution.participantId) {
        const sink = slot.roundSinks.get(work.index)!
        sink.withdraw(task)
        sink.add(task, copy)
        this.forget(contribution)
        contribution.participantId = copyId
        contribution.result = copy
        this.remember(contribution)
        contribution.copies.delete(id)
        this.vouched(slot, work, contribution, id)
      } else this.vouched(slot, work, contribution, copyId)
      return
    }
    if (!validator.agree(task, contribution.result, copy)) this.counters.disputes++
    contribution.copies.set(copyId, copy)
    if (contribution.copies.size + 1 >= maxCopiesCompared) {
      this.log(`task ${contribution.key}: ${maxCopiesCompared} copies and no quorum; computed afresh`)
      this.withdraw(slot, work, contribution)
      return
    }
    this.replicate(slot, work, contribution)
  }

  /** Drops a contribution from the index of its owner and of every identity that vouched for it. */
  private forget(contribution: Contribution): void {
    for (const identity of [contribution.participantId, ...contribution.vouchedBy]) {
      const set = this.contributionsOf.get(identity)
      set?.delete(contribution)
      if (set?.size === 0) this.contributionsOf.delete(identity)
    }
  }

  /**
   * A check proved one of a participant's results wrong: its identity is quarantined, everything it
   * gave to open rounds is withdrawn and queued again, and its leases are taken back. The transport
   * closes its connection (`participantQuarantined`).
   */
  private convict(participantId: string, reason: string): void {
    const record = this.trust.of(participantId)
    if (record.state === 'quarantined') return
    this.trust.refuted(record, reason, this.clock.now())
    this.counters.quarantined++
    this.log(`participant ${participantId} quarantined: ${reason}`)
    let withdrawn = 0
    for (const contribution of [...(this.contributionsOf.get(participantId) ?? [])]) {
      const slot = this.slots.get(contribution.slot)
      const work = slot?.queue.frame(contribution.frameIndex)
      if (slot === undefined || work === undefined || !this.current(slot, work, contribution)) continue
      if (contribution.state === 'verified' && contribution.checkedWhole) continue
      this.withdraw(slot, work, contribution)
      withdrawn++
    }
    this.contributionsOf.delete(participantId)
    for (const lease of this.leases.activeOf(participantId)) {
      this.leases.close(lease, 'abandoned')
      this.emit('leaseCancelled', { participantId, leaseId: lease.lease.leaseId })
      this.requeue(lease)
    }
    this.emit('participantQuarantined', { participantId, reason, withdrawn })
  }

  /** Takes a counted result back out of its open round and queues its task again. */
  private withdraw(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    const { key, task, units } = contribution
    work.contributions.delete(key)
    this.forget(contribution)
    if (contribution.state === 'checking' || contribution.state === 'replicating') work.pending--
    slot.replicas = slot.replicas.filter((c) => c !== contribution)
    for (const copy of this.leases.activeOn(key)) {
      this.leases.close(copy, 'cancelled')
      this.emit('leaseCancelled', { participantId: copy.participantId, leaseId: copy.lease.leaseId })
    }
    slot.roundSinks.get(work.index)?.withdraw(task)
    work.done.delete(key)
    work.threadsDone -= units
    this.threadsCounted -= units
    this.counters.resultsWithdrawn++
    this.counters.unitsWithdrawn += units
    slot.queue.requeue(task, key, units)
    this.emit('resultWithdrawn', {
      participantId: contribution.participantId,
      jobId: slot.spec.jobId,
      frameIndex: work.index,
      units,
    })
    this.emit('workQueued')
    this.offerWork()
  }

  /** Publishes a round once every unit is counted and no counted result is still being validated. */
  private maybeComplete(slot: JobSlot<T>, work: RoundWork): void {
    if (work.pending > 0 || slot.queue.frame(work.index) !== work) return
    const sink = slot.roundSinks.get(work.index)
    if (sink?.complete === true) this.completeFrame(slot, work, sink)
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
      validation: { ...this.counters },
      trust: this.trust.rows(),
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
  private speculate(participant: ParticipantRecord, held: LeaseRecord[]): Lease<K> | undefined {
    for (const jobClass of ['live', 'batch'] as const)
      for (const slot of this.slotList) {
        if (slot.class !== jobClass || !this.participants.runs(participant, slot.tag)) continue
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

  private completeFrame(slot: JobSlot<T>, work: RoundWork, sink: RoundSink<TaskBase, unknown, T>): void {
    // The outcome is decided before the round ends: a decision that throws ends the round as
    // dropped, reported with its reason, instead of a round that ended with no outcome at all.
    let outcome: T
    try {
      outcome = sink.finish()
    } catch (error) {
      const reason = (error as Error).message
      this.log.error(
        `round ${work.index} of job ${slot.spec.jobId}: its outcome could not be decided: ${reason}`,
      )
      this.emit('frameDropped', this.endFrame(slot, work, true, reason))
      return
    }
    this.emit('frameComplete', outcome, this.endFrame(slot, work, false))
  }

  private endFrame(slot: JobSlot<T>, work: RoundWork, dropped: boolean, error?: string): FrameReport {
    const now = this.clock.now()
    const timer = slot.budgetTimers.get(work.index)
    if (timer !== undefined) this.clock.clearTimer(timer)
    slot.budgetTimers.delete(work.index)
    for (const record of this.leases.forgetFrame(work.round)) {
      this.emit('leaseCancelled', { participantId: record.participantId, leaseId: record.lease.leaseId })
    }
    slot.queue.remove(work.index)
    slot.roundSinks.delete(work.index)
    if (work.contributions.size > 0) {
      for (const contribution of work.contributions.values()) this.forget(contribution)
      slot.replicas = slot.replicas.filter((c) => c.frameIndex !== work.index)
    }
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
    }
    slot.duplicateThreads.delete(work.index)
    this.reports.push(report)
    slot.ended.add(work.index)
    slot.tails.delete(work.index)
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

  /** A replica lease expired, failed or was given back: its task waits for another replica. */
  private replicaLost(record: LeaseRecord): void {
    const slot = this.slots.get(record.job)
    const work = slot?.queue.frame(record.lease.block.frameIndex)
    const contribution = work?.contributions.get(record.key)
    if (slot === undefined || contribution === undefined || contribution.state !== 'replicating') return
    contribution.replicasOut--
    // The identity that let it go may take it again later: it never returned a copy.
    contribution.computedBy.delete(record.participantId)
    if (contribution.replicasOut === 0 && !slot.replicas.includes(contribution)) {
      slot.replicas.push(contribution)
      this.emit('workQueued')
      this.offerWork()
    }
  }

  /** Queues a task again unless another copy of it is still out (a backup that may yet win). */
  private requeue(record: LeaseRecord): void {
    if (record.replica) {
      this.replicaLost(record)
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
