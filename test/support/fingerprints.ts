import { encodeFingerprints } from '../../peer/jobs/match/fingerprint-file.ts'
import type { JobSpec } from '../../peer/jobs/kind.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { type MatchJob, matchKind, type MatchTask } from '../../peer/jobs/match/match-kind.ts'
import { defaultMatchRule } from '../../peer/jobs/match/matcher.ts'

/** A `.cmfp` file of a video of `seconds` whose fingerprints are pseudo-random (seeded), at every phase. */
export function seededFingerprints(seed: number, seconds: number): Uint8Array {
  let state = seed
  const byte = () => ((state = (state * 1103515245 + 12345) >>> 0) >>> 24) & 0xff
  const fingerprints = []
  for (let segment = 0; segment < seconds; segment++)
    for (let phase = 0; phase < fingerprintFormat.phases; phase++)
      fingerprints.push({
        segment,
        phase,
        still: false,
        bits: Uint8Array.from({ length: fingerprintFormat.bytes }, byte),
      })
  return encodeFingerprints({ duration: seconds, fingerprints })
}

/** A match job over `references` references listed at `mem:list`, with the default rule. */
export function memoryMatchJob(references: number): JobSpec<MatchJob> {
  return {
    jobId: 'm',
    kind: matchKind.name,
    version: matchKind.version,
    description: {
      format: fingerprintFormat.version,
      referencesUrl: 'mem:list',
      references,
      rule: { ...defaultMatchRule },
      layout: { bandBits: 16, probeRadius: 0 },
    },
  }
}

/** A task of `memoryMatchJob`: the 20 s query at `mem:query` against references [firstRef, firstRef + refCount). */
export function memoryMatchTask(firstRef: number, refCount: number): MatchTask {
  return {
    jobId: 'm',
    frameIndex: 0,
    videoId: 'q',
    fingerprintsUrl: 'mem:query',
    duration: 20,
    firstRef,
    refCount,
  }
}
