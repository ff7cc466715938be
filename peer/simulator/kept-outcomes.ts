import type { LedgerSummary } from '../coordinator/frame-sink.ts'
import type { JobRun } from './simulated-jobs.ts'

/*
 * Published rounds of jobs whose outcomes are kept (`JobRun.kept`: a match run's results store), for
 * the simulator: each with the identities answerable for it (`FrameReport.answerable`). Once one of
 * them is caught, its rounds are taken back, to be computed again, as a match run's pool reopens its
 * slices. A show's frame, shown and gone, is not kept.
 */

/** A kept round: its job, what its ledger counted, and who answers for it. */
export interface KeptRound {
  readonly run: JobRun
  readonly summary: LedgerSummary
  readonly answerable: readonly string[]
}

export class KeptOutcomes {
  private readonly rounds = new Map<string, KeptRound>()
  private readonly byIdentity = new Map<string, Set<string>>()

  /** Keeps a published round of a batch job that some identity answers for. */
  keep(jobId: string, frameIndex: number, round: KeptRound): void {
    if (!round.run.kept || round.answerable.length === 0) return
    const key = `${jobId}#${frameIndex}`
    this.rounds.set(key, round)
    for (const id of round.answerable) {
      let keys = this.byIdentity.get(id)
      if (keys === undefined) this.byIdentity.set(id, (keys = new Set()))
      keys.add(key)
    }
  }

  /** `identity` was caught: the rounds it answered for, no longer kept. */
  takeBack(identity: string): KeptRound[] {
    const keys = this.byIdentity.get(identity)
    this.byIdentity.delete(identity)
    const taken: KeptRound[] = []
    for (const key of keys ?? []) {
      const round = this.rounds.get(key)
      if (round === undefined) continue
      this.rounds.delete(key)
      for (const id of round.answerable) this.byIdentity.get(id)?.delete(key)
      taken.push(round)
    }
    return taken
  }
}
