import { type MatchRunSimulation, simulateMatchRun } from '../../peer/simulator/match-run.ts'

/*
 * What snapshot caches save (issue 15's `locality.*` figures): one simulated match run
 * (`peer/simulator/match-run.ts`: the same catalogue, slices and crowd, leased through the real task
 * pool in virtual time) with locality-aware grants and without, each participant keeping 2 snapshot
 * folders; also the tail (95 % to 100 % of slices done) with and without length grouping, and the
 * locality run again with churn and snapshot folders from each participant's disk.
 */

export interface LocalityBench {
  participants: number
  ugc: number
  references: number
  slices: number
  withLocality: MatchRunSimulation
  without: MatchRunSimulation
  /** Locality on, user videos not grouped by length. */
  ungrouped: MatchRunSimulation
  /** Locality on, 0.5 % of the crowd leaving (and replaced) a minute, folders from disk. */
  churn: MatchRunSimulation
  bytesSavedRatio: number
}

export async function runLocalityBench(init: {
  participants?: number
  ugc?: number
  references?: number
  folders?: number
  seed?: number
  onProgress?: (done: number, total: number) => void
}): Promise<LocalityBench> {
  const base = {
    participants: init.participants ?? 1000,
    ugc: init.ugc ?? 100_000,
    references: init.references ?? 10_000,
    seed: init.seed ?? 1,
  }
  const folders = init.folders ?? 2
  const ways = {
    withLocality: { ...base, folders },
    without: { ...base, folders, locality: false },
    ungrouped: { ...base, folders, groupByLength: false },
    churn: { ...base, churnPerMinute: 0.005 },
  }
  const out: Partial<Record<keyof typeof ways, MatchRunSimulation>> = {}
  let step = 0
  for (const [name, way] of Object.entries(ways) as [keyof typeof ways, (typeof ways)[keyof typeof ways]][]) {
    out[name] = simulateMatchRun(way)
    init.onProgress?.(++step, Object.keys(ways).length)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const result = out as Record<keyof typeof ways, MatchRunSimulation>
  return {
    ...result,
    participants: base.participants,
    ugc: base.ugc,
    references: base.references,
    slices: result.withLocality.slices,
    bytesSavedRatio: Math.round((result.without.bytesCopied / result.withLocality.bytesCopied) * 10) / 10,
  }
}
