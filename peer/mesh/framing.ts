import type { Stream } from '@libp2p/interface'
import { meshDefaults, messageLimits } from '../protocol/defaults.ts'
import { AbortError, InvalidMessageError, MessageTooLargeError } from '../protocol/errors.ts'

/**
 * Message framing over a libp2p stream. A stream is a byte stream: messages need boundaries, and a
 * block result (up to megabytes) must cross a WebRTC data channel whose messages are capped at
 * 16 KiB. Each frame is a 5-byte header — kind (u8) and payload length (u32, little-endian) — then
 * the payload. The length is checked against the kind's limit before a byte of the payload is
 * buffered, so an oversized frame costs its sender, not the receiver.
 */

/** What a frame carries. */
export const FrameKind = {
  /** A JSON control message (UTF-8), at most `messageLimits.maxControlBytes`. */
  control: 1,
  /** Binary data (a block result), at most `meshDefaults.maxBinaryFrameBytes`. */
  binary: 2,
} as const
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind]

/** One decoded frame. */
export interface Frame {
  kind: FrameKind
  payload: Uint8Array
}

const HEADER_BYTES = 5

/** The largest payload of each kind. */
export const frameLimits: Readonly<Record<FrameKind, number>> = {
  [FrameKind.control]: messageLimits.maxControlBytes,
  [FrameKind.binary]: meshDefaults.maxBinaryFrameBytes,
}

/** Encodes one frame (header and payload in one buffer). */
export function encodeFrame(kind: FrameKind, payload: Uint8Array): Uint8Array {
  const limit = frameLimits[kind]
  if (payload.length > limit) throw new MessageTooLargeError(payload.length, limit)
  const out = new Uint8Array(HEADER_BYTES + payload.length)
  out[0] = kind
  new DataView(out.buffer).setUint32(1, payload.length, true)
  out.set(payload, HEADER_BYTES)
  return out
}

/**
 * Reassembles frames from the pieces a stream delivers, whatever their boundaries. Pure: no I/O,
 * so the property tests drive it with any split of any frame sequence.
 */
export class FrameDecoder {
  private pieces: Uint8Array[] = []
  private buffered = 0
  private header: { kind: FrameKind; length: number } | undefined

  /** Adds received bytes; returns the frames they complete. Throws on an unknown kind or an oversized frame. */
  push(bytes: Uint8Array): Frame[] {
    if (bytes.length > 0) {
      this.pieces.push(bytes)
      this.buffered += bytes.length
    }
    const frames: Frame[] = []
    for (;;) {
      if (this.header === undefined) {
        if (this.buffered < HEADER_BYTES) return frames
        const head = this.take(HEADER_BYTES)
        const kind = head[0]!
        if (kind !== FrameKind.control && kind !== FrameKind.binary)
          throw new InvalidMessageError('(frame)', `unknown frame kind ${kind}`)
        const length = new DataView(head.buffer, head.byteOffset, HEADER_BYTES).getUint32(1, true)
        if (length > frameLimits[kind]) throw new MessageTooLargeError(length, frameLimits[kind])
        this.header = { kind, length }
      }
      if (this.buffered < this.header.length) return frames
      frames.push({ kind: this.header.kind, payload: this.take(this.header.length) })
      this.header = undefined
    }
  }

  /** Bytes received that do not make a whole frame yet. */
  get pending(): number {
    return this.buffered
  }

  private take(n: number): Uint8Array {
    const first = this.pieces[0]
    if (first !== undefined && first.length >= n) {
      // The common case (a frame within one piece) needs no copy.
      const out = first.subarray(0, n)
      if (first.length === n) this.pieces.shift()
      else this.pieces[0] = first.subarray(n)
      this.buffered -= n
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const piece = this.pieces[0]!
      const used = Math.min(piece.length, n - filled)
      out.set(piece.subarray(0, used), filled)
      filled += used
      if (used === piece.length) this.pieces.shift()
      else this.pieces[0] = piece.subarray(used)
    }
    this.buffered -= n
    return out
  }
}

/**
 * Frames over one libp2p stream, both ways. Writes are queued so frames never interleave; each is
 * sent in pieces of `meshDefaults.chunkBytes`, waiting for the stream to drain whenever it says its
 * buffer is full (backpressure reaches the writer as a slower `send`). Reading yields whole frames.
 */
export class FramedStream {
  readonly stream: Stream
  private readonly decoder = new FrameDecoder()
  private writing: Promise<void> = Promise.resolve()

  constructor(stream: Stream) {
    this.stream = stream
  }

  /** Sends one frame; resolves once all of it is handed to the stream. Rejects if the stream closes. */
  send(kind: FrameKind, payload: Uint8Array, signal?: AbortSignal): Promise<void> {
    const frame = encodeFrame(kind, payload)
    const next = this.writing.then(() => this.write(frame, signal))
    // A failed write must not wedge the queue for the frames after it.
    this.writing = next.catch(() => {})
    return next
  }

  /** Sends a JSON control message. */
  sendJson(message: unknown, signal?: AbortSignal): Promise<void> {
    return this.send(FrameKind.control, new TextEncoder().encode(JSON.stringify(message)), signal)
  }

  /** Whole frames as they arrive; ends when the remote closes; throws on a framing violation. */
  async *frames(): AsyncGenerator<Frame> {
    for await (const chunk of this.stream) {
      for (const piece of pieces(chunk)) for (const frame of this.decoder.push(piece)) yield frame
    }
    if (this.decoder.pending > 0)
      throw new InvalidMessageError('(frame)', `stream ended inside a frame (${this.decoder.pending} bytes)`)
  }

  /** Closes the writing side gracefully once queued frames are out. */
  async close(): Promise<void> {
    await this.writing
    await this.stream.close().catch(() => this.stream.abort(new Error('close failed')))
  }

  private async write(frame: Uint8Array, signal: AbortSignal | undefined): Promise<void> {
    const size = meshDefaults.chunkBytes
    for (let offset = 0; offset < frame.length; offset += size) {
      if (signal?.aborted === true) throw new AbortError()
      if (this.stream.status !== 'open')
        throw new InvalidMessageError('(stream)', `stream is ${this.stream.status}`)
      if (!this.stream.send(frame.subarray(offset, offset + size)))
        await this.stream.onDrain(signal === undefined ? {} : { signal })
    }
  }
}

function pieces(chunk: Uint8Array | Iterable<Uint8Array>): Iterable<Uint8Array> {
  // A Uint8ArrayList iterates over its pieces.
  return chunk instanceof Uint8Array ? [chunk] : chunk
}
