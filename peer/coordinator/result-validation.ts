import type { EventEmitter } from 'node:events'
import type { TaskBase } from '../jobs/kind.ts'
import type { Clock } from '../protocol/clock.ts'
import type { ValidationPolicy } from '../protocol/defaults.ts'
import { QuarantinedError } from '../protocol/errors.ts'
import type { Logger } from '../protocol/logger.ts'
import type { CoordinatorEvents } from './coordinator-contract.ts'
import type { JobSlot } from './job-slots.ts'
import type { LeaseBook, LeaseRecord } from './lease-book.ts'
import type { ParticipantBook, ParticipantRecord } from './participant-book.ts'
import { TrustBook, type TrustRow } from './trust-book.ts'
import {
  type CheckOutcome,
  type Contribution,
  decide,
  emptyCounters,
  maxCopiesCompared,
  sampleUnits,
  type ValidationCounters,
  withRinger,
} from './validation.ts'
import type { RoundWork } from './work-queue.ts'

/** What result validation needs of the coordinator it serves. */
export interface ValidationHost<T> {
  readonly clock: Clock
  readonly log: Logger
  readonly leases: LeaseBook
  readonly participants: ParticipantBook
  readonly slots: ReadonlyMap<number, JobSlot<T>>
  /** Where its events go (`participantQuarantined`, `resultWithdrawn`, …): the coordinator. */
  readonly events: EventEmitter<CoordinatorEvents<T, TaskBase>>
  stopped(): boolean
  /** Queues a lease's task again (a caught liar's leases). */
  requeue(record: LeaseRecord): void
  /** Publishes a round if it is complete and nothing in it is still being validated. */
  settle(slot: JobSlot<T>, work: RoundWork): void
  offerWork(only?: ParticipantRecord): void
  /** A copy that did not count (a replica of a task no longer waiting for one). */
  wasted(slot: JobSlot<T>, participant: ParticipantRecord, record: LeaseRecord): void
  /** Units taken back out of the count (a withdrawn result). */
  uncount(units: number): void
  /** Whether the coordinator runs several jobs (speeds are then kept per kind). */
  multiJob(): boolean
}

/**
 * Result validation as the coordinator runs it (README, "Trust"): every counted result of a job with a
 * validator is checked, replicated or taken on trust as the policy decides for its identity
 * (`decide`); a check that refutes one quarantines its identity and withdraws what it gave to open
 * rounds; a round is published only once nothing in it is being validated. The coordinator calls in
 * at each result, lease request and lost replica; the bookkeeping is in `validation.ts`, reputation in
 * `trust-book.ts`.
 */
export class ResultValidation<T> {
  private readonly host: ValidationHost<T>
  private readonly policy: ValidationPolicy
  private readonly trust: TrustBook
  private readonly random: () => number
  private readonly counters: ValidationCounters = emptyCounters()
  /** Counted results of validated jobs in open rounds, by the identity they came from (or were vouched by). */
  private readonly contributionsOf = new Map<string, Set<Contribution>>()
  /** Whether a trusted identity is present, by kind tag, and when that was worked out (`trustedPresent`). */
  private readonly trustedHere = new Map<string, { at: number; present: boolean }>()

  constructor(host: ValidationHost<T>, policy: ValidationPolicy, random: () => number) {
    this.host = host
    this.policy = policy
    this.trust = new TrustBook(policy)
    this.random = random
  }

  /** The policy's mode is not `off`. */
  get on(): boolean {
    return this.policy.mode !== 'off'
  }

  /** Validation's figures and every identity's trust. */
  statistics(): { validation: ValidationCounters; trust: TrustRow[] } {
    return { validation: { ...this.counters }, trust: this.trust.rows() }
  }

