import { sleep } from '../protocol/clock.ts'
import { recorderDefaults } from '../protocol/defaults.ts'
import { AbortError, CrowdmeshError } from '../protocol/errors.ts'
import { encodeChunk, maxChunkBytes, type ToRecorder } from '../server/upload-protocol.ts'

/*
 * The recorder's side of the upload protocol, independent of the transport: every byte the
 * recorder produces gets its offset at once and is kept until the server acknowledges it (here in
 * memory; a `ChunkJournal` can also keep it on disk, IndexedDB in a browser, so a reload loses
 * nothing). On each connection the server says where its bytes end; everything after that is sent
 * again, in order, a bounded window at a time. A dropped connection is reconnected with back-off
 * and resumes from the server's end, so gaps and overlaps cannot happen whatever breaks.
 */

/** The upload was refused for good (a wrong token, a published recording): retrying cannot help. */
export class UploadRefusedError extends CrowdmeshError {}

/** The server is processing as many recordings as it may: the upload retries, waiting longer each time. */
export class UploadBusyError extends CrowdmeshError {}

/** The uploader's error for a server's refusal: `busy` is retried, the others are final. */
function refusal(answer: { code: string; message: string }): CrowdmeshError {
  const text = `${answer.code}: ${answer.message}`
  return answer.code === 'busy' ? new UploadBusyError(text) : new UploadRefusedError(text)
}

/** One connection to the server peer, WebRTC data channel or WebSocket. */
export interface UploadConnection {
  /** What carries it: the page shows it. */
  readonly kind: 'webrtc' | 'websocket'
  /** Sends a control message (JSON text) or a chunk (binary). */
  send(message: string | Uint8Array): void
  /** Bytes handed to the transport and not yet sent (for backpressure). */
  readonly bufferedAmount: number
  /** The server's answers, in order; ends when the connection closes. */
  messages(): AsyncIterable<ToRecorder>
  close(): void
}

/** Opens a connection; rejects if it cannot within the signal's time. */
export type Connect = (signal: AbortSignal) => Promise<UploadConnection>

/** Keeps the recorder's bytes until they are acknowledged (memory by default; IndexedDB in a browser). */
export interface ChunkJournal {
  put(offset: number, bytes: Uint8Array): Promise<void> | void
  /** Everything before `offset` is acknowledged: it may go. */
  dropBefore(offset: number): Promise<void> | void
}

/** Options of an uploader; each defaults as documented. */
export interface UploaderInit {
  recording: string
  token: string
  /** How to reach the server; a list is tried in order (WebRTC first, then WebSocket). */
  connect: Connect | readonly Connect[]
  journal?: ChunkJournal
  /**
   * Largest chunk (default 64 KiB): every browser's data channel carries a 64 KiB message, and a
   * chunk is acknowledged (made durable) as a unit.
   */
  chunkBytes?: number
  /** Bytes in flight before waiting for acknowledgements (default 1 MiB). */
  windowBytes?: number
  /** How long a connection may take to open (default 4 s), before the next transport is tried. */
  connectTimeoutMs?: number
  /** With bytes in flight and no answer for this long (default 5 s), the connection is reopened. */
  stallTimeoutMs?: number
  /**
   * Bytes kept from an earlier page's life (the journal's, after a reload), in order: the upload
   * goes on from them. The recording cannot grow past them, only be published.
   */
  restored?: readonly { offset: number; bytes: Uint8Array }[]
  /** Called when something changes (the page shows it; QoS reads it). */
  onProgress?: (progress: UploadProgress) => void
}

/** Where an upload stands. */
export interface UploadProgress {
  /** Bytes the recorder produced. */
  produced: number
  /** Bytes the server holds durably. */
  acknowledged: number
  /** The transport in use (its index in `connect`), or -1 while disconnected. */
  transport: number
  /** What carries it, while connected. */
  transportKind: UploadConnection['kind'] | undefined
  connected: boolean
  /** Reconnections so far. */
  reconnects: number
}

interface Pending {
  offset: number
  bytes: Uint8Array
}

