import type { Catalogue, ReferenceVideo, UgcVideo } from './catalogue.ts'

/*
 * The seed's partitioning: a match run is a set of rules over the catalogue's parameters, each "these
 * user videos × these references", and the pairs they select are cut into slices of about equal
 * work. A pair two rules select is in one slice only. User videos of similar length share a slice
 * (`groupByLength`), so no slice waits on one long video. Slices are cut further into tasks at each
 * participant's size by the job kind; adding videos to a running run makes slices of the new pairs
 * only (`extendRun`).
 */

/** Which user videos a rule takes. Every field given must hold. */
export interface UgcSelector {
  /** Uploaded at or after, ms. */
  uploadedFrom?: number
  /** Uploaded before, ms. */
  uploadedTo?: number
  minViews?: number
  /** At most this long, s. */
  maxDuration?: number
  categories?: readonly string[]
  regions?: readonly string[]
}

/** Which references a rule takes. */
export interface ReferenceSelector {
  addedFrom?: number
  addedTo?: number
  /** Rights in these regions, or (`ugc-region`) in the region of the user video it is paired with. */
  rightsIn?: readonly string[] | 'ugc-region'
}

/** One rule of a run: "these user videos × these references". */
export interface MatchRule {
  ugc: UgcSelector
  references: ReferenceSelector
}

/** A slice: every pair of its user videos and its references. */
export interface Slice {
  id: string
  ugc: string[]
  references: string[]
  /** Its work: user-video seconds × reference seconds, in hours² (what brute force would compare). */
  work: number
  /** Its longest user video, s. */
  longestUgc: number
}

/** How a run is cut. */
export interface PartitionInit {
  /** Work of a slice, aimed at (default 50 hours²: a few minutes of a laptop). */
  targetWork?: number
  /** Most references in one slice: the snapshot a participant caches for it (default 2,000). */
  maxReferences?: number
  /** Group user videos of similar length (default true). */
  groupByLength?: boolean
  /** Slice ids start with this (default `s`). */
  prefix?: string
}

export const partitionDefaults = { targetWork: 50, maxReferences: 2000, groupByLength: true } as const

export function selectsUgc(selector: UgcSelector, video: UgcVideo): boolean {
  return (
    (selector.uploadedFrom === undefined || video.uploadedAt >= selector.uploadedFrom) &&
    (selector.uploadedTo === undefined || video.uploadedAt < selector.uploadedTo) &&
    (selector.minViews === undefined || video.views >= selector.minViews) &&
    (selector.maxDuration === undefined || video.duration <= selector.maxDuration) &&
    (selector.categories === undefined || selector.categories.includes(video.category)) &&
    (selector.regions === undefined || selector.regions.includes(video.region))
  )
}

/** Whether a rule pairs `reference` with `video` (which it selected). */
export function selectsReference(
  selector: ReferenceSelector,
  reference: ReferenceVideo,
  video: UgcVideo,
): boolean {
  if (selector.addedFrom !== undefined && reference.addedAt < selector.addedFrom) return false
  if (selector.addedTo !== undefined && reference.addedAt >= selector.addedTo) return false
  const regions = selector.rightsIn === 'ugc-region' ? [video.region] : selector.rightsIn
  return regions === undefined || regions.some((region) => reference.rightsRegions.includes(region))
}

/** The slices of a run over `catalogue`: each selected pair in exactly one. */
export function partitionRun(
  catalogue: Catalogue,
  rules: readonly MatchRule[],
  init: PartitionInit = {},
): Slice[] {
  const targetWork = init.targetWork ?? partitionDefaults.targetWork
  const maxReferences = init.maxReferences ?? partitionDefaults.maxReferences
  const groupByLength = init.groupByLength ?? partitionDefaults.groupByLength
  const prefix = init.prefix ?? 's'
  // A user video's references depend only on which rules take it (and, for rules pairing by the
  // video's region, on its region): videos with the same key share their reference set.
  const byRegion = rules.some((rule) => rule.references.rightsIn === 'ugc-region')
  const groups = new Map<string, { videos: UgcVideo[]; references: ReferenceVideo[] }>()
  for (const video of catalogue.ugc) {
    const taking = rules.flatMap((rule, i) => (selectsUgc(rule.ugc, video) ? [i] : []))
    if (taking.length === 0) continue
    const key = `${taking.join(',')}${byRegion ? `@${video.region}` : ''}`
    let group = groups.get(key)
    if (group === undefined) {
      const references = catalogue.references.filter((reference) =>
        taking.some((i) => selectsReference(rules[i]!.references, reference, video)),
      )
      groups.set(key, (group = { videos: [], references }))
    }
    group.videos.push(video)
  }
  const slices: Slice[] = []
  for (const { videos, references } of groups.values()) {
    if (references.length === 0) continue
    // Longest first: the slices of long videos start early, and short ones fill the end of the run.
    const ordered = groupByLength ? [...videos].sort((a, b) => b.duration - a.duration) : videos
    const chunks: { references: ReferenceVideo[]; hours: number }[] = []
    for (let r = 0; r < references.length; r += maxReferences) {
      const chunk = references.slice(r, r + maxReferences)
      chunks.push({ references: chunk, hours: chunk.reduce((sum, ref) => sum + ref.duration, 0) / 3600 })
    }
    // User videos are cut once, for the largest reference chunk (no slice goes over the target),
    // and each piece is paired with every chunk in turn: a user video is matched against all the
    // references early, and consecutive tasks read different reference shards, which is where
    // snapshot caches and locality-aware grants earn their keep.
    const widest = Math.max(...chunks.map((c) => c.hours))
    const pieces: UgcVideo[][] = []
    let current: UgcVideo[] = []
    let work = 0
    for (const video of ordered) {
      const add = (video.duration / 3600) * widest
      if (current.length > 0 && work + add > targetWork) {
        pieces.push(current)
        current = []
        work = 0
      }
      current.push(video)
      work += add
    }
    if (current.length > 0) pieces.push(current)
    for (const piece of pieces) {
      const ugcHours = piece.reduce((sum, v) => sum + v.duration, 0) / 3600
      const ugc = piece.map((v) => v.id)
      const longestUgc = Math.max(...piece.map((v) => v.duration))
      for (const chunk of chunks)
        slices.push({
          id: `${prefix}${slices.length}`,
          ugc,
          references: chunk.references.map((ref) => ref.id),
          work: ugcHours * chunk.hours,
          longestUgc,
        })
    }
  }
  return slices
}

/**
 * Slices for what was added to a running run: the new user videos against every reference, and
 * the run's earlier user videos against the new references. With the run's own slices, every pair
 * the rules select over the grown catalogue is in exactly one slice.
 */
export function extendRun(
  before: Catalogue,
  added: Catalogue,
  rules: readonly MatchRule[],
  init: PartitionInit = {},
): Slice[] {
  const prefix = init.prefix ?? 'x'
  const references = [...before.references, ...added.references]
  return [
    ...partitionRun({ ugc: added.ugc, references }, rules, { ...init, prefix: `${prefix}u` }),
    ...partitionRun({ ugc: before.ugc, references: added.references }, rules, {
      ...init,
      prefix: `${prefix}r`,
    }),
  ]
}
