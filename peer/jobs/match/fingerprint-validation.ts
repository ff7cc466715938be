import type { CheckVerdict, KindValidation } from '../kind.ts'
import type { Fingerprint } from './fingerprint.ts'
import type { FingerprintFile } from './fingerprint-file.ts'
import type { FingerprintJob, FingerprintTask } from './fingerprint-kind.ts'
import { hamming, toWords } from './hamming.ts'

/*
 * How fingerprint results are validated (README, "Trust"). Two decoders of one video give nearly the
 * same fingerprints: WebCodecs and the <video> element differ from ffmpeg by at most 15 bits of 800
 * (measured, `test/e2e/video-fingerprint.test.ts`), so two fingerprints agree within 48 bits, and a
 * still segment must be still in both. A made-up fingerprint is some 400 bits away. The coordinator's
 * checker fingerprints one sampled segment itself with ffmpeg (its own decode, so only one): a
 * participant lying about every segment is caught at its first result.
 */

/** Bits two fingerprints of one segment and phase may differ by and still agree (3× the worst decoder). */
export const fingerprintToleranceBits = 48

/** Segments a full check fingerprints again: one, since each is an ffmpeg run on the coordinator. */
const sampleSegments = 1

const keyOf = (f: Fingerprint) => `${f.segment}/${f.phase}`

/** Whether two fingerprints of a segment and phase agree. */
function agreeing(a: Fingerprint, b: Fingerprint): boolean {
  return a.still === b.still && hamming(toWords(a.bits), 0, toWords(b.bits), 0) <= fingerprintToleranceBits
}

/** Segments (as offsets in the task) where two results differ, at most `max`. */
function disputedSegments(
  task: FingerprintTask,
  a: FingerprintFile,
  b: FingerprintFile,
  max: number,
): number[] {
  const other = new Map(b.fingerprints.map((f) => [keyOf(f), f]))
  const out = new Set<number>()
  for (const f of a.fingerprints) {
    const g = other.get(keyOf(f))
    if (g === undefined || !agreeing(f, g)) out.add(f.segment - task.first)
    if (out.size >= max) break
  }
  if (a.fingerprints.length !== b.fingerprints.length && out.size === 0) out.add(0)
  return [...out].sort((x, y) => x - y).slice(0, max)
}

export const fingerprintValidation: KindValidation<FingerprintJob, FingerprintTask, FingerprintFile> = {
  agree: (task, a, b) => disputedSegments(task, a, b, 1).length === 0,
  disputed: disputedSegments,
  fullCheckUnits: sampleSegments,
  checker(_job, env) {
    const videos = env.videos
    if (videos === undefined) return undefined
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const reported = new Map(result.fingerprints.map((f) => [keyOf(f), f]))
        for (const unit of units) {
          const segment = task.first + unit
          const recomputed = await videos.fingerprint(task.videoUrl, {
            first: segment,
            count: 1,
            phases: task.phases,
            duration: task.duration,
            ...(signal !== undefined && { signal }),
          })
          for (const f of recomputed.fingerprints) {
            const got = reported.get(keyOf(f))
            if (got === undefined || !agreeing(f, got)) {
              const bits =
                got === undefined ? 'none' : `${hamming(toWords(f.bits), 0, toWords(got.bits), 0)} bits away`
              return {
                ok: false,
                unit,
                reason: `segment ${segment} phase ${f.phase} of ${task.videoId}: the result's fingerprint is ${bits}${got !== undefined && got.still !== f.still ? ', and its stillness differs' : ''}`,
              }
            }
          }
        }
        return { ok: true }
      },
    }
  },
}
