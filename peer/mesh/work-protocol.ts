import { z } from 'zod'
import { capabilitySchema } from '../protocol/capability.ts'
import { InvalidMessageError } from '../protocol/errors.ts'
import { type FrameKey, FrameKeyError, open, seal } from '../protocol/frame-keys.ts'
import { parseMessage } from '../protocol/schemas.ts'

/**
 * The work protocol: one long-lived libp2p stream per participant, opened by the participant to the
 * coordinator, carrying framed request/response messages (see `framing.ts`). One stream rather than
 * one per request: over WebRTC each new stream is a new data channel with its own negotiation, and
 * one stream gives the coordinator one place to rate-limit and to notice the participant leave.
 *
 * Participant → coordinator: `hello` first (join token and capability), then `lease-request`,
 * `failed`, and binary result frames. Coordinator → participant: `welcome` (the event's jobs),
 * `lease`, `ack`, `work-available`, `lease-cancelled`, `job-added`, `job-ended`, `error`; and binary
 * frames with the latest frame outcome (so a participant who joins late sees it at once).
 *
 * What a job's description, a task and a result hold is its kind's (`peer/jobs/`): here a job is
 * announced with its kind and version and an opaque description, a lease carries a task that names
 * its job, and a result frame carries the bytes of the kind's result codec. The participant checks
 * the description and the task with its own copy of the kind; the coordinator decodes a result with
 * the kind of the lease it answers.
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

/** A job as the coordinator announces it: its kind and version, and the kind's description of it. */
export const jobAnnouncementSchema = z.object({
  jobId: z.string().min(1).max(128),
  kind: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  version: z.number().int().min(1).max(9999),
  description: z.unknown(),
})

/** Jobs an event announces at most (the welcome carries them all). */
export const maxAnnouncedJobs = 16

/** A lease as it crosses the wire: the task is checked by its job's kind on arrival. */
const leaseEnvelopeSchema = z.object({
  leaseId,
  block: z.looseObject({
    jobId: z.string().min(1).max(128),
    frameIndex: z
      .number()
      .int()
      .nonnegative()
      .max(2 ** 32 - 1),
  }),
  deadline: z.number().finite(),
})

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
  /** A check proved one of its results wrong: its identity gets no more work (README, "Trust"). */
  'quarantined',
  /** The operator removed it from the event (the console), with a reason it is shown. */
  'removed',
] as const

/** The codes a participant retries after (with back-off) rather than giving up. */
export const retryableCodes: ReadonlySet<string> = new Set(['rate-limited', 'busy'])

/** Coordinator → participant control messages. */
export const toParticipantSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('welcome'),
    participantId: z.string().max(200),
    event: z.string().max(128),
    jobs: z.array(jobAnnouncementSchema).max(maxAnnouncedJobs),
  }),
  z.object({
    type: z.literal('lease'),
    requestId,
    lease: leaseEnvelopeSchema.nullable(),
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
  z.object({ type: z.literal('job-added'), job: jobAnnouncementSchema }),
  z.object({ type: z.literal('job-ended'), jobId: z.string().min(1).max(128) }),
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
 * A binary result frame: request id u32, lease id u32 (little-endian), then the result as its kind
 * encodes it (`kind.result.encode`); with a frame key, the
 * result is sealed and the ids, left readable for routing, are authenticated with it.
 */
export async function encodeResultFrame(
  request: number,
  lease: number,
  result: Uint8Array,
  key?: FrameKey,
): Promise<Uint8Array> {
  const header = new Uint8Array(RESULT_PREFIX)
  const view = new DataView(header.buffer)
  view.setUint32(0, request, true)
  view.setUint32(4, lease, true)
  const body = key === undefined ? result : await seal(key, result, header)
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
 * Decodes a binary result frame with `decode` (the lease's kind's `result.decode`). The ids come out even when the result is malformed (`result` is then the error), so the
 * coordinator can answer that request and fail that lease.
 */
export async function decodeResultFrame<R>(
  payload: Uint8Array,
  key: FrameKey | undefined,
  decode: (bytes: Uint8Array) => R,
): Promise<{
  requestId: number
  leaseId: number
  result: R | InvalidMessageError
}> {
  const ids = resultFrameIds(payload)
  try {
    const body =
      key === undefined
        ? payload.subarray(RESULT_PREFIX)
        : await open(key, payload.subarray(RESULT_PREFIX), payload.subarray(0, RESULT_PREFIX))
    return { ...ids, result: decode(body) }
  } catch (error) {
    if (error instanceof InvalidMessageError) return { ...ids, result: error }
    if (error instanceof FrameKeyError)
      return { ...ids, result: new InvalidMessageError('(result)', error.message) }
    throw error
  }
}