  /**
   * A round ended (published or dropped): its results are no longer open to withdrawal. Returns the
   * identities answerable for its outcome (`FrameReport.answerable`): every one whose result, or
   * agreeing copy, stands in it without a check that covered it whole.
   */
  roundEnded(slot: JobSlot<T>, work: RoundWork): string[] {
    if (work.contributions.size === 0) return []
    const answerable = new Set<string>()
    for (const contribution of work.contributions.values()) {
      this.forget(contribution)
      if (contribution.state === 'verified' && contribution.checkedWhole) continue
      answerable.add(contribution.participantId)
      for (const voucher of contribution.vouchedBy) answerable.add(voucher)
    }
    slot.replicas = slot.replicas.filter((c) => c.frameIndex !== work.index)
    return [...answerable].sort()
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
  validate(
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
      uncheckable: false,
    }
    work.contributions.set(record.key, contribution)
    this.remember(contribution)
    const decision = withRinger(
      decide(this.policy, this.trust.of(participantId), validator, this.random),
      () =>
        validator.findings?.(record.lease.block, result) === true && this.random() < this.policy.ringerShare,
      validator,
    )
    if ('replicate' in decision) this.replicate(slot, work, contribution)
    else if ('check' in decision) {
      contribution.state = 'checking'
      work.pending++
      const units = sampleUnits(record.units, decision.check, this.random)
      this.check(slot, contribution, units, (outcome) => {
        if (outcome.ok === true) contribution.checkedWhole = units.length === record.units
        if (
          outcome.ok === true &&
          decision.thenReplicate === true &&
          contribution.state === 'checking' &&
          this.current(slot, work, contribution) &&
          this.someoneToReplicate(slot, contribution)
        ) {
          // Checked where it could be; a replica looks at the rest (a hidden match). Alone, the
          // check is all there is.
          this.replicate(slot, work, contribution)
          return
        }
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
      this.host.slots.get(slot.id) === slot &&
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
    if (this.host.stopped() || !this.current(slot, work, contribution) || contribution.state !== 'checking')
      return
    if (outcome.ok === true) {
      contribution.state = 'verified'
      work.pending--
      this.trust.passed(this.trust.of(contribution.participantId))
      this.host.settle(slot, work)
    } else if (outcome.ok === false) {
      this.convict(contribution.participantId, `task ${contribution.key}: ${outcome.reason}`)
    } else {
      this.host.log(`task ${contribution.key} could not be checked (${outcome.reason}): replicated instead`)
      contribution.uncheckable = true
      this.replicate(slot, work, contribution)
    }
  }

  /** Queues a contribution for a replica on another identity; its round waits for the comparison. */
  private replicate(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    if (contribution.state !== 'replicating') {
      // A result being checked already holds its round.
      if (contribution.state !== 'checking') work.pending++
      contribution.state = 'replicating'
      if (contribution.replicasOut === 0 && !this.someoneToReplicate(slot, contribution)) {
        this.noReplica(slot, work, contribution)
        return
      }
      this.awaitReplica(slot, work, contribution)
    }
    slot.replicas.push(contribution)
    this.host.events.emit('workQueued')
    this.host.offerWork()
  }

  /** Whether another identity here and at work (asked within `replicaPatienceMs`) could replicate it. */
  private someoneToReplicate(slot: JobSlot<T>, contribution: Contribution): boolean {
    const now = this.host.clock.now()
    for (const p of this.host.participants.present())
      if (
        !contribution.computedBy.has(p.id) &&
        now - p.lastAskedAt < this.policy.replicaPatienceMs &&
        !this.trust.quarantined(p.id) &&
        this.host.participants.runs(p, slot.tag)
      )
        return true
    return false
  }

  /**
   * Every `replicaPatienceMs` while a contribution waits for a replica: once nobody else could compute
   * one, it is settled without (`noReplica`) rather than holding its round.
   */
  private awaitReplica(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    this.host.clock.setTimer(() => {
      if (
        this.host.stopped() ||
        !this.current(slot, work, contribution) ||
        contribution.state !== 'replicating'
      )
        return
      if (contribution.replicasOut > 0 || this.someoneToReplicate(slot, contribution))
        this.awaitReplica(slot, work, contribution)
      else this.noReplica(slot, work, contribution)
    }, this.policy.replicaPatienceMs)
  }

  /**
   * Nobody here could replicate a contribution (an event of one participant, trusting nobody): the
   * coordinator checks it itself if it can, or else takes it unverified and says so
   * (`resultUnverified`).
   */
  private noReplica(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    slot.replicas = slot.replicas.filter((c) => c !== contribution)
    if (slot.validator?.checker !== undefined && !contribution.uncheckable) {
      contribution.state = 'checking'
      const units = sampleUnits(
        contribution.units,
        slot.validator.fullCheckUnits ?? this.policy.sampleUnits,
        this.random,
      )
      this.check(slot, contribution, units, (outcome) => {
        if (outcome.ok === true) contribution.checkedWhole = units.length === contribution.units
        this.checked(slot, work, contribution, outcome)
      })
      return
    }
    this.host.log(`task ${contribution.key}: no other participant to replicate it; taken unverified`)
    this.counters.unverifiedAccepted++
    contribution.state = 'accepted'
    work.pending--
    this.host.events.emit('resultUnverified', {
      participantId: contribution.participantId,
      jobId: slot.spec.jobId,
      frameIndex: work.index,
      task: contribution.task,
    })
    this.host.settle(slot, work)
  }

  /**
   * The oldest replica this participant may compute: of a task it has not computed, given by an
   * identity of another join link (two identities of one link may be one person).
   */
  replicaFor(slot: JobSlot<T>, participant: ParticipantRecord): Contribution | undefined {
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
  replicaReturned(
    slot: JobSlot<T>,
    work: RoundWork,
    record: LeaseRecord,
    participant: ParticipantRecord,
    result: unknown,
  ): void {
    const now = this.host.clock.now()
    // A replica that comes back after its lease expired was already given up (`replicaLost`).
    const outstanding = record.state === 'active'
    this.host.leases.close(record, 'settled')
    this.counters.replicaUnits += record.units
    this.host.participants.observe(
      participant,
      record.units * slot.cost.relativeCost,
      now - Math.max(record.grantedAt, participant.lastResultAt),
      now,
      this.host.multiJob() ? { tag: slot.tag, units: record.units } : undefined,
    )
    const contribution = work.contributions.get(record.key)
    if (contribution === undefined || contribution.state !== 'replicating') {
      this.host.wasted(slot, participant, record)
      this.host.offerWork(participant)
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
    this.host.offerWork(participant)
  }

  /**
   * Whether a trusted identity that runs `tag` is here and working: present, and asked for work within
   * `replicaPatienceMs` (a paused one stays present). Recomputed at most once a second: it is read on
   * lease requests. Until one is, two untrusted identities agreeing is all there is.
   */
  private trustedPresent(tag: string): boolean {
    const now = this.host.clock.now()
    const cached = this.trustedHere.get(tag)
    if (cached !== undefined && now - cached.at < 1000) return cached.present
    let present = false
    for (const p of this.host.participants.present())
      if (
        this.host.participants.runs(p, tag) &&
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
    this.host.settle(slot, work)
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
    if (this.host.stopped()) return
    if (copy.ok === false) this.convict(replicaId, `replica of task ${contribution.key}: ${copy.reason}`)
    if (original.ok === false)
      this.convict(contribution.participantId, `task ${contribution.key}: ${original.reason}`)
    if (!this.current(slot, work, contribution) || contribution.state !== 'replicating') return
    // Trusting nobody, a result stands on another identity's agreeing copy or on a check of it whole.
    // Beating a refuted copy proves only the units the two disagreed on: two liars can agree on the
    // rest (one that flips a unit's top bit and one that adds 128 to every unit), so it is copied again.
    const unproven = !agreed && copy.ok === false && this.policy.mode === 'replicate-all'
    if (original.ok === true && agreed && copy.ok === true) this.vouched(slot, work, contribution, replicaId)
    else if (original.ok === true && !unproven) {
      contribution.state = 'verified'
      if (slot.replicas.includes(contribution))
        slot.replicas = slot.replicas.filter((c) => c !== contribution)
      work.pending--
      if (copy.ok !== false) this.trust.disputed(this.trust.of(replicaId))
      this.trust.passed(this.trust.of(contribution.participantId))
      this.host.settle(slot, work)
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
      this.host.log(`task ${contribution.key}: ${maxCopiesCompared} copies and no quorum; computed afresh`)
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
    this.trust.refuted(record, reason, this.host.clock.now())
    this.counters.quarantined++
    this.host.log(`participant ${participantId} quarantined: ${reason}`)
    let withdrawn = 0
    for (const contribution of [...(this.contributionsOf.get(participantId) ?? [])]) {
      const slot = this.host.slots.get(contribution.slot)
      const work = slot?.queue.frame(contribution.frameIndex)
      if (slot === undefined || work === undefined || !this.current(slot, work, contribution)) continue
      if (contribution.state === 'verified' && contribution.checkedWhole) continue
      this.withdraw(slot, work, contribution)
      withdrawn++
    }
    this.contributionsOf.delete(participantId)
    for (const lease of this.host.leases.activeOf(participantId)) {
      this.host.leases.close(lease, 'abandoned')
      this.host.events.emit('leaseCancelled', { participantId, leaseId: lease.lease.leaseId })
      this.host.requeue(lease)
    }
    this.host.events.emit('participantQuarantined', { participantId, reason, withdrawn })
  }

  /** Takes a counted result back out of its open round and queues its task again. */
  private withdraw(slot: JobSlot<T>, work: RoundWork, contribution: Contribution): void {
    const { key, task, units } = contribution
    work.contributions.delete(key)
    this.forget(contribution)
    if (contribution.state === 'checking' || contribution.state === 'replicating') work.pending--
    slot.replicas = slot.replicas.filter((c) => c !== contribution)
    for (const copy of this.host.leases.activeOn(key)) {
      this.host.leases.close(copy, 'cancelled')
      this.host.events.emit('leaseCancelled', {
        participantId: copy.participantId,
        leaseId: copy.lease.leaseId,
      })
    }
    slot.roundSinks.get(work.index)?.withdraw(task)
    work.done.delete(key)
    work.threadsDone -= units
    this.host.uncount(units)
    this.counters.resultsWithdrawn++
    this.counters.unitsWithdrawn += units
    slot.queue.requeue(task, key, units)
    this.host.events.emit('resultWithdrawn', {
      participantId: contribution.participantId,
      jobId: slot.spec.jobId,
      frameIndex: work.index,
      units,
    })
    this.host.events.emit('workQueued')
    this.host.offerWork()
  }

  /** A replica lease expired, failed or was given back: its task waits for another replica. */
  replicaLost(record: LeaseRecord): void {
    const slot = this.host.slots.get(record.job)
    const work = slot?.queue.frame(record.lease.block.frameIndex)
    const contribution = work?.contributions.get(record.key)
    if (slot === undefined || contribution === undefined || contribution.state !== 'replicating') return
    contribution.replicasOut--
    // The identity that let it go may take it again later: it never returned a copy.
    contribution.computedBy.delete(record.participantId)
    if (contribution.replicasOut === 0 && !slot.replicas.includes(contribution)) {
      slot.replicas.push(contribution)
      this.host.events.emit('workQueued')
      this.host.offerWork()
    }
  }
}
