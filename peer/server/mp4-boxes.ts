import { CrowdmeshError } from '../protocol/errors.ts'

/* Reading MP4 boxes (ISO BMFF): a box is a 32-bit size (1: a 64-bit size follows), a four-letter
 * type, then its payload; containers hold boxes. Big-endian throughout. */

/** The fragmented MP4 is not what ffmpeg writes (no moov, an unknown layout). */
export class Mp4LayoutError extends CrowdmeshError {}

/** A box inside another. */
export interface Child {
  type: string
  /** The whole box, header included. */
  box: Uint8Array
  /** The box's payload. */
  data: Uint8Array
}

export function children(parent: Uint8Array, start: number): Child[] {
  const out: Child[] = []
  const view = new DataView(parent.buffer, parent.byteOffset, parent.byteLength)
  for (let p = start; p + 8 <= parent.length;) {
    let size = view.getUint32(p)
    let headerSize = 8
    if (size === 1) {
      size = Number(view.getBigUint64(p + 8))
      headerSize = 16
    } else if (size === 0) size = parent.length - p
    if (size < headerSize || p + size > parent.length) throw new Mp4LayoutError('a box runs past its parent')
    out.push({
      type: ascii(parent, p + 4),
      box: parent.subarray(p, p + size),
      data: parent.subarray(p + headerSize, p + size),
    })
    p += size
  }
  return out
}

/** The payload of the box at `path` under `parent` (a whole box). */
export function find(parent: Uint8Array, path: string[]): Uint8Array | undefined {
  let current = parent
  for (const type of path) {
    const child = children(current, 8).find((c) => c.type === type)
    if (child === undefined) return undefined
    current = child.box
  }
  return current.subarray(8)
}

export function u32s(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4)
  const view = new DataView(out.buffer)
  values.forEach((v, i) => view.setUint32(i * 4, v >>> 0))
  return out
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let p = 0
  for (const part of parts) {
    out.set(part, p)
    p += part.length
  }
  return out
}

export function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at)
}

export function i32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(at)
}

export function ascii(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(bytes[at]!, bytes[at + 1]!, bytes[at + 2]!, bytes[at + 3]!)
}
