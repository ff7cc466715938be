import type { RoundPlan, TaskBase } from '../jobs/kind.ts'
import type { Contribution } from './validation.ts'

/** The work of one round of a job (a frame index): its plan cuts new tasks; tasks to redo wait here. */
export interface RoundWork {
  /** The round's index within its job (a show's frame index). */
  readonly index: number
  /** The round's id across the coordinator's jobs: what leases of the round are indexed by. */
  readonly round: number
  /** Level: 0 is the job's full size, higher is coarser (a live round downgraded to keep its budget). */
  readonly level: number
  readonly plan: RoundPlan<TaskBase>
  /** When its last input arrived (coordinator clock, ms): latency counts from here. */
  arrivedAt: number
  /** Tasks whose lease expired or failed, waiting to be granted again (never split: a task keeps its identity). */
  readonly requeued: TaskBase[]
  /** Their keys and units, in the same order. */
  readonly requeuedKeys: string[]
  readonly requeuedSizes: number[]
  requeuedUnits: number
  /** Units cut into tasks so far: each is counted, queued to redo, or under a lease (the audit). */
  unitsCut: number
  /** Keys of tasks whose result counted. */
  readonly done: Set<string>
  threadsDone: number
  reassignments: number
  /** Failures participants reported, by task key (a task that fails everywhere ends its round). */
  readonly failures: Map<string, number>
  /** Counted results of validated jobs, by key, while the round is open (see `validation.ts`). */
  readonly contributions: Map<string, Contribution>
  /** Those still being checked or replicated: the round is not published while any is. */
  pending: number
}

/**
 * One job's queue of work, in priority order: earlier rounds first; within a round, tasks to redo
 * before new ones. A task to redo of round i therefore goes ahead of every task of a later round.
 * New tasks are cut on demand at the size the scheduler asks for, so each participant's task fits
 * its speed.
 */
export class WorkQueue {
  private readonly rounds = new Map<number, RoundWork>()
  /** Round indices in priority order (ascending). */
  private readonly order: number[] = []
  /** Added to a round's index to make its id across jobs. */
  private readonly roundBase: number

  constructor(roundBase = 0) {
    this.roundBase = roundBase
  }

  /** A round's id across the coordinator's jobs (what its leases are indexed by). */
  roundOf(index: number): number {
    return this.roundBase + index
  }

  /** The work of a round index, if open. */
  frame(index: number): RoundWork | undefined {
    return this.rounds.get(index)
  }

  /** Open rounds in priority order. */
  *inOrder(): Iterable<RoundWork> {
    for (const index of this.order) yield this.rounds.get(index)!
  }

  /** Opens a round with its plan (the caller has added its first input). */
  open(index: number, plan: RoundPlan<TaskBase>, level: number, now: number): RoundWork {
    const work: RoundWork = {
      index,
      round: this.roundOf(index),
      level,
      plan,
      arrivedAt: now,
      requeued: [],
      requeuedKeys: [],
      requeuedSizes: [],
      requeuedUnits: 0,
      unitsCut: 0,
      done: new Set(),
      threadsDone: 0,
      reassignments: 0,
      failures: new Map(),
      contributions: new Map(),
      pending: 0,
    }
    this.rounds.set(index, work)
    let at = this.order.length
    while (at > 0 && this.order[at - 1]! > index) at--
    this.order.splice(at, 0, index)
    return work
  }

  /** The next task in priority order, cut to at most `units` when new. */
  next(units: number): TaskBase | undefined {
    for (const index of this.order) {
      const work = this.rounds.get(index)!
      const redo = work.requeued.shift()
      if (redo !== undefined) {
        work.requeuedKeys.shift()
        work.requeuedUnits -= work.requeuedSizes.shift()!
        return redo
      }
      if (work.plan.unitsLeft() === 0) continue
      const before = work.plan.unitsLeft()
      const task = work.plan.cut(units)
      if (task !== undefined) {
        work.unitsCut += before - work.plan.unitsLeft()
        return task
      }
    }
    return undefined
  }

  /**
   * Puts a task back to be granted again, ahead of new tasks of its round and of all later rounds.
   * `key` and `units` are its lease's (worked out once, at grant).
   */
  requeue(task: TaskBase, key: string, units: number): void {
    const work = this.rounds.get(task.frameIndex)
    if (work === undefined || work.done.has(key)) return
    if (work.requeuedKeys.includes(key)) return
    work.requeued.push(task)
    work.requeuedKeys.push(key)
    work.requeuedSizes.push(units)
    work.requeuedUnits += units
    work.reassignments++
  }

  /** Withdraws a task from the redo list (its result arrived late after all). */
  withdraw(task: TaskBase, key: string): void {
    const work = this.rounds.get(task.frameIndex)
    if (work === undefined || work.requeued.length === 0) return
    const at = work.requeuedKeys.indexOf(key)
    if (at < 0) return
    work.requeued.splice(at, 1)
    work.requeuedKeys.splice(at, 1)
    work.requeuedUnits -= work.requeuedSizes.splice(at, 1)[0]!
  }

  /** Units waiting to be granted (new and to redo), over every open round. */
  get queuedUnits(): number {
    let total = 0
    for (const work of this.rounds.values()) total += work.requeuedUnits + work.plan.unitsLeft()
    return total
  }

  /** Units of one round still waiting to be granted (new and to redo). */
  queuedIn(work: RoundWork): number {
    return work.requeuedUnits + work.plan.unitsLeft()
  }

  /** The first round with a task waiting to be granted: the one the next lease must come from. */
  firstWithWork(): number | undefined {
    for (const index of this.order) {
      const work = this.rounds.get(index)!
      if (work.requeuedUnits > 0 || work.plan.unitsLeft() > 0) return index
    }
    return undefined
  }

  /** Forgets a round (complete or dropped). */
  remove(index: number): void {
    if (!this.rounds.delete(index)) return
    this.order.splice(this.order.indexOf(index), 1)
  }

  /** Number of rounds with work or outstanding leases. */
  get size(): number {
    return this.rounds.size
  }
}
