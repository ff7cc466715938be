/*
 * The catalogue of a match service (issue 15): user videos with the seed's parameters (duration,
 * views, watch time, upload time, category, region, owner) and reference videos (owner, the regions
 * their rights cover, when they were added). Runs select from it by rules (`partition.ts`). The
 * generator makes large, realistic ones for scale work: durations and views heavy-tailed, as real
 * uploads are.
 */

/** A user upload. */
export interface UgcVideo {
  id: string
  /** Seconds. */
  duration: number
  views: number
  /** Seconds watched in all. */
  watchSeconds: number
  /** Upload time, ms since the epoch. */
  uploadedAt: number
  category: string
  region: string
  owner: string
}

/** A reference video. */
export interface ReferenceVideo {
  id: string
  duration: number
  owner: string
  /** Regions its rights cover. */
  rightsRegions: readonly string[]
  /** When it was added, ms since the epoch. */
  addedAt: number
}

/** The videos a run may select. */
export interface Catalogue {
  ugc: readonly UgcVideo[]
  references: readonly ReferenceVideo[]
}

export const catalogueCategories = [
  'music',
  'sports',
  'gaming',
  'news',
  'education',
  'comedy',
  'film',
  'travel',
] as const
export const catalogueRegions = ['EU', 'US', 'BR', 'IN', 'JP', 'NG', 'AU'] as const

/** mulberry32: a small seeded generator (the same catalogue for the same seed). */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Options of a generated catalogue. */
export interface CatalogueInit {
  ugc: number
  references: number
  seed?: number
  /** The latest upload, ms (default 2026-11-30). */
  now?: number
  /** Days of uploads and references before `now` (default 90). */
  days?: number
}

/**
 * A catalogue with heavy tails: durations log-normal (median about 3 minutes for uploads, 4 for
 * references, cut to 1 s–3 h), views Pareto (most videos few, a few millions), uploads spread over
 * `days`, references with rights in one to three regions.
 */
export function generateCatalogue(init: CatalogueInit): Catalogue {
  const next = random(init.seed ?? 1)
  const now = init.now ?? Date.UTC(2026, 10, 30)
  const span = (init.days ?? 90) * 86_400_000
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next())
  const duration = (median: number) =>
    Math.min(10_800, Math.max(1, Math.round(median * Math.exp(1.1 * normal()))))
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!
  const ugc: UgcVideo[] = []
  for (let i = 0; i < init.ugc; i++) {
    const length = duration(180)
    const views = Math.floor(10 / Math.pow(1 - next(), 1 / 0.9)) - 10
    ugc.push({
      id: `ugc-${i}`,
      duration: length,
      views,
      watchSeconds: Math.round(views * length * (0.2 + 0.6 * next())),
      uploadedAt: now - Math.floor(next() * span),
      category: pick(catalogueCategories),
      region: pick(catalogueRegions),
      owner: `user-${Math.floor(Math.pow(next(), 2) * init.ugc * 0.3)}`,
    })
  }
  const references: ReferenceVideo[] = []
  for (let i = 0; i < init.references; i++) {
    const regions = new Set<string>()
    const count = 1 + Math.floor(next() * 3)
    while (regions.size < count) regions.add(pick(catalogueRegions))
    references.push({
      id: `ref-${i}`,
      duration: duration(240),
      owner: `label-${Math.floor(next() * 50)}`,
      rightsRegions: [...regions].sort(),
      addedAt: now - Math.floor(next() * span),
    })
  }
  return { ugc, references }
}
