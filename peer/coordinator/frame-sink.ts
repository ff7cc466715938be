import type { AnyJobKind, JobSpec, RoundPlan, RoundSink, TaskBase } from '../jobs/kind.ts'
import { BlockMismatchError } from '../protocol/errors.ts'

/** What a round's sink is made for. */
export interface RoundSinkInit {
  job: JobSpec
  kind: AnyJobKind
  plan: RoundPlan<TaskBase>
  level: number
}

/** Makes the sink of each round of a job. */
export type RoundSinkFactory<T> = (init: RoundSinkInit) => RoundSink<TaskBase, unknown, T>

/** The real sinks: the kind's own (`JobKind.openSink`: its reduction and decision). */
export function kindSinks<T>(): RoundSinkFactory<T> {
  return (init) => init.kind.openSink(init.job, init.plan, init.level) as RoundSink<TaskBase, unknown, T>
}

/** What a ledger reports when its round completes. */
export interface LedgerSummary {
  frameIndex: number
  threads: number
  /** Units counted more than once: must be 0 (the simulator reports it). */
  doubleCounted: number
  /** Units whose counted result is wrong (`LedgerInit.wrong`; 0 without it). */
  wrongUnits: number
  /** Items (one unit offset across every lane: one point of a round seen in each lane) with any wrong unit. */
  wrongItems: number
  /** Items of the round (offsets present in any lane). */
  items: number
  /**
   * A sparse kind's (`LedgerInit.truth`): units where the truth reports something (true matches),
   * those of them a counted result hid, and units where a counted result reports what is not there.
   */
  trueUnits: number
  missingUnits: number
  inventedUnits: number
}

/** What a ledger may know of results beyond their spans (the simulator's adversaries). */
export interface LedgerInit {
  /** Whether unit `unit` (offset in the task's span) of `result` is wrong; absent: none is. */
  wrong?: (result: unknown) => ((unit: number) => boolean) | undefined
  /** A sparse kind's truth: whether unit `unit` of `task` has something to report; absent: dense. */
  truth?: (task: TaskBase) => ((unit: number) => boolean) | undefined
}

/**
 * A sink that only counts which units arrived, by each task's span, for the simulator: a round of
 * virtual participants has no pixels, but its exactly-once accounting is checked unit by unit all the
 * same, whatever the kind; and, where results can be wrong, which counted units are.
 */
export function ledgerSinks(init: LedgerInit = {}): RoundSinkFactory<LedgerSummary> {
  return ({ kind, plan }) => {
    const lanes = new Map<number, { counts: Uint8Array; wrong: Uint8Array }>()
    let received = 0
    let doubleCounted = 0
    let wrongUnits = 0
    // A sparse kind's figures, per counted task (a withdrawn one takes its own back).
    const sparse = new Map<string, { trueUnits: number; missingUnits: number; inventedUnits: number }>()
    const spanKey = (lane: number, first: number) => `${lane}:${first}`
    const laneOf = (lane: number, end: number) => {
      let entry = lanes.get(lane)
      if (entry === undefined || entry.counts.length < end) {
        const size = Math.max(end, 2 * (entry?.counts.length ?? 0), 1024)
        const grown = { counts: new Uint8Array(size), wrong: new Uint8Array(size) }
        if (entry !== undefined) {
          grown.counts.set(entry.counts)
          grown.wrong.set(entry.wrong)
        }
        entry = grown
        lanes.set(lane, entry)
      }
      return entry
    }
    return {
      add(task, result) {
        const { lane, first, count } = kind.taskSpan(task)
        if (!(first >= 0 && count >= 1)) throw new BlockMismatchError(`task span ${first}+${count} is empty`)
        const { counts, wrong } = laneOf(lane, first + count)
        const wrongAt = init.wrong?.(result)
        const truthAt = init.truth?.(task)
        if (truthAt !== undefined) {
          const figures = { trueUnits: 0, missingUnits: 0, inventedUnits: 0 }
          for (let unit = 0; unit < count; unit++) {
            const truth = truthAt(unit)
            if (truth) figures.trueUnits++
            if (wrongAt?.(unit) === true) figures[truth ? 'missingUnits' : 'inventedUnits']++
          }
          sparse.set(spanKey(lane, first), figures)
        }
        for (let i = first; i < first + count; i++) {
          if (counts[i]! > 0) doubleCounted++
          else received++
          counts[i] = Math.min(255, counts[i]! + 1)
          if (wrongAt?.(i - first) === true && wrong[i] === 0) {
            wrong[i] = 1
            wrongUnits++
          }
        }
        return 'added'
      },
      withdraw(task) {
        const { lane, first, count } = kind.taskSpan(task)
        const entry = lanes.get(lane)
        if (entry === undefined || entry.counts.length < first + count) return
        const { counts, wrong } = entry
        for (let i = first; i < first + count; i++) if (counts[i] === 0) return
        sparse.delete(spanKey(lane, first))
        for (let i = first; i < first + count; i++) {
          if (--counts[i]! === 0) received--
          wrongUnits -= wrong[i]!
          wrong[i] = 0
        }
      },
      get complete() {
        return plan.inputsComplete && received === plan.totalUnits
      },
      finish() {
        let length = 0
        for (const { counts } of lanes.values()) length = Math.max(length, counts.length)
        const present = new Uint8Array(length)
        const bad = new Uint8Array(length)
        for (const { counts, wrong } of lanes.values())
          for (let i = 0; i < counts.length; i++) {
            if (counts[i]! > 0) present[i] = 1
            if (wrong[i]! > 0) bad[i] = 1
          }
        let items = 0
        let wrongItems = 0
        for (let i = 0; i < length; i++) {
          items += present[i]!
          wrongItems += bad[i]!
        }
        const sum = (field: 'trueUnits' | 'missingUnits' | 'inventedUnits') =>
          [...sparse.values()].reduce((a, f) => a + f[field], 0)
        return {
          frameIndex: plan.frameIndex,
          threads: plan.totalUnits,
          doubleCounted,
          wrongUnits,
          wrongItems,
          items,
          trueUnits: sum('trueUnits'),
          missingUnits: sum('missingUnits'),
          inventedUnits: sum('inventedUnits'),
        }
      },
    }
  }
}
