import { readFile, readdir } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { z } from 'zod'
import { DatasetError } from '../../protocol/errors.ts'
import { fingerprintFormat } from './format.ts'
import type { Match } from './matcher.ts'

/*
 * A matching data set's ground truth (`ground-truth.json`, as in `../shared/data/video-matching`),
 * and the scorer: which reported matches are right, which true pairs were found.
 */

const groundTruthSchema = z.object({
  groups: z.array(
    z.object({
      name: z.string(),
      original: z.string(),
      copies: z.array(
        z.object({
          video: z.string(),
          edit: z.string(),
          offset: z.number(),
          strength: z.string().optional(),
        }),
      ),
    }),
  ),
  unrelated: z.array(z.string()).default([]),
})

/** Videos of a data set and which are copies of which. */
export interface MatchingDataset {
  root: string
  /** Every video, as a path relative to `root`. */
  videos: string[]
  /** For each copy and each original: its group and its offset into the original, s (0 for the original). */
  members: Map<string, { group: string; offset: number; edit: string; strength?: string }>
}

const videoExtensions = /\.(mp4|webm|mkv|mov|gif|avi|m4v)$/i

/** Reads a data set: its ground truth and every video file under it. */
export async function loadMatchingDataset(root: string): Promise<MatchingDataset> {
  let raw: unknown
  try {
    raw = JSON.parse(await readFile(join(root, 'ground-truth.json'), 'utf8'))
  } catch (error) {
    throw new DatasetError(`${root}: no readable ground-truth.json (${(error as Error).message})`)
  }
  const parsed = groundTruthSchema.safeParse(raw)
  if (!parsed.success) throw new DatasetError(`${root}/ground-truth.json: ${parsed.error.issues[0]?.message}`)
  const members: MatchingDataset['members'] = new Map()
  for (const group of parsed.data.groups) {
    members.set(group.original, { group: group.name, offset: 0, edit: 'original' })
    for (const copy of group.copies)
      members.set(copy.video, {
        group: group.name,
        offset: copy.offset,
        edit: copy.edit,
        ...(copy.strength !== undefined && { strength: copy.strength }),
      })
  }
  const videos = (await readdir(root, { recursive: true }))
    .map((p) => relative(root, join(root, p)))
    .filter((p) => videoExtensions.test(p))
    .sort()
  for (const member of members.keys())
    if (!videos.includes(member))
      throw new DatasetError(`${root}: ground truth names ${member}, which is not there`)
  return { root, videos, members }
}

/** The expected offset of a match of `ugc` in `ref` (ref time − ugc time), or undefined when they are unrelated. */
export function expectedOffset(dataset: MatchingDataset, ugc: string, ref: string): number | undefined {
  const a = dataset.members.get(ugc)
  const b = dataset.members.get(ref)
  if (a === undefined || b === undefined || a.group !== b.group) return undefined
  return a.offset - b.offset
}

/** How a match run scored against the ground truth. */
export interface MatchScore {
  /** Reported matches that pair copies of one original at the right offset (within one segment). */
  truePositives: number
  /** Reported matches of unrelated videos, or at a wrong offset. */
  falsePositives: { match: Match; why: string }[]
  /** True pairs (unordered) and those found in at least one direction. */
  pairs: number
  pairsFound: number
  missed: { a: string; b: string }[]
  precision: number
  recall: number
  /** Largest offset error of a true positive, s. */
  worstOffsetError: number
}

/** Scores all-against-all matches of a data set (each video both a query and a reference). */
export function scoreMatches(dataset: MatchingDataset, matches: readonly Match[]): MatchScore {
  const tolerance = fingerprintFormat.segmentSeconds
  const found = new Set<string>()
  const falsePositives: MatchScore['falsePositives'] = []
  let truePositives = 0
  let worstOffsetError = 0
  for (const match of matches) {
    const expected = expectedOffset(dataset, match.ugcId, match.refId)
    if (expected === undefined) {
      falsePositives.push({ match, why: 'unrelated videos' })
      continue
    }
    const error = Math.abs(match.refStart - match.ugcStart - expected)
    if (error > tolerance) {
      falsePositives.push({ match, why: `offset off by ${error.toFixed(2)} s` })
      continue
    }
    truePositives++
    worstOffsetError = Math.max(worstOffsetError, error)
    found.add([match.ugcId, match.refId].sort().join('\n'))
  }
  const members = [...dataset.members.keys()].filter((v) => dataset.videos.includes(v))
  const missed: MatchScore['missed'] = []
  let pairs = 0
  for (let i = 0; i < members.length; i++)
    for (let j = i + 1; j < members.length; j++) {
      const a = members[i]!
      const b = members[j]!
      if (dataset.members.get(a)!.group !== dataset.members.get(b)!.group) continue
      pairs++
      if (!found.has([a, b].sort().join('\n'))) missed.push({ a, b })
    }
  const reported = truePositives + falsePositives.length
  return {
    truePositives,
    falsePositives,
    pairs,
    pairsFound: pairs - missed.length,
    missed,
    precision: reported === 0 ? 1 : truePositives / reported,
    recall: pairs === 0 ? 1 : (pairs - missed.length) / pairs,
    worstOffsetError,
  }
}
