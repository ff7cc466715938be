import type { RoundSink, TaskBase } from '../jobs/kind.ts'
import type { Logger } from '../protocol/logger.ts'
import type { JobSlot } from './job-slots.ts'
import type { RoundWork } from './work-queue.ts'

/** What deciding rounds needs of the coordinator. */
export interface DecisionHooks<T> {
  log: Logger
  stopped: () => boolean
  /** Most rounds of a batch job deciding or waiting (`SchedulingOptions.maxDecidingRounds`). */
  maxDecidingRounds: number
  // Methods, not function-typed fields: a coordinator of outcomes T stays assignable to one of unknown.
  /** Ends a round's tasks (leases, timer, queue place, sink, validation): who answers for its results. */
  endRound(slot: JobSlot<T>, work: RoundWork): string[]
  /** Reports a decided round (`frameComplete`). */
  decided(slot: JobSlot<T>, work: RoundWork, outcome: T, answerable: string[]): void
  /** Reports a round dropped for `reason` (`frameDropped`). */
  dropped(slot: JobSlot<T>, work: RoundWork, answerable: string[], reason: string): void
}

/**
 * How complete rounds become outcomes. A round's sink decides it (`RoundSink.finish`): at once, or
 * off the event loop, as a promise. A job's rounds are decided one at a time, in round order; a
 * round that completes while another is decided waits with its tasks ended, so the crowd moves on.
 * A live job keeps only its newest round waiting (a live show wants its newest frame next, not a
 * backlog); a batch job keeps up to `maxDecidingRounds` deciding and waiting and drops the next.
 * A decision that throws or rejects drops its round with the reason, never losing it silently.
 */
export class RoundDecisions<T> {
  private readonly hooks: DecisionHooks<T>

  constructor(hooks: DecisionHooks<T>) {
    this.hooks = hooks
  }

  /** A round of `slot` has every task counted: decide it now, or when its turn comes. */
  complete(slot: JobSlot<T>, work: RoundWork, sink: RoundSink<TaskBase, unknown, T>): void {
    if (slot.deciding === 0) {
      this.decide(slot, work, sink)
      return
    }
    const answerable = this.hooks.endRound(slot, work)
    if (slot.class === 'live') {
      for (const older of slot.waiting.splice(0))
        this.drop(
          slot,
          older.work,
          older.answerable,
          `superseded by round ${work.index} while an earlier round was decided`,
        )
    } else if (1 + slot.waiting.length >= this.hooks.maxDecidingRounds) {
      this.drop(slot, work, answerable, `${1 + slot.waiting.length} earlier rounds are still being decided`)
      return
    }
    slot.waiting.push({ work, sink, answerable })
  }

  /**
   * Decides a round. The outcome is decided before the round's tasks end, so a decision that throws
   * is reported with the round. `answerable` is given for a round whose tasks ended while it waited.
   */
  private decide(
    slot: JobSlot<T>,
    work: RoundWork,
    sink: RoundSink<TaskBase, unknown, T>,
    answerable?: string[],
  ): void {
    let outcome: T | Promise<T>
    try {
      outcome = sink.finish()
    } catch (error) {
      this.undecided(slot, work, answerable ?? this.hooks.endRound(slot, work), error)
      return
    }
    const ended = answerable ?? this.hooks.endRound(slot, work)
    if (!(outcome instanceof Promise)) {
      this.hooks.decided(slot, work, outcome, ended)
      return
    }
    slot.deciding++
    void outcome
      .then(
        (decided) => ({ decided }),
        (error: unknown) => ({ error }),
      )
      .then((result) => {
        slot.deciding--
        if (this.hooks.stopped()) return
        this.guarded(slot, work, () => {
          if ('error' in result) this.undecided(slot, work, ended, result.error)
          else this.hooks.decided(slot, work, result.decided, ended)
        })
        const next = slot.waiting.shift()
        if (next !== undefined)
          this.guarded(slot, next.work, () => this.decide(slot, next.work, next.sink, next.answerable))
      })
  }

  /** A listener that throws after a decision settled has no caller to tell: logged, and rounds go on. */
  private guarded(slot: JobSlot<T>, work: RoundWork, act: () => void): void {
    try {
      act()
    } catch (error) {
      this.hooks.log.error(`round ${work.index} of job ${slot.spec.jobId}: ${(error as Error).message}`)
    }
  }

  private undecided(slot: JobSlot<T>, work: RoundWork, answerable: string[], error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error)
    this.hooks.log.error(
      `round ${work.index} of job ${slot.spec.jobId}: its outcome could not be decided: ${reason}`,
    )
    this.hooks.dropped(slot, work, answerable, reason)
  }

  private drop(slot: JobSlot<T>, work: RoundWork, answerable: string[], reason: string): void {
    this.hooks.log(`round ${work.index} of job ${slot.spec.jobId} dropped: ${reason}`)
    this.hooks.dropped(slot, work, answerable, reason)
  }
}
