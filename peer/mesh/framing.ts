import type { Stream } from '@libp2p/interface'
import { meshDefaults, messageLimits } from '../protocol/defaults.ts'
import { AbortError, CrowdmeshError, InvalidMessageError, MessageTooLargeError } from '../protocol/errors.ts'

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

/**
 * The kinds a receiver accepts now and the largest payload of each: a kind left out is refused at
 * its header. A coordinator accepts only small control frames until a hello succeeded.
 */
export type FrameLimits = Readonly<Partial<Record<FrameKind, number>>>

/** Before a work stream's hello: one small control frame, nothing binary. */
export const helloFrameLimits: FrameLimits = { [FrameKind.control]: meshDefaults.maxHelloBytes }

/** A frame of a kind the receiver does not accept now (a binary frame before hello). */
export class FrameKindRefusedError extends CrowdmeshError {
  readonly kind: FrameKind
  constructor(kind: FrameKind, when: string) {
    super(`a ${kind === FrameKind.binary ? 'binary' : 'control'} frame is not accepted ${when}`)
    this.kind = kind
  }
}

/** A receiver would buffer more unfinished frames than its budget allows. */
export class ReceiveBudgetError extends CrowdmeshError {
  constructor(used: number, limit: number) {
    super(
      `receiving too much at once (${used} bytes of unfinished frames, limit ${limit}); try again shortly`,
    )
  }
}

/**
 * Bytes of unfinished frames a receiver holds, shared by all its streams: one peer, or many peers
 * together, cannot make it buffer more than `limit`.
 */
export class ReceiveBudget {
  readonly limit: number
  private held = 0

  constructor(limit: number) {
    this.limit = limit
  }

  /** Bytes held now. */
  get used(): number {
    return this.held
  }

  /** Takes `bytes` if they fit; throws `ReceiveBudgetError` otherwise (nothing is taken). */
  take(bytes: number): void {
    if (this.held + bytes > this.limit) throw new ReceiveBudgetError(this.held + bytes, this.limit)
    this.held += bytes
  }

  /** Gives back `bytes` taken earlier. */
  give(bytes: number): void {
    this.held = Math.max(0, this.held - bytes)
  }
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
 * so the property tests drive it with any split of any frame sequence. Each header is checked
 * against the limits in force when it is decoded (`limits`, which its owner may change between
 * frames), before a byte of its payload is kept beyond what already arrived.
 */
export class FrameDecoder {
  /** The kinds accepted now, and their largest payloads; each within `frameLimits`. */
  limits: FrameLimits
  /** Says when the current limits apply, for the refusal's message (e.g. "before hello"). */
  limitsLabel: string
  private pieces: Uint8Array[] = []
  private buffered = 0
  private header: { kind: FrameKind; length: number } | undefined

  constructor(limits: FrameLimits = frameLimits, limitsLabel = 'on this stream') {
    this.limits = limits
    this.limitsLabel = limitsLabel
  }

  /** Adds received bytes; returns every frame they complete. Throws on a refused kind or size. */
  push(bytes: Uint8Array): Frame[] {
    this.append(bytes)
    const frames: Frame[] = []
    for (let frame = this.next(); frame !== undefined; frame = this.next()) frames.push(frame)
    return frames
  }

  /** Adds received bytes without decoding them. */
  append(bytes: Uint8Array): void {
    if (bytes.length === 0) return
    this.pieces.push(bytes)
    this.buffered += bytes.length
  }

  /**
   * The next whole frame, if the bytes so far complete one. One at a time, so a frame that changes
   * the limits (a hello) takes effect before the next header is read.
   */
  next(): Frame | undefined {
    if (this.header === undefined) {
      if (this.buffered < HEADER_BYTES) return undefined
      const head = this.take(HEADER_BYTES)
      const kind = head[0]!
      if (kind !== FrameKind.control && kind !== FrameKind.binary)
        throw new InvalidMessageError('(frame)', `unknown frame kind ${kind}`)
      const length = new DataView(head.buffer, head.byteOffset, HEADER_BYTES).getUint32(1, true)
      if (length > frameLimits[kind]) throw new MessageTooLargeError(length, frameLimits[kind])
      const limit = this.limits[kind]
      if (limit === undefined) throw new FrameKindRefusedError(kind, this.limitsLabel)
      if (length > limit) throw new MessageTooLargeError(length, limit)
      this.header = { kind, length }
    }
    if (this.buffered < this.header.length) return undefined
    const frame = { kind: this.header.kind, payload: this.take(this.header.length) }
    this.header = undefined
    return frame
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

/** Options of a framed stream's receiving side. */
export interface FramedStreamInit {
  /** Kinds and sizes accepted at first (default: every kind up to `frameLimits`); see `setLimits`. */
  limits?: FrameLimits
  /** When those first limits apply, for refusals (e.g. "before hello"). */
  limitsLabel?: string
  /** Shared bound on the bytes of unfinished frames this stream may hold with its siblings. */
  budget?: ReceiveBudget
}

/**
 * Frames over one libp2p stream, both ways. Writes are queued so frames never interleave; each is
 * sent in pieces of `meshDefaults.chunkBytes`, waiting for the stream to drain whenever it says its
 * buffer is full (backpressure reaches the writer as a slower `send`). Reading yields whole frames.
 */
export class FramedStream {
  readonly stream: Stream
  private readonly decoder: FrameDecoder
  private readonly budget: ReceiveBudget | undefined
  private writing: Promise<void> = Promise.resolve()

  constructor(stream: Stream, init: FramedStreamInit = {}) {
    this.stream = stream
    this.decoder = new FrameDecoder(init.limits, init.limitsLabel)
    this.budget = init.budget
  }

  /** Changes the kinds and sizes accepted from the next frame header on (a welcomed peer's). */
  setLimits(limits: FrameLimits, label = 'on this stream'): void {
    this.decoder.limits = limits
    this.decoder.limitsLabel = label
  }

  /** Bytes received that do not make a whole frame yet. */
  get pending(): number {
    return this.decoder.pending
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

  /**
   * Whole frames as they arrive, one at a time (the limits in force when each header is read apply
   * to it); ends when the remote closes; throws on a framing violation or when the shared budget
   * cannot hold what arrived. What this stream holds of the budget is given back as frames complete
   * and when reading ends.
   */
  async *frames(): AsyncGenerator<Frame> {
    const budget = this.budget
    let held = 0
    try {
      for await (const chunk of this.stream) {
        for (const piece of pieces(chunk)) {
          budget?.take(piece.length)
          held += piece.length
          this.decoder.append(piece)
          for (let frame = this.decoder.next(); frame !== undefined; frame = this.decoder.next()) {
            budget?.give(held - this.decoder.pending)
            held = this.decoder.pending
            yield frame
          }
          // A header alone releases nothing; bytes of a refused frame never stay held.
          budget?.give(held - this.decoder.pending)
          held = this.decoder.pending
        }
      }
      if (this.decoder.pending > 0)
        throw new InvalidMessageError(
          '(frame)',
          `stream ended inside a frame (${this.decoder.pending} bytes)`,
        )
    } finally {
      budget?.give(held)
    }
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
