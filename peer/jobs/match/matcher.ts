import { matchDefaults } from './defaults.ts'
import { type Fingerprint, fingerprintTime } from './fingerprint.ts'
import { fingerprintFormat } from './format.ts'
import { fingerprintWords, toWords } from './hamming.ts'
import { FingerprintIndex, type LshLayout } from './lsh-index.ts'

/*
 * Matching: every query fingerprint (all phases of a UGC video) looks up the reference index; each
 * reference within `maxHammingBits` is a hit at a time offset (the reference's instant minus the
 * query's). A match is a run of query segments whose hits agree on one offset (temporal
 * consistency): a logo passing or a cut may leave gaps of `maxGapSegments`, and a run shorter than
 * `minRunSegments` is not a match. A near-duplicate frame alone (two clips filmed in one room) is
 * not enough.
 */

/** One match: query range [ugcStart, ugcEnd) s is reference range [refStart, refEnd) s. */
export interface Match {
  ugcId: string
  refId: string
  ugcStart: number
  ugcEnd: number
  refStart: number
  refEnd: number
  /** Mean similarity over the run's segments, 1 − 2·distance/800 of each segment's best hit (0: unrelated, 1: identical). */
  score: number
}

/** A video's fingerprints. */
export interface VideoFingerprints {
  id: string
  /** Seconds of video fingerprinted (matches are clipped to it). */
  duration: number
  fingerprints: readonly Fingerprint[]
}

/** How matches are found (defaults `matchDefaults`). */
export interface MatchRule {
  maxHammingBits: number
  minRunSegments: number
  maxGapSegments: number
}

export const defaultMatchRule: MatchRule = {
  maxHammingBits: matchDefaults.maxHammingBits,
  minRunSegments: matchDefaults.minRunSegments,
  maxGapSegments: matchDefaults.maxGapSegments,
}

/** The references of a match run, indexed (phase 0 of each segment). */
export class ReferenceSet {
  readonly index: FingerprintIndex
  readonly ids: string[] = []
  readonly durations: number[] = []

  constructor(layout?: LshLayout) {
    this.index = new FingerprintIndex(layout)
  }

  /** Adds a reference video (its phase-0 fingerprints). */
  add(video: VideoFingerprints): void {
    const number = this.ids.length
    this.ids.push(video.id)
    this.durations.push(video.duration)
    for (const fingerprint of video.fingerprints)
      if (fingerprint.phase === 0 && !fingerprint.still)
        this.index.add(toWords(fingerprint.bits), number, fingerprint.segment)
  }

  freeze(): this {
    this.index.freeze()
    return this
  }
}

/** A hit: query segment, the offset in hops (reference instant − query instant), its distance. */
interface Hit {
  segment: number
  offsetHops: number
  distance: number
}

/** The matches of one query video against the references. `skip` leaves out a reference (itself). */
export function matchVideo(
  query: VideoFingerprints,
  references: ReferenceSet,
  rule: MatchRule = defaultMatchRule,
  skip?: (refId: string) => boolean,
): { matches: Match[]; candidates: number } {
  const { phases, segmentSeconds } = fingerprintFormat
  const hop = segmentSeconds / phases
  const hits = new Map<number, Hit[]>()
  const words = new Uint32Array(fingerprintWords)
  let candidates = 0
  for (const fingerprint of query.fingerprints) {
    if (fingerprint.still) continue
    words.set(toWords(fingerprint.bits))
    const at = fingerprintTime(fingerprint.segment, fingerprint.phase)
    const cost = references.index.search(words, 0, rule.maxHammingBits, (entry, distance) => {
      const { video, segment } = references.index.entry(entry)
      const offsetHops = Math.round((fingerprintTime(segment, 0) - at) / hop)
      let list = hits.get(video)
      if (list === undefined) hits.set(video, (list = []))
      list.push({ segment: fingerprint.segment, offsetHops, distance })
    })
    candidates += cost.candidates
  }
  const matches: Match[] = []
  for (const [video, list] of hits) {
    const refId = references.ids[video]!
    if (skip?.(refId) === true) continue
    for (const run of strongest(runs(list, rule), rule)) {
      const offset = run.offsetHops * hop
      // The run's segments, within both videos (a segment at an edge may reach past the other's).
      const ugcStart = Math.max(run.first * segmentSeconds, -offset)
      const ugcEnd = Math.min(
        (run.last + 1) * segmentSeconds,
        query.duration,
        references.durations[video]! - offset,
      )
      if (ugcEnd <= ugcStart) continue
      matches.push({
        ugcId: query.id,
        refId,
        ugcStart,
        ugcEnd,
        refStart: round(ugcStart + offset),
        refEnd: round(ugcEnd + offset),
        score: round(run.similarity),
      })
    }
  }
  matches.sort((a, b) => b.score - a.score || a.refId.localeCompare(b.refId) || a.ugcStart - b.ugcStart)
  return { matches, candidates }
}

