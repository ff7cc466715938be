import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type Catalogue,
  catalogueCategories,
  catalogueRegions,
  generateCatalogue,
} from '../../peer/pool/catalogue.ts'
import {
  extendRun,
  type MatchRule,
  partitionRun,
  selectsReference,
  selectsUgc,
  type Slice,
} from '../../peer/pool/partition.ts'

/*
 * Partitioning a match run (issue 15): every user video × reference pair the run's rules select lies
 * in exactly one slice, and no slice holds a pair they do not select, for the seed's example rules
 * and random ones, and after the run is extended; user videos of similar length share slices.
 */

const day = 86_400_000
const now = Date.UTC(2026, 10, 30)

/** Every pair the rules select, by brute force. */
function selected(catalogue: Catalogue, rules: readonly MatchRule[]): Set<string> {
  const pairs = new Set<string>()
  for (const video of catalogue.ugc)
    for (const rule of rules)
      if (selectsUgc(rule.ugc, video))
        for (const reference of catalogue.references)
          if (selectsReference(rule.references, reference, video)) pairs.add(`${video.id}|${reference.id}`)
  return pairs
}

/** Each pair of the slices, counted. */
function pairsOf(slices: readonly Slice[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const slice of slices)
    for (const u of slice.ugc)
      for (const r of slice.references) counts.set(`${u}|${r}`, (counts.get(`${u}|${r}`) ?? 0) + 1)
  return counts
}

function expectExactlyOnce(slices: readonly Slice[], expected: Set<string>): void {
  const counts = pairsOf(slices)
  expect([...counts.values()].every((n) => n === 1)).toBe(true)
  expect(counts.size).toBe(expected.size)
  for (const pair of expected) expect(counts.has(pair)).toBe(true)
}

const seedRules: MatchRule[] = [
  // UGC uploaded in the last 3 days × the references added today.
  { ugc: { uploadedFrom: now - 3 * day }, references: { addedFrom: now - day } },
  // High-view UGC under 60 minutes × all references.
  { ugc: { minViews: 1000, maxDuration: 3600 }, references: {} },
  // Music from region EU × references with rights in EU.
  { ugc: { categories: ['music'], regions: ['EU'] }, references: { rightsIn: ['EU'] } },
  // All UGC between two dates (an outage) × all references.
  { ugc: { uploadedFrom: now - 40 * day, uploadedTo: now - 38 * day }, references: {} },
  // Any UGC × references with rights in its own region.
  { ugc: { categories: ['film'] }, references: { rightsIn: 'ugc-region' } },
]

describe('partitioning a match run', () => {
  it("puts every pair the seed's example rules select in exactly one slice of about equal work", () => {
    const catalogue = generateCatalogue({ ugc: 3000, references: 300, seed: 7, now })
    const slices = partitionRun(catalogue, seedRules, { targetWork: 20, maxReferences: 100 })
    expectExactlyOnce(slices, selected(catalogue, seedRules))
    // About equal work: no slice over the target but by its one largest video.
    for (const slice of slices) {
      const longest = slice.longestUgc / 3600
      const referenceHours =
        slice.references
          .map((id) => catalogue.references.find((r) => r.id === id)!.duration)
          .reduce((a, b) => a + b, 0) / 3600
      expect(slice.work).toBeLessThanOrEqual(20 + longest * referenceHours + 1e-9)
    }
  })

  it('holds for random catalogues and rules', () => {
    const selector = fc.record(
      {
        uploadedFrom: fc.integer({ min: now - 90 * day, max: now }),
        minViews: fc.integer({ min: 0, max: 2000 }),
        maxDuration: fc.integer({ min: 30, max: 3600 }),
        categories: fc.subarray([...catalogueCategories], { minLength: 1 }),
        regions: fc.subarray([...catalogueRegions], { minLength: 1 }),
      },
      { requiredKeys: [] },
    )
    const references = fc.record(
      {
        addedFrom: fc.integer({ min: now - 90 * day, max: now }),
        rightsIn: fc.oneof(
          fc.constant('ugc-region' as const),
          fc.subarray([...catalogueRegions], { minLength: 1 }),
        ),
      },
      { requiredKeys: [] },
    )
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.record({ ugc: selector, references }), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (seed, rules, groupByLength) => {
          const catalogue = generateCatalogue({ ugc: 120, references: 40, seed, now })
          const slices = partitionRun(catalogue, rules, { targetWork: 2, maxReferences: 15, groupByLength })
          expectExactlyOnce(slices, selected(catalogue, rules))
        },
      ),
      { numRuns: 60 },
    )
  })

  it('extends a running run with new videos and references: the pairs of the grown catalogue, each once', () => {
    const before = generateCatalogue({ ugc: 800, references: 120, seed: 3, now })
    const more = generateCatalogue({ ugc: 900, references: 150, seed: 4, now })
    const added: Catalogue = {
      ugc: more.ugc.slice(800).map((v) => ({ ...v, id: `new-${v.id}` })),
      references: more.references.slice(120).map((r) => ({ ...r, id: `new-${r.id}` })),
    }
    const grown: Catalogue = {
      ugc: [...before.ugc, ...added.ugc],
      references: [...before.references, ...added.references],
    }
    const slices = [...partitionRun(before, seedRules), ...extendRun(before, added, seedRules)]
    expectExactlyOnce(slices, selected(grown, seedRules))
    expect(new Set(slices.map((s) => s.id)).size).toBe(slices.length)
  })

  it('groups user videos of similar length, so a slice waits on no single long video', () => {
    const catalogue = generateCatalogue({ ugc: 4000, references: 50, seed: 11, now })
    const rules: MatchRule[] = [{ ugc: {}, references: {} }]
    const spread = (slices: Slice[]) => {
      const byId = new Map(catalogue.ugc.map((v) => [v.id, v.duration]))
      // The median, over slices, of longest / mean length: how much one video dominates its slice.
      const ratios = slices
        .filter((s) => s.ugc.length > 1)
        .map((s) => {
          const lengths = s.ugc.map((id) => byId.get(id)!)
          return Math.max(...lengths) / (lengths.reduce((a, b) => a + b, 0) / lengths.length)
        })
        .sort((a, b) => a - b)
      return ratios[ratios.length >> 1]!
    }
    const grouped = partitionRun(catalogue, rules, { targetWork: 5, groupByLength: true })
    const mixed = partitionRun(catalogue, rules, { targetWork: 5, groupByLength: false })
    expect(spread(grouped)).toBeLessThan(1.5)
    expect(spread(mixed)).toBeGreaterThan(2)
  })

  it('generates heavy-tailed catalogues, the same for the same seed', () => {
    const a = generateCatalogue({ ugc: 20_000, references: 10, seed: 5, now })
    expect(generateCatalogue({ ugc: 20_000, references: 10, seed: 5, now })).toEqual(a)
    const durations = a.ugc.map((v) => v.duration).sort((x, y) => x - y)
    const median = durations[durations.length >> 1]!
    expect(median).toBeGreaterThan(120)
    expect(median).toBeLessThan(260)
    // Heavy tails: the longest hundredth is many times the median; views likewise.
    expect(durations[Math.floor(durations.length * 0.99)]!).toBeGreaterThan(8 * median)
    const views = a.ugc.map((v) => v.views).sort((x, y) => x - y)
    expect(views[Math.floor(views.length * 0.999)]!).toBeGreaterThan(
      100 * Math.max(1, views[views.length >> 1]!),
    )
  })
})
