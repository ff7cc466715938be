import { InvalidMessageError } from '../../protocol/errors.ts'
import type { ImageTask, ImageTaskResult } from './schemas.ts'

/*
 * A task result on the wire: a header naming the task, then the rectangle's RGBA bytes.
 *
 *   u8  format (1)
 *   u16 jobId length in UTF-8 bytes, then the jobId
 *   u32 frameIndex, x, y, w, h
 *   w·h·4 bytes of RGBA, row-major
 *
 * Little-endian. The header repeats the task's identity so that a result sent for the wrong lease
 * is refused by name, not counted as pixels of another rectangle.
 */

const format = 1
const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function headerBytes(jobIdBytes: number): number {
  return 1 + 2 + jobIdBytes + 5 * 4
}

/** The exact length of a result of `task`: what the limits announce and `decode` insists on. */
export function resultBytes(task: ImageTask): number {
  return headerBytes(encoder.encode(task.jobId).length) + task.w * task.h * 4
}

/** Whether `result` is `task`'s: the same identity and rectangle, and pixels that fill it. */
export function resultMatches(task: ImageTask, result: ImageTaskResult): boolean {
  return (
    result.jobId === task.jobId &&
    result.frameIndex === task.frameIndex &&
    result.x === task.x &&
    result.y === task.y &&
    result.w === task.w &&
    result.h === task.h &&
    result.rgba.length === task.w * task.h * 4
  )
}

/** Encodes a result; its pixels must fit its rectangle. */
export function encodeImageResult(result: ImageTaskResult): Uint8Array {
  if (result.rgba.length !== result.w * result.h * 4) {
    throw new InvalidMessageError('rgba', `${result.rgba.length} bytes do not fit ${result.w}×${result.h}`)
  }
  const jobId = encoder.encode(result.jobId)
  const header = headerBytes(jobId.length)
  const bytes = new Uint8Array(header + result.rgba.length)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, format)
  view.setUint16(1, jobId.length, true)
  bytes.set(jobId, 3)
  let o = 3 + jobId.length
  for (const value of [result.frameIndex, result.x, result.y, result.w, result.h]) {
    view.setUint32(o, value, true)
    o += 4
  }
  bytes.set(result.rgba, header)
  return bytes
}

/**
 * Decodes a result of `task`: every header field must equal the task's and the length must be exact;
 * otherwise `InvalidMessageError` names the field. The pixels are copied out of `bytes`.
 */
export function decodeImageResult(bytes: Uint8Array, task: ImageTask): ImageTaskResult {
  const expected = resultBytes(task)
  if (bytes.length < 3) throw new InvalidMessageError('length', `${bytes.length} bytes hold no header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint8(0) !== format) {
    throw new InvalidMessageError('format', `format ${view.getUint8(0)}, expected ${format}`)
  }
  // The identity first, where it can be read: a result for another job says so, whatever its length.
  const jobIdLength = view.getUint16(1, true)
  if (3 + jobIdLength > bytes.length) {
    throw new InvalidMessageError('length', `${bytes.length} bytes, a result of this task has ${expected}`)
  }
  let jobId: string
  try {
    jobId = decoder.decode(bytes.subarray(3, 3 + jobIdLength))
  } catch {
    throw new InvalidMessageError('jobId', 'not UTF-8')
  }
  if (jobId !== task.jobId) throw new InvalidMessageError('jobId', 'does not match the task')
  if (bytes.length !== expected) {
    throw new InvalidMessageError('length', `${bytes.length} bytes, a result of this task has ${expected}`)
  }
  const fields = ['frameIndex', 'x', 'y', 'w', 'h'] as const
  let o = 3 + jobIdLength
  for (const field of fields) {
    const value = view.getUint32(o, true)
    if (value !== task[field]) {
      throw new InvalidMessageError(field, `${value} does not match the task's ${task[field]}`)
    }
    o += 4
  }
  return {
    jobId,
    frameIndex: task.frameIndex,
    x: task.x,
    y: task.y,
    w: task.w,
    h: task.h,
    rgba: bytes.slice(o),
  }
}
