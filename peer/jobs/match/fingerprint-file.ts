import { InvalidMessageError } from '../../protocol/errors.ts'
import type { Fingerprint } from './fingerprint.ts'
import { fingerprintFormat } from './format.ts'

/*
 * A video's fingerprints as bytes: what `crowdmesh fingerprint` writes (`.cmfp`), what a fingerprint
 * task returns and what a match task fetches. Little-endian:
 *
 *   magic "CMFP" · u8 format version · u8 phases per segment · u16 0 · f64 duration (s) · u32 count
 *   count × { u32 segment · u8 phase · u8 flags (bit 0: still) · u16 0 · 100 bytes of bits }
 *
 * A reader refuses another magic, another version, a count that does not fit the bytes, records out
 * of order or repeated, and phases outside the format: nothing malformed reaches the matcher.
 */

const magic = 0x50464d43 // "CMFP"
const headerBytes = 20
const recordBytes = 8 + fingerprintFormat.bytes

/** Most fingerprints one file may hold: an hour at every phase. */
export const maxFingerprintsPerFile = 3600 * fingerprintFormat.phases + fingerprintFormat.phases

/** A video's fingerprints and its duration. */
export interface FingerprintFile {
  /** Seconds of video fingerprinted. */
  duration: number
  fingerprints: Fingerprint[]
}

/** Encodes fingerprints (in segment, then phase order). */
export function encodeFingerprints(file: FingerprintFile): Uint8Array {
  const { fingerprints } = file
  const bytes = new Uint8Array(headerBytes + fingerprints.length * recordBytes)
  const view = new DataView(bytes.buffer)
  view.setUint32(0, magic, true)
  view.setUint8(4, fingerprintFormat.version)
  view.setUint8(5, fingerprintFormat.phases)
  view.setFloat64(8, file.duration, true)
  view.setUint32(16, fingerprints.length, true)
  fingerprints.forEach((fingerprint, i) => {
    const at = headerBytes + i * recordBytes
    view.setUint32(at, fingerprint.segment, true)
    view.setUint8(at + 4, fingerprint.phase)
    view.setUint8(at + 5, fingerprint.still ? 1 : 0)
    bytes.set(fingerprint.bits.subarray(0, fingerprintFormat.bytes), at + 8)
  })
  return bytes
}

/** Decodes and checks a fingerprint file; throws `InvalidMessageError` naming what is wrong. */
export function decodeFingerprints(bytes: Uint8Array): FingerprintFile {
  if (bytes.length < headerBytes)
    throw new InvalidMessageError('(fingerprints)', `${bytes.length} bytes hold no header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0, true) !== magic)
    throw new InvalidMessageError('(fingerprints)', 'not a fingerprint file')
  const version = view.getUint8(4)
  if (version !== fingerprintFormat.version)
    throw new InvalidMessageError(
      'version',
      `fingerprints of format ${version}, this build reads ${fingerprintFormat.version}`,
    )
  if (view.getUint8(5) !== fingerprintFormat.phases)
    throw new InvalidMessageError('phases', `${view.getUint8(5)} phases, not ${fingerprintFormat.phases}`)
  const duration = view.getFloat64(8, true)
  if (!(Number.isFinite(duration) && duration >= 0)) throw new InvalidMessageError('duration', `${duration}`)
  const count = view.getUint32(16, true)
  if (count > maxFingerprintsPerFile)
    throw new InvalidMessageError('count', `${count} fingerprints is too many`)
  if (bytes.length !== headerBytes + count * recordBytes)
    throw new InvalidMessageError('count', `${count} fingerprints do not fill ${bytes.length} bytes`)
  const fingerprints: Fingerprint[] = []
  let previous = -1
  for (let i = 0; i < count; i++) {
    const at = headerBytes + i * recordBytes
    const segment = view.getUint32(at, true)
    const phase = view.getUint8(at + 4)
    if (phase >= fingerprintFormat.phases) throw new InvalidMessageError(`[${i}].phase`, `${phase}`)
    const flags = view.getUint8(at + 5)
    if (flags > 1) throw new InvalidMessageError(`[${i}].flags`, `${flags}`)
    const order = segment * fingerprintFormat.phases + phase
    if (order <= previous) throw new InvalidMessageError(`[${i}]`, 'fingerprints out of order or repeated')
    previous = order
    fingerprints.push({ segment, phase, still: flags === 1, bits: bytes.slice(at + 8, at + recordBytes) })
  }
  return { duration, fingerprints }
}
