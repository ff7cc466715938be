import { z } from 'zod'
import { vertexLimits } from './defaults.ts'
import { InvalidMessageError } from '../../protocol/errors.ts'
import { parseMessage } from '../../protocol/schemas.ts'
import type { Block, BlockResult, Frame, VertexJob } from './block.ts'

/**
 * Schemas of the vertex kind's messages (its job, frames, blocks, block results, leases of blocks).
 * `parseMessage` turns a schema failure into an `InvalidMessageError` naming the first offending
 * field, e.g. `cameras.3.k`.
 */

const finite = z.number().finite()
const index = z.number().int().nonnegative()
const vec3 = z.tuple([finite, finite, finite])
const url = z
  .string()
  .max(4096)
  .refine((s) => /^(file:|https?:|data:)/.test(s), 'must be a file:, http(s): or data: URL')

/** A calibrated camera. */
export const cameraSchema = z.object({
  id: index,
  name: z.string().max(256),
  k: z.array(finite).length(9),
  r: z.array(finite).length(9),
  t: z.array(finite).length(3),
  width: z.number().int().positive().max(16384),
  height: z.number().int().positive().max(16384),
})

/** The target space: a box and its grid resolution. */
export const targetSpaceSchema = z
  .object({
    box: z.object({ min: vec3, max: vec3 }),
    resolution: z.tuple([
      z.number().int().min(1).max(2048),
      z.number().int().min(1).max(2048),
      z.number().int().min(1).max(2048),
    ]),
  })
  .refine((s) => s.box.min.every((m, i) => m < s.box.max[i]!), {
    message: 'box.min must be below box.max on every axis',
    path: ['box'],
  })

/** A job announcement. */
export const vertexJobSchema = z.object({
  jobId: z.string().min(1).max(128),
  space: targetSpaceSchema,
  cameras: z.array(cameraSchema).min(1).max(1024),
  maxAreaRadius: z.number().int().min(0).max(64),
  backgroundSum: z.number().int().min(0).max(765),
})

/** One camera frame. */
export const frameSchema = z.object({
  cameraId: index,
  index,
  captureTime: finite,
  imageUrl: url,
})

/** A block of work. */
export const blockSchema = z.object({
  jobId: z.string().min(1).max(128),
  frameIndex: index,
  cameraId: index,
  imageUrl: url,
  firstVertex: index,
  vertexCount: z.number().int().min(1).max(vertexLimits.maxBlockVertices),
  level: z.number().int().min(0).max(8).optional(),
})

/** Typed parsers for the messages above. */
export const parseVertexJob = (d: unknown): VertexJob => parseMessage(vertexJobSchema, d)
export const parseFrame = (d: unknown): Frame => parseMessage(frameSchema, d)
export const parseBlock = (d: unknown): Block => parseMessage(blockSchema, d)

// Block results travel as binary: a fixed header then the RGBA bytes.
const RESULT_MAGIC = 0x434d4252 // 'CMBR'
const RESULT_VERSION = 1
const HEADER_BYTES = 24

/**
 * Encodes a block result as one binary message: magic u32, version u16, jobId length u16,
 * frameIndex u32, cameraId u32, firstVertex u32, vertexCount u32 (all little-endian), jobId
 * UTF-8, then 4·vertexCount colour bytes.
 */
export function encodeBlockResult(result: BlockResult): Uint8Array {
  const id = new TextEncoder().encode(result.jobId)
  const out = new Uint8Array(HEADER_BYTES + id.length + result.colours.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, RESULT_MAGIC, true)
  view.setUint16(4, RESULT_VERSION, true)
  view.setUint16(6, id.length, true)
  view.setUint32(8, result.frameIndex, true)
  view.setUint32(12, result.cameraId, true)
  view.setUint32(16, result.firstVertex, true)
  view.setUint32(20, result.vertexCount, true)
  out.set(id, HEADER_BYTES)
  out.set(result.colours, HEADER_BYTES + id.length)
  return out
}

/** Decodes and validates a binary block result; the colours are a view into `bytes`, not a copy. */
export function decodeBlockResult(bytes: Uint8Array): BlockResult {
  if (bytes.length < HEADER_BYTES)
    throw new InvalidMessageError('(header)', `${bytes.length} bytes is too short`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0, true) !== RESULT_MAGIC) throw new InvalidMessageError('magic', 'not a block result')
  const version = view.getUint16(4, true)
  if (version !== RESULT_VERSION) throw new InvalidMessageError('version', `unsupported version ${version}`)
  const idLength = view.getUint16(6, true)
  const vertexCount = view.getUint32(20, true)
  if (vertexCount < 1 || vertexCount > vertexLimits.maxBlockVertices) {
    throw new InvalidMessageError(
      'vertexCount',
      `${vertexCount} is outside 1..${vertexLimits.maxBlockVertices}`,
    )
  }
  const expected = HEADER_BYTES + idLength + 4 * vertexCount
  if (bytes.length !== expected) {
    throw new InvalidMessageError('colours', `expected ${expected} bytes in all, got ${bytes.length}`)
  }
  let jobId: string
  try {
    jobId = new TextDecoder('utf-8', { fatal: true }).decode(
      bytes.subarray(HEADER_BYTES, HEADER_BYTES + idLength),
    )
  } catch {
    throw new InvalidMessageError('jobId', 'not UTF-8')
  }
  if (jobId.length === 0) throw new InvalidMessageError('jobId', 'empty')
  return {
    jobId,
    frameIndex: view.getUint32(8, true),
    cameraId: view.getUint32(12, true),
    firstVertex: view.getUint32(16, true),
    vertexCount,
    colours: bytes.subarray(HEADER_BYTES + idLength),
  }
}

/** A lease as a participant receives it. */
export const leaseSchema = z.object({
  leaseId: index,
  block: blockSchema,
  deadline: finite,
})