/** Uploads one recording's bytes as they are produced; `publish` resolves once the server has all. */
export class Uploader {
  private readonly init: UploaderInit
  private readonly connects: readonly Connect[]
  /** Produced but not acknowledged, in order. */
  private readonly pending: Pending[] = []
  private produced = 0
  private acknowledged = 0
  private transport = -1
  private transportKind: UploadConnection['kind'] | undefined
  private reconnects = 0
  private finalBytes: number | undefined
  private published: PromiseWithResolvers<string> | undefined
  private wake: (() => void) | undefined
  private running: Promise<void> | undefined
  /** Why the upload ended for good, once it has. */
  private failure: Error | undefined
  private readonly controller = new AbortController()
  private seq = 0
  /** Restored with nothing left to send: the server's end is the recording's end. */
  private readonly adoptServerEnd: boolean

  constructor(init: UploaderInit) {
    this.init = init
    this.connects = Array.isArray(init.connect) ? init.connect : [init.connect as Connect]
    this.adoptServerEnd = init.restored !== undefined && init.restored.length === 0
    for (const entry of init.restored ?? []) {
      if (this.pending.length === 0) this.produced = this.acknowledged = entry.offset
      if (entry.offset !== this.produced)
        throw new CrowdmeshError(`the restored bytes have a gap at ${this.produced}–${entry.offset}`)
      this.pending.push(entry)
      this.produced += entry.bytes.length
    }
  }

  /** Where the upload stands. */
  get progress(): UploadProgress {
    return {
      produced: this.produced,
      acknowledged: this.acknowledged,
      transport: this.transport,
      transportKind: this.transportKind,
      connected: this.transport >= 0,
      reconnects: this.reconnects,
    }
  }

  /** Adds the recorder's next bytes (a MediaRecorder chunk); they go out as soon as the window allows. */
  async append(bytes: Uint8Array): Promise<void> {
    if (this.failure !== undefined) throw this.failure
    if (this.finalBytes !== undefined) throw new CrowdmeshError('the recording is published: no more bytes')
    const size = Math.min(maxChunkBytes, this.init.chunkBytes ?? recorderDefaults.chunkBytes)
    for (let start = 0; start < bytes.length; start += size) {
      const piece = bytes.subarray(start, Math.min(start + size, bytes.length))
      const entry = { offset: this.produced, bytes: piece }
      this.produced += piece.length
      await this.init.journal?.put(entry.offset, piece)
      this.pending.push(entry)
    }
    this.running ??= this.run()
    this.poke()
  }

  /** Ends the recording: resolves with the share id once the server holds every byte and published. */
  publish(): Promise<string> {
    this.finalBytes = this.produced
    this.published ??= Promise.withResolvers<string>()
    if (this.failure !== undefined) this.published.reject(this.failure)
    this.running ??= this.run()
    this.poke()
    return this.published.promise
  }

  /** Stops uploading (what is unacknowledged stays in the journal for a later uploader). */
  stop(): void {
    this.controller.abort()
    this.poke()
  }

