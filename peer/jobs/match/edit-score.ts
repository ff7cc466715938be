import { fingerprintFormat } from './format.ts'
import { expectedOffset, type MatchingDataset, type MatchScore, scoreMatches } from './ground-truth.ts'
import type { Match } from './matcher.ts'

/*
 * Scoring per edit: which copies were found by a match with their own original at the right offset,
 * by edit and strength, and the threshold sweep that picks the largest Hamming threshold still
 * without a false positive. Pure: matches and a data set in, figures out (`crowdmesh match-eval`
 * prints them; the tests assert them).
 */

/** Recall of one edit at one strength. */
export interface EditRecall {
  edit: string
  /** `mild`, `strong`, or undefined for a copy whose ground truth gives none. */
  strength: string | undefined
  copies: number
  found: number
  recall: number
  /** The copies not found. */
  missed: string[]
  /** Largest offset error of a found copy (its best match with its original), s. */
  worstOffsetError: number
}

/** How the copies of a data set were found. */
export interface EditScore {
  copies: number
  found: number
  recall: number
  worstOffsetError: number
  /** By edit and strength, in the ground truth's order. */
  byEdit: EditRecall[]
  missed: string[]
}

/** Each group's original (what `loadMatchingDataset` marks `original`), by group name. */
export function groupOriginals(dataset: MatchingDataset): Map<string, string> {
  const out = new Map<string, string>()
  for (const [video, member] of dataset.members) if (member.edit === 'original') out.set(member.group, video)
  return out
}

/**
 * Scores how each copy was found: found when a match between the copy and its group's original (in
 * either direction) is at the ground truth's offset within one segment. Matches between two copies,
 * right or wrong, do not count here (`scoreMatches` judges every match for precision).
 */
export function scoreByEdit(dataset: MatchingDataset, matches: readonly Match[]): EditScore {
  const tolerance = fingerprintFormat.segmentSeconds
  const originals = groupOriginals(dataset)
  /** Each found copy's smallest offset error. */
  const best = new Map<string, number>()
  for (const match of matches) {
    const expected = expectedOffset(dataset, match.ugcId, match.refId)
    if (expected === undefined) continue
    const error = Math.abs(match.refStart - match.ugcStart - expected)
    if (error > tolerance) continue
    for (const [copy, other] of [
      [match.ugcId, match.refId],
      [match.refId, match.ugcId],
    ] as const) {
      const member = dataset.members.get(copy)!
      if (member.edit === 'original' || originals.get(member.group) !== other) continue
      best.set(copy, Math.min(best.get(copy) ?? Number.POSITIVE_INFINITY, error))
    }
  }
  const rows = new Map<string, EditRecall>()
  for (const [video, member] of dataset.members) {
    if (member.edit === 'original' || !dataset.videos.includes(video)) continue
    const key = `${member.edit}\n${member.strength ?? ''}`
    let row = rows.get(key)
    if (row === undefined)
      rows.set(
        key,
        (row = {
          edit: member.edit,
          strength: member.strength,
          copies: 0,
          found: 0,
          recall: 0,
          missed: [],
          worstOffsetError: 0,
        }),
      )
    row.copies++
    const error = best.get(video)
    if (error === undefined) row.missed.push(video)
    else {
      row.found++
      row.worstOffsetError = Math.max(row.worstOffsetError, error)
    }
  }
  const byEdit = [...rows.values()].map((row) => ({ ...row, recall: row.found / row.copies }))
  const copies = byEdit.reduce((n, row) => n + row.copies, 0)
  const found = byEdit.reduce((n, row) => n + row.found, 0)
  return {
    copies,
    found,
    recall: copies === 0 ? 1 : found / copies,
    worstOffsetError: byEdit.reduce((w, row) => Math.max(w, row.worstOffsetError), 0),
    byEdit,
    missed: byEdit.flatMap((row) => row.missed),
  }
}

/** One threshold of a sweep: how all-against-all matching scored with it. */
export interface ThresholdPoint {
  /** `MatchRule.maxHammingBits`. */
  maxHammingBits: number
  /** Every match judged, every pair of one group counted (`scoreMatches`). */
  pairs: MatchScore
  /** Each copy against its original (`scoreByEdit`). */
  edits: EditScore
  /** False positives between videos of no common original (what a user would call a wrong match). */
  unrelated: number
  /**
   * False positives between copies of one original at another offset than the ground truth's: a scene
   * that repeats within a video (a static camera, a person standing still) matches itself elsewhere.
   */
  wrongOffset: number
}

/** Scores one threshold's matches. */
export function scoreThreshold(
  dataset: MatchingDataset,
  maxHammingBits: number,
  matches: readonly Match[],
): ThresholdPoint {
  const pairs = scoreMatches(dataset, matches)
  let unrelated = 0
  for (const { match } of pairs.falsePositives)
    if (expectedOffset(dataset, match.ugcId, match.refId) === undefined) unrelated++
  return {
    maxHammingBits,
    pairs,
    edits: scoreByEdit(dataset, matches),
    unrelated,
    wrongOffset: pairs.falsePositives.length - unrelated,
  }
}

/**
 * The largest threshold of a sweep at which precision is 1 (no match of unrelated videos, none at a
 * wrong offset): the most tolerant setting that is still never wrong on this set. Undefined when
 * every threshold of the sweep has a false positive.
 */
export function chooseThreshold(sweep: readonly ThresholdPoint[]): ThresholdPoint | undefined {
  let chosen: ThresholdPoint | undefined
  for (const point of sweep)
    if (point.pairs.precision === 1 && (chosen === undefined || point.maxHammingBits > chosen.maxHammingBits))
      chosen = point
  return chosen
}

/** The thresholds a sweep tries by default: 60 to 300 bits of 800, by 20. */
export const sweepThresholds: readonly number[] = Array.from({ length: 13 }, (_, i) => 60 + 20 * i)
