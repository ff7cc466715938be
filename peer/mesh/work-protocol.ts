import { z } from 'zod'
import { capabilitySchema } from '../protocol/capability.ts'
import { InvalidMessageError } from '../protocol/errors.ts'
import { type FrameKey, FrameKeyError, open, seal } from '../protocol/frame-keys.ts'
import type { BlockResult } from '../protocol/job.ts'
import {
  decodeBlockResult,
  encodeBlockResult,
  leaseSchema,
  parseMessage,
  vertexJobSchema,
} from '../protocol/schemas.ts'

/**
 * The work protocol: one long-lived libp2p stream per participant, opened by the participant to the
 * coordinator, carrying framed request/response messages (see `framing.ts`). One stream rather than
 * one per request: over WebRTC each new stream is a new data channel with its own negotiation, and
 * one stream gives the coordinator one place to rate-limit and to notice the participant leave.
 *
 * Participant → coordinator: `hello` first (join token and capability), then `lease-request`,
 * `failed`, and binary result frames. Coordinator → participant: `welcome` (the job), `lease`,
 * `ack`, `work-available`, `lease-cancelled`, `error`; and binary frames with the latest frame
 * outcome (so a participant who joins late sees it at once).
 */
export const workProtocol = '/crowdmesh/work/1.0.0'

const requestId = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 32 - 1)
const leaseId = z
  .number()
  .int()
  .nonnegative()
  .max(2 ** 32 - 1)

/** Participant → coordinator control messages. */
export const toCoordinatorSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    token: z.string().min(1).max(2048),
    capability: capabilitySchema,
    agent: z.string().max(200),
  }),
  z.object({ type: z.literal('lease-request'), requestId, capability: capabilitySchema }),
  z.object({ type: z.literal('failed'), requestId, leaseId, reason: z.string().max(1000) }),
])
export type ToCoordinator = z.infer<typeof toCoordinatorSchema>

/**
 * Codes of the errors the coordinator sends before closing (or, for `rate-limited`, instead of
 * answering). `busy` (too many unfinished frames buffered at once) and `rate-limited` are worth
 * retrying; `link-full` means the link already has as many peers as it may hold.
 */
export const errorCodes = [
  'invalid-message',
  'too-large',
  'unauthorized',
  'rate-limited',
  'hello-timeout',
  'protocol',
  'shutting-down',
  'busy',
  'link-full',
] as const

/** The codes a participant retries after (with back-off) rather than giving up. */
export const retryableCodes: ReadonlySet<string> = new Set(['rate-limited', 'busy'])

/** Coordinator → participant control messages. */
export const toParticipantSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    participantId: z.string().max(200),
    event: z.string().max(128),
    job: vertexJobSchema,
  }),
  z.object({
    type: z.literal('lease'),
    requestId,
    lease: leaseSchema.nullable(),
    /** The block's frame key (base64url, 32 bytes) when the event runs with per-frame keys. */
    frameKey: z
      .string()
      .regex(/^[\w-]{43}$/)
      .optional(),
  }),
  z.object({
    type: z.literal('ack'),
    requestId,
    accepted: z.boolean(),
    error: z.string().max(1000).optional(),
  }),
  z.object({ type: z.literal('work-available') }),
  z.object({ type: z.literal('lease-cancelled'), leaseId }),
  z.object({
    type: z.literal('error'),
    code: z.enum(errorCodes),
    message: z.string().max(2000),
    requestId: requestId.optional(),
  }),
])
export type ToParticipant = z.infer<typeof toParticipantSchema>

/** Parses a control frame's payload (UTF-8 JSON) with `schema`, naming the offending field. */
export function parseControl<T>(schema: z.ZodType<T>, payload: Uint8Array): T {
  let data: unknown
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch (cause) {
    throw new InvalidMessageError('(root)', `not UTF-8 JSON: ${(cause as Error).message}`)
  }
  return parseMessage(schema, data)
}

const RESULT_PREFIX = 8

/**
 * A binary result frame: request id u32, lease id u32 (little-endian), then the block result; with
 * a frame key, the result is sealed and the ids, left readable for routing, are authenticated with it.
 */
export async function encodeResultFrame(
  request: number,
  lease: number,
  result: BlockResult,
  key?: FrameKey,
): Promise<Uint8Array> {
  const header = new Uint8Array(RESULT_PREFIX)
  const view = new DataView(header.buffer)
  view.setUint32(0, request, true)
  view.setUint32(4, lease, true)
  const plain = encodeBlockResult(result)
  const body = key === undefined ? plain : await seal(key, plain, header)
  const out = new Uint8Array(RESULT_PREFIX + body.length)
  out.set(header)
  out.set(body, RESULT_PREFIX)
  return out
}

/** The request and lease ids of a binary result frame. */
export function resultFrameIds(payload: Uint8Array): { requestId: number; leaseId: number } {
  if (payload.length < RESULT_PREFIX)
    throw new InvalidMessageError('(result)', `${payload.length} bytes is too short`)
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  return { requestId: view.getUint32(0, true), leaseId: view.getUint32(4, true) }
}

/**
 * Decodes a binary result frame. The ids come out even when the block result is malformed
 * (`result` is then the error), so the coordinator can answer that request and fail that lease.
 */
export async function decodeResultFrame(
  payload: Uint8Array,
  key?: FrameKey,
): Promise<{
  requestId: number
  leaseId: number
  result: BlockResult | InvalidMessageError
}> {
  const ids = resultFrameIds(payload)
  try {
    const body =
      key === undefined
        ? payload.subarray(RESULT_PREFIX)
        : await open(key, payload.subarray(RESULT_PREFIX), payload.subarray(0, RESULT_PREFIX))
    return { ...ids, result: decodeBlockResult(body) }
  } catch (error) {
    if (error instanceof InvalidMessageError) return { ...ids, result: error }
    if (error instanceof FrameKeyError)
      return { ...ids, result: new InvalidMessageError('(result)', error.message) }
    throw error
  }
}
