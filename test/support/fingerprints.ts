import { encodeFingerprints } from '../../peer/jobs/match/fingerprint-file.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'

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