  private poke(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private report(): void {
    this.init.onProgress?.(this.progress)
  }

  /** Connects, uploads until the connection breaks, and again, until published or stopped. */
  private async run(): Promise<void> {
    const signal = this.controller.signal
    let failures = 0
    while (!signal.aborted) {
      let connection: UploadConnection | undefined
      for (const [i, connect] of this.connects.entries()) {
        try {
          connection = await connect(
            AbortSignal.any([
              signal,
              AbortSignal.timeout(this.init.connectTimeoutMs ?? recorderDefaults.connectTimeoutMs),
            ]),
          )
          this.transport = i
          this.transportKind = connection.kind
          break
        } catch {
          continue
        }
      }
      if (connection === undefined) {
        if (signal.aborted) break
        await sleep(Math.min(5000, 250 * 2 ** failures++), signal)
        continue
      }
      try {
        const done = await this.session(connection, signal)
        if (done) return
        failures = 0
      } catch (error) {
        if (error instanceof UploadRefusedError) {
          this.failure = error
          this.published?.reject(error)
          return
        }
      } finally {
        connection.close()
        this.transport = -1
        this.transportKind = undefined
        this.report()
      }
      if (signal.aborted) break
      this.reconnects++
      await sleep(Math.min(5000, 250 * 2 ** failures++), signal)
    }
    this.failure = new AbortError('the upload was stopped')
    this.published?.reject(this.failure)
  }

  /** One connection's life: hello, resend from the server's end, then follow the recorder. */
  private async session(connection: UploadConnection, signal: AbortSignal): Promise<boolean> {
    const answers = connection.messages()[Symbol.asyncIterator]()
    const next = async (): Promise<ToRecorder> => {
      const result: IteratorResult<ToRecorder> = await answers.next()
      if (result.done === true) throw new CrowdmeshError('connection closed')
      return result.value
    }
    connection.send(JSON.stringify({ type: 'hello', recording: this.init.recording, token: this.init.token }))
    const ready = await next()
    if (ready.type === 'error') throw refusal(ready)
    if (ready.type !== 'ready') throw new CrowdmeshError(`unexpected ${ready.type} before ready`)
    if (this.adoptServerEnd && this.pending.length === 0 && ready.offset > this.produced) {
      this.produced = this.acknowledged = ready.offset
      if (this.finalBytes !== undefined) this.finalBytes = ready.offset
    }
    await this.acknowledge(ready.offset)
    this.report()
    // Sending and reading run side by side: acknowledgements open the window.
    let sentTo = this.acknowledged
    let publishSent = false
    let publishedNow = false
    let failed: Error | undefined
    let lastAnswer = Date.now()
    const window = this.init.windowBytes ?? recorderDefaults.windowBytes
    const stallMs = this.init.stallTimeoutMs ?? recorderDefaults.stallTimeoutMs
    // Its end is signalled through `failed` and `publishedNow` (and a poke), not awaited.
    void (async () => {
      try {
        for (;;) {
          const answer = await next()
          lastAnswer = Date.now()
          if (answer.type === 'ack') await this.acknowledge(answer.offset)
          else if (answer.type === 'published') {
            publishedNow = true
            this.published?.resolve(answer.shareId)
            this.poke()
            return
          } else if (answer.type === 'error') {
            if (answer.code === 'offset-mismatch' && answer.expected !== undefined) {
              // The server's end is elsewhere than we thought: resend from there.
              await this.acknowledge(answer.expected)
              sentTo = this.acknowledged
            } else throw refusal(answer)
          }
          this.report()
          this.poke()
        }
      } catch (error) {
        failed = error as Error
        this.poke()
      }
    })()
    while (!signal.aborted && failed === undefined && !publishedNow) {
      // Send what the window allows, from where the server's bytes end.
      for (const entry of this.pending) {
        const end = entry.offset + entry.bytes.length
        if (end <= sentTo) continue
        if (sentTo - this.acknowledged >= window || connection.bufferedAmount > window) break
        // The wait for an answer starts with the first byte in flight, not at the last answer.
        if (sentTo === this.acknowledged) lastAnswer = Date.now()
        const from = Math.max(sentTo, entry.offset) - entry.offset
        connection.send(encodeChunk(this.seq++, entry.offset + from, entry.bytes.subarray(from)))
        sentTo = end
      }
      if (this.finalBytes !== undefined && this.acknowledged === this.finalBytes && !publishSent) {
        connection.send(JSON.stringify({ type: 'publish', bytes: this.finalBytes }))
        publishSent = true
      }
      // Woken by an answer or new bytes; a second's tick checks the server is still answering.
      await new Promise<void>((resolve) => {
        const tick = setTimeout(resolve, 1000)
        this.wake = () => {
          clearTimeout(tick)
          resolve()
        }
      })
      if (sentTo > this.acknowledged && Date.now() - lastAnswer > stallMs)
        failed = new CrowdmeshError(`no answer from the server for ${stallMs / 1000} s`)
    }
    if (publishedNow) return true
    // A refusal ends the upload; `busy` ends this connection, and the next waits longer.
    if (failed instanceof UploadRefusedError || failed instanceof UploadBusyError) throw failed
    return false
  }

  /** The server holds everything before `offset` durably: drop it here and in the journal. */
  private async acknowledge(offset: number): Promise<void> {
    // A server that now ends before bytes it acknowledged lost them: they are gone here too.
    if (offset < this.acknowledged)
      throw new UploadRefusedError(
        `the server lost acknowledged bytes (it ends at ${offset}, had ${this.acknowledged})`,
      )
    this.acknowledged = Math.min(offset, this.produced)
    while (this.pending.length > 0 && this.pending[0]!.offset + this.pending[0]!.bytes.length <= offset)
      this.pending.shift()
    await this.init.journal?.dropBefore(offset)
  }
}
