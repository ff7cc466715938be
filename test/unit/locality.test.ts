import { describe, expect, it } from 'vitest'
import { runLocalityBench } from '../../scripts/bench/locality.ts'

/*
 * The simulated match run behind `locality.*` (issue 15), small: the same slices leased through the
 * real pool with locality-aware grants copy several times fewer bytes than without, every slice is
 * done in each way, and the run is not slower.
 */

describe('locality-aware grants with snapshot caches', () => {
  it('copy far fewer bytes than grants in queue order, and finish no later', async () => {
    const bench = await runLocalityBench({ participants: 40, ugc: 4000, references: 6000, seed: 3 })
    expect(bench.withLocality.tasksDone).toBe(bench.slices)
    expect(bench.without.tasksDone).toBe(bench.slices)
    expect(bench.withLocality.referenceHits).toBeGreaterThan(0.9)
    expect(bench.without.referenceHits).toBeLessThan(0.7)
    expect(bench.bytesSavedRatio).toBeGreaterThan(3)
    expect(bench.withLocality.seconds).toBeLessThanOrEqual(bench.without.seconds)
  })
})
