import type { CheckVerdict, KindValidation } from '../kind.ts'
import { parseJsonBytes } from '../../protocol/schemas.ts'
import { decodeFingerprints } from './fingerprint-file.ts'
import {
  type MatchJob,
  type MatchTask,
  type MatchTaskResult,
  maxFingerprintBytes,
  maxListBytes,
  type ReferenceList,
  referenceListSchema,
  type TaskMatch,
  taskMatch,
} from './match-kind.ts'
import { matchVideo, ReferenceSet } from './matcher.ts'

/*
 * How match results are validated (README, "Trust"). Two results agree when they report the same
 * matches, reference by reference. The coordinator's checker runs the matcher itself over the
 * sampled references and over every reference a result reports a match with, from the same
 * fingerprint files: an invented match is refused whatever else happens. A hidden match is one
 * reference in thousands, which a sample rarely meets, so the kind says its lies are sparse: an
 * untrusted participant's results are replicated as well, and a replica that reports a match the
 * other hid makes the checker look at that reference.
 */

/** Seconds two matches' ranges may differ by and still be one match (the matcher is deterministic). */
const timeTolerance = 1e-6
const scoreTolerance = 1e-6

/** References a full check of a match result recomputes (beside every reference it reports). */
const sampleReferences = 8

function sameMatch(a: TaskMatch, b: TaskMatch): boolean {
  return (
    a.ref === b.ref &&
    Math.abs(a.ugcStart - b.ugcStart) <= timeTolerance &&
    Math.abs(a.ugcEnd - b.ugcEnd) <= timeTolerance &&
    Math.abs(a.refStart - b.refStart) <= timeTolerance &&
    Math.abs(a.refEnd - b.refEnd) <= timeTolerance &&
    Math.abs(a.score - b.score) <= scoreTolerance
  )
}

/** Each reference's matches, in a stable order (a result lists them in any order). */
function byReference(matches: readonly TaskMatch[]): Map<number, TaskMatch[]> {
  const out = new Map<number, TaskMatch[]>()
  for (const m of matches) {
    let list = out.get(m.ref)
    if (list === undefined) out.set(m.ref, (list = []))
    list.push(m)
  }
  for (const list of out.values()) list.sort((a, b) => a.ugcStart - b.ugcStart || a.refStart - b.refStart)
  return out
}

function sameList(a: readonly TaskMatch[] | undefined, b: readonly TaskMatch[] | undefined): boolean {
  const x = a ?? []
  const y = b ?? []
  return x.length === y.length && x.every((m, i) => sameMatch(m, y[i]!))
}

/** References (as unit offsets in the task) where two results' matches differ, at most `max`. */
function disputedReferences(task: MatchTask, a: MatchTaskResult, b: MatchTaskResult, max: number): number[] {
  const x = byReference(a.matches)
  const y = byReference(b.matches)
  const refs = [...new Set([...x.keys(), ...y.keys()])].sort((p, q) => p - q)
  return refs
    .filter((ref) => !sameList(x.get(ref), y.get(ref)))
    .slice(0, max)
    .map((ref) => ref - task.firstRef)
}

function describe(matches: readonly TaskMatch[] | undefined): string {
  if (matches === undefined || matches.length === 0) return 'no match'
  return matches
    .map((m) => `${m.ugcStart.toFixed(2)}–${m.ugcEnd.toFixed(2)} s at ${m.refStart.toFixed(2)} s`)
    .join(', ')
}

export const matchValidation: KindValidation<MatchJob, MatchTask, MatchTaskResult> = {
  agree: (task, a, b) => disputedReferences(task, a, b, 1).length === 0,
  disputed: disputedReferences,
  // The cheap check: every reference the result reports a match with, none sampled.
  cheapCheckUnits: 0,
  fullCheckUnits: sampleReferences,
  sparseLies: true,
  findings: (_task, result) => result.matches.length > 0,
  checker(job, env) {
    const files = env.files
    if (files === undefined) return undefined
    let list: { url: string; list: ReferenceList } | undefined
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const { referencesUrl, rule, layout } = job.description
        if (list?.url !== referencesUrl) {
          const bytes = await files.bytes(referencesUrl, maxListBytes, signal)
          list = { url: referencesUrl, list: parseJsonBytes(referenceListSchema, bytes, maxListBytes) }
        }
        const references = list.list.references
        const refs = [
          ...new Set([...units.map((u) => task.firstRef + u), ...result.matches.map((m) => m.ref)]),
        ]
          .filter((ref) => ref >= task.firstRef && ref < task.firstRef + task.refCount)
          .sort((a, b) => a - b)
        if (refs.length === 0) return { ok: true }
        const set = new ReferenceSet(layout)
        for (const ref of refs) {
          const reference = references[ref]!
          const file = decodeFingerprints(await files.bytes(reference.url, maxFingerprintBytes, signal))
          set.add({ id: String(ref), duration: reference.duration, fingerprints: file.fingerprints })
        }
        set.freeze()
        const query = decodeFingerprints(await files.bytes(task.fingerprintsUrl, maxFingerprintBytes, signal))
        signal?.throwIfAborted()
        const truth = byReference(
          matchVideo(
            { id: task.videoId, duration: task.duration, fingerprints: query.fingerprints },
            set,
            rule,
          ).matches.map(taskMatch),
        )
        const reported = byReference(result.matches)
        for (const ref of refs)
          if (!sameList(truth.get(ref), reported.get(ref)))
            return {
              ok: false,
              unit: ref - task.firstRef,
              reason:
                `reference ${references[ref]!.id} against ${task.videoId}: recomputed ${describe(truth.get(ref))}, ` +
                `the result says ${describe(reported.get(ref))}`,
            }
        return { ok: true }
      },
    }
  },
}