/** A run of query segments at one offset. */
interface Run {
  first: number
  last: number
  offsetHops: number
  similarity: number
  segments: number
}

/**
 * The runs of hits of one (query, reference) pair. Offsets are tried from the most supported one
 * down; a hit counts toward an offset within one hop of it (the nearest phase may fall either side),
 * and each query segment belongs to one run at most.
 */
function runs(hits: Hit[], rule: MatchRule): Run[] {
  const support = new Map<number, Set<number>>()
  for (const hit of hits) {
    let segments = support.get(hit.offsetHops)
    if (segments === undefined) support.set(hit.offsetHops, (segments = new Set()))
    segments.add(hit.segment)
  }
  const offsets = [...support.entries()]
    .map(([offset]) => {
      let n = 0
      for (const near of [offset - 1, offset, offset + 1]) n += support.get(near)?.size ?? 0
      return { offset, n }
    })
    .filter(({ n }) => n >= rule.minRunSegments)
    .sort((a, b) => b.n - a.n || a.offset - b.offset)
  const used = new Set<number>()
  const out: Run[] = []
  for (const { offset } of offsets) {
    // Each query segment's best hit near this offset.
    const best = new Map<number, Hit>()
    for (const hit of hits) {
      if (Math.abs(hit.offsetHops - offset) > 1 || used.has(hit.segment)) continue
      const known = best.get(hit.segment)
      if (known === undefined || hit.distance < known.distance) best.set(hit.segment, hit)
    }
    const segments = [...best.keys()].sort((a, b) => a - b)
    let start = 0
    for (let i = 1; i <= segments.length; i++) {
      if (i < segments.length && segments[i]! - segments[i - 1]! <= rule.maxGapSegments + 1) continue
      const run = segments.slice(start, i)
      start = i
      if (run.length < rule.minRunSegments) continue
      const runHits = run.map((s) => best.get(s)!)
      // The run's offset: the one most of its segments' best hits agree on.
      const votes = new Map<number, number>()
      for (const hit of runHits) votes.set(hit.offsetHops, (votes.get(hit.offsetHops) ?? 0) + 1)
      const runOffset = [...votes.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0]
      const similarity =
        runHits.reduce((sum, hit) => sum + 1 - (2 * hit.distance) / (fingerprintWords * 32), 0) /
        runHits.length
      for (const s of run) used.add(s)
      out.push({ first: run[0]!, last: run.at(-1)!, offsetHops: runOffset, similarity, segments: run.length })
    }
  }
  return out
}

/**
 * The runs worth reporting of one pair: the strongest (most segments, then most similar), and
 * another at a different offset only if it is long (twice `minRunSegments`) and at least as
 * similar. Content that repeats inside a video (a person standing still twice, a chorus) otherwise
 * gives short, weaker runs at the offsets of its repeats; a UGC video that shows the same reference
 * clip twice still gives two.
 */
function strongest(found: Run[], rule: MatchRule): Run[] {
  if (found.length <= 1) return found
  const sorted = [...found].sort((a, b) => b.segments - a.segments || b.similarity - a.similarity)
  const primary = sorted[0]!
  return sorted.filter(
    (run) =>
      run === primary ||
      Math.abs(run.offsetHops - primary.offsetHops) <= 1 ||
      (run.segments >= 2 * rule.minRunSegments && run.similarity >= primary.similarity),
  )
}

const round = (x: number) => Math.round(x * 1000) / 1000
