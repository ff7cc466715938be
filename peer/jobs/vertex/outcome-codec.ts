import { meshDefaults } from '../../protocol/defaults.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'

/*
 * A vertex frame's outcome as it is gossiped to participants: the coloured vertices of its grid,
 * compact (varint id gaps, then RGB), thinned to fit one gossip message.
 */

/** A frame outcome as participants display it: the coloured vertices of a grid. */
export interface OutcomeSnapshot {
  frameIndex: number
  /** Vertices per axis of the grid the outcome is on. */
  resolution: readonly [number, number, number]
  /** Coloured vertices in the whole outcome (more than `ids.length` when the snapshot is thinned). */
  colouredTotal: number
  /** Vertex ids in increasing order. */
  ids: Uint32Array
  /** RGB per id. */
  rgb: Uint8Array
}

const OUTCOME_MAGIC = 0x4f464d43 // 'CMFO' little-endian
const OUTCOME_VERSION = 1
const OUTCOME_HEADER = 28

/**
 * Encodes an outcome snapshot: magic u32, version u16, reserved u16, frameIndex u32, resolution
 * 3×u16, reserved u16, count u32, colouredTotal u32 (little-endian); then the ids as LEB128 varint gaps (mostly one
 * byte: coloured vertices cluster on surfaces), then RGB. Larger than `maxBytes`, it keeps every k-th
 * vertex so a snapshot always fits one gossip message.
 */
export function encodeOutcome(snapshot: OutcomeSnapshot, maxBytes = meshDefaults.maxGossipBytes): Uint8Array {
  const whole = encodeExact(snapshot, snapshot.ids, snapshot.rgb)
  if (whole.length <= maxBytes) return whole
  // Start at the stride the size calls for; id gaps grow as vertices are dropped, so step up from there.
  for (let stride = Math.ceil(whole.length / maxBytes); ; stride++) {
    const keep = Math.ceil(snapshot.ids.length / stride)
    const ids = new Uint32Array(keep)
    const rgb = new Uint8Array(keep * 3)
    for (let k = 0; k < keep; k++) {
      ids[k] = snapshot.ids[k * stride]!
      rgb.set(snapshot.rgb.subarray(k * stride * 3, k * stride * 3 + 3), k * 3)
    }
    const bytes = encodeExact(snapshot, ids, rgb)
    if (bytes.length <= maxBytes) return bytes
  }
}

function encodeExact(snapshot: OutcomeSnapshot, ids: Uint32Array, rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(OUTCOME_HEADER + ids.length * 5 + rgb.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, OUTCOME_MAGIC, true)
  view.setUint16(4, OUTCOME_VERSION, true)
  view.setUint32(8, snapshot.frameIndex, true)
  view.setUint16(12, snapshot.resolution[0], true)
  view.setUint16(14, snapshot.resolution[1], true)
  view.setUint16(16, snapshot.resolution[2], true)
  view.setUint32(20, ids.length, true)
  view.setUint32(24, snapshot.colouredTotal, true)
  let offset = OUTCOME_HEADER
  let previous = -1
  for (const id of ids) {
    let gap = id - previous - 1
    previous = id
    while (gap >= 0x80) {
      out[offset++] = (gap & 0x7f) | 0x80
      gap >>>= 7
    }
    out[offset++] = gap
  }
  out.set(rgb, offset)
  return out.slice(0, offset + rgb.length)
}

/** Decodes and validates an outcome snapshot. */
export function decodeOutcome(bytes: Uint8Array): OutcomeSnapshot {
  if (bytes.length < OUTCOME_HEADER) throw new InvalidMessageError('(outcome)', 'too short')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0, true) !== OUTCOME_MAGIC) throw new InvalidMessageError('magic', 'not an outcome')
  const version = view.getUint16(4, true)
  if (version !== OUTCOME_VERSION) throw new InvalidMessageError('version', `unsupported version ${version}`)
  const resolution = [view.getUint16(12, true), view.getUint16(14, true), view.getUint16(16, true)] as const
  if (resolution.some((n) => n < 1)) throw new InvalidMessageError('resolution', 'an axis is 0')
  const total = resolution[0] * resolution[1] * resolution[2]
  const count = view.getUint32(20, true)
  if (count > total) throw new InvalidMessageError('count', `${count} exceeds the grid's ${total} vertices`)
  const ids = new Uint32Array(count)
  let offset = OUTCOME_HEADER
  let previous = -1
  for (let k = 0; k < count; k++) {
    let gap = 0
    let shift = 0
    for (;;) {
      if (offset >= bytes.length) throw new InvalidMessageError('ids', 'truncated')
      const byte = bytes[offset++]!
      gap += (byte & 0x7f) * 2 ** shift
      if (byte < 0x80) break
      shift += 7
      if (shift > 28) throw new InvalidMessageError('ids', 'varint too long')
    }
    const id = previous + 1 + gap
    if (id >= total) throw new InvalidMessageError('ids', `vertex ${id} is outside the grid`)
    ids[k] = id
    previous = id
  }
  if (bytes.length - offset !== count * 3)
    throw new InvalidMessageError(
      'rgb',
      `expected ${count * 3} bytes after the ids, got ${bytes.length - offset}`,
    )
  const colouredTotal = view.getUint32(24, true)
  if (colouredTotal < count) throw new InvalidMessageError('colouredTotal', 'below the count')
  return {
    frameIndex: view.getUint32(8, true),
    resolution,
    colouredTotal,
    ids,
    rgb: bytes.slice(offset),
  }
}
