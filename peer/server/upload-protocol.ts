import { z } from 'zod'
import { InvalidMessageError } from '../protocol/errors.ts'

/*
 * The recording upload protocol, the same over a WebRTC data channel and over a WebSocket: the
 * recorder says hello with the recording's write token and learns where the server's bytes end; it
 * sends chunks, each with a sequence number and the byte offset it starts at; the server answers
 * each with the new end once the chunk is durable. A chunk that does not start at the server's end
 * is refused with that end (tus's 409), so gaps and overlaps cannot happen; the recorder resends
 * from there. Publish names the total length, so the server knows it holds every byte.
 */

/**
 * What a recorder signals to the server peer (through the signaling relay, beside simple-peer's
 * offers, answers and candidates) when it gives up a negotiation, so its peer there goes at once.
 */
export const RECORDER_BYE = 'crowdmesh-bye'

/** Largest chunk: a second of recording at 8 Mbit/s fits. */
export const maxChunkBytes = 1024 * 1024
/** Bytes before a chunk's data: sequence u32, offset f64 (little-endian; exact to 2^53 bytes). */
export const chunkHeaderBytes = 12

const id = z.string().regex(/^[\w-]{22}$/)

/** Recorder → server control messages (JSON text). */
export const toServerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), recording: id, token: z.string().min(1).max(200) }),
  z.object({ type: z.literal('publish'), bytes: z.number().int().min(0) }),
])
export type ToServer = z.infer<typeof toServerSchema>

/**
 * Why the server refused something. `busy` (too many recordings are being processed) is worth
 * retrying shortly; `offset-mismatch` says where to resend from; the others are final for the upload.
 */
export const uploadErrorCodes = [
  'unauthorized',
  'offset-mismatch',
  'invalid-message',
  /** The recording would pass the server's size limit for one recording. */
  'too-large',
  /** The server's storage for recordings is full (its quota, or its disk's reserve). */
  'storage-full',
  'busy',
  'published',
  'invalid-media',
  'internal',
] as const
/** One of `uploadErrorCodes`. */
export type UploadErrorCode = (typeof uploadErrorCodes)[number]

/** Server → recorder messages (JSON text). */
export const toRecorderSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready'), offset: z.number().int().min(0) }),
  z.object({ type: z.literal('ack'), seq: z.number().int().min(0), offset: z.number().int().min(0) }),
  z.object({ type: z.literal('published'), shareId: id, bytes: z.number().int().min(0) }),
  z.object({
    type: z.literal('error'),
    code: z.enum(uploadErrorCodes),
    message: z.string().max(1000),
    /** With offset-mismatch: where the server's bytes end, to resend from. */
    expected: z.number().int().min(0).optional(),
    seq: z.number().int().min(0).optional(),
  }),
])
export type ToRecorder = z.infer<typeof toRecorderSchema>

/** A chunk as sent: header and data in one message. */
export function encodeChunk(seq: number, offset: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(chunkHeaderBytes + data.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, seq, true)
  view.setFloat64(4, offset, true)
  out.set(data, chunkHeaderBytes)
  return out
}

/** Reads a chunk message; anything malformed or over `maxChunkBytes` throws `InvalidMessageError`. */
export function decodeChunk(message: Uint8Array): { seq: number; offset: number; data: Uint8Array } {
  if (message.length < chunkHeaderBytes)
    throw new InvalidMessageError('(chunk)', `${message.length} bytes is shorter than a chunk header`)
  if (message.length - chunkHeaderBytes > maxChunkBytes)
    throw new InvalidMessageError('(chunk)', `over ${maxChunkBytes} bytes of data`)
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength)
  const offset = view.getFloat64(4, true)
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new InvalidMessageError('(chunk).offset', `${offset} is not a byte offset`)
  return { seq: view.getUint32(0, true), offset, data: message.subarray(chunkHeaderBytes) }
}
