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
}

/**
 * A sink that only counts which units arrived, by each task's span, for the simulator: a round of
 * virtual participants has no pixels, but its exactly-once accounting is checked unit by unit all the
 * same, whatever the kind.
 */
export function ledgerSinks(): RoundSinkFactory<LedgerSummary> {
  return ({ kind, plan }) => {
    const lanes = new Map<number, Uint8Array>()
    let received = 0
    let doubleCounted = 0
    return {
      add(task) {
        const { lane, first, count } = kind.taskSpan(task)
        if (!(first >= 0 && count >= 1)) throw new BlockMismatchError(`task span ${first}+${count} is empty`)
        let counts = lanes.get(lane)
        if (counts === undefined || counts.length < first + count) {
          const grown = new Uint8Array(Math.max(first + count, 2 * (counts?.length ?? 0), 1024))
          if (counts !== undefined) grown.set(counts)
          counts = grown
          lanes.set(lane, counts)
        }
        for (let i = first; i < first + count; i++) {
          if (counts[i]! > 0) doubleCounted++
          else received++
          counts[i] = Math.min(255, counts[i]! + 1)
        }
        return 'added'
      },
      get complete() {
        return plan.inputsComplete && received === plan.totalUnits
      },
      finish: () => ({ frameIndex: plan.frameIndex, threads: plan.totalUnits, doubleCounted }),
    }
  }
}
