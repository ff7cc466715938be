import type { ServerMetrics, UploadTransport } from './server-metrics.ts'
import type { recordingLimits } from '../protocol/defaults.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import type { Logger } from '../protocol/logger.ts'
import { parseJsonMessage } from '../protocol/schemas.ts'
import { type DiskQuota, StorageFullError } from './disk-quota.ts'
import { MediaProcessingError } from './media-pipeline.ts'
import { type ProcessingPool, ServerBusyError } from './processing.ts'
import {
  OffsetMismatchError,
  RecordingAccessError,
  RecordingPublishedError,
  type RecordingStore,
} from './recording-store.ts'
import { decodeChunk, type ToRecorder, toServerSchema, type UploadErrorCode } from './upload-protocol.ts'

/** One recorder's connection as the server sees it, whatever carries it. */
export interface UploadChannel {
  /** Sends an answer (JSON text); dropped once the connection is gone. */
  send(text: string): void
  /** Ends the connection, with the reason's code. */
  close(reason: string): void
  /** Stops reading (TCP backpressure); a data channel cannot, and ignores it. */
  pause(): void
  resume(): void
  /**
   * The recorder said a valid hello: the transport may carry whole chunks from now on (a WebSocket
   * takes only small frames before, refused at their header).
   */
  admit?(): void
  /** What carries it (metrics count bytes by transport). */
  readonly transport: UploadTransport
}

/** A connection taken by the server: the transport feeds it its messages, and says when it closed. */
export interface UploadSession {
  /** One message of the connection, text (a control message) or binary (a chunk). */
  receive(data: Uint8Array, binary: boolean): void
  /** The transport closed: the session's timers stop and its recording is let go. */
  closed(): void
}

/** The recording would pass the server's size limit for one recording. */
export class RecordingTooLargeError extends CrowdmeshError {}

/** The limits an upload session applies (from `recordingLimits`). */
export type UploadLimits = Record<
  keyof Pick<
    typeof recordingLimits,
    'maxPreHelloBytes' | 'helloTimeoutMs' | 'uploadIdleTimeoutMs' | 'maxRecordingBytes'
  >,
  number
>

/** What upload sessions use. */
export interface UploadSessionComponents {
  store: RecordingStore
  processing: ProcessingPool
  quota: DiskQuota
  logger: Logger
  /** A connection said hello for this recording (counted, so the sweep leaves it alone). */
  joined(id: string): void
  /** That connection is gone. */
  left(id: string): void
  metrics?: ServerMetrics
}

/** Messages a connection may have waiting before it is cut off (a recorder ignoring its window). */
const maxQueuedMessages = 256

/**
 * Takes recorders' connections, on any transport: hello (within `helloTimeoutMs`, in a small
 * message), then chunks and publish, answered in order; a connection quiet for
 * `uploadIdleTimeoutMs` is closed. Before a chunk is stored, it must start at the recording's end,
 * fit its size limit and the server's storage, and the recording's processing must run (or start:
 * `busy` past the server's cap). A second publish answers what the first did, and does nothing.
 */
export function uploadSessions(
  limits: UploadLimits,
  components: UploadSessionComponents,
): (channel: UploadChannel) => UploadSession {
  const { store, processing, quota, logger: log } = components

  return (channel) => {
    let recording: string | undefined
    // Messages are handled one at a time, in arrival order; the transport is paused while a backlog
    // waits, so a fast recorder cannot queue unbounded work (backpressure through TCP). A transport
    // that cannot pause (a data channel) is closed past a hard limit: the recorder's window keeps
    // an honest one far below it.
    let queue = Promise.resolve()
    let pending = 0
    let closed = false
    const send = (message: ToRecorder) => channel.send(JSON.stringify(message))
    const helloTimer = setTimeout(() => end('hello-timeout'), limits.helloTimeoutMs)
    // Idle means nothing to do: no message came, and none is being handled (a publish may take long).
    let idleTimer: NodeJS.Timeout | undefined
    const armIdle = () => {
      clearTimeout(idleTimer)
      if (!closed && recording !== undefined && pending === 0)
        idleTimer = setTimeout(() => end('idle-timeout'), limits.uploadIdleTimeoutMs)
    }

    /** The session is over: timers stop, the recording is let go. */
    const finish = () => {
      closed = true
      clearTimeout(helloTimer)
      clearTimeout(idleTimer)
      if (recording !== undefined) components.left(recording)
      recording = undefined
    }
    const end = (reason: string) => {
      if (closed) return
      finish()
      channel.close(reason)
    }

    const hello = async (id: string, token: string) => {
      if (recording !== undefined) throw new RecordingAccessError('this connection said hello already')
      const { offset } = await store.authorize(id, token)
      if (closed) return
      recording = id
      components.joined(id)
      components.metrics?.uploadStarted(channel.transport)
      clearTimeout(helloTimer)
      channel.admit?.()
      send({ type: 'ready', offset })
    }

    const publish = async (id: string, bytes: number) => {
      const { meta, offset } = await store.state(id)
      // Published already: the answer it had, and no work (nothing is processed or written again).
      if (meta.state === 'published')
        return send({ type: 'published', shareId: meta.shareId, bytes: meta.finalBytes ?? offset })
      if (offset !== bytes) throw new OffsetMismatchError(offset, bytes)
      // Every byte is here: let the pipeline finish its backlog, then the share link shows it.
      await processing.finish(id, meta.mimeType, bytes)
      const published = await store.publish(id, bytes)
      components.metrics?.recordingPublished()
      send({ type: 'published', shareId: published.shareId, bytes: published.finalBytes ?? bytes })
    }

    const chunk = async (id: string, data: Uint8Array) => {
      const { seq, offset, data: bytes } = decodeChunk(data)
      const { meta, offset: end } = await store.state(id)
      if (meta.state !== 'recording') throw new RecordingPublishedError()
      // A chunk at the wrong place is answered, not fatal: the recorder resends from `expected`.
      if (offset !== end)
        return send({
          type: 'error',
          code: 'offset-mismatch',
          message: new OffsetMismatchError(end, offset).message,
          expected: end,
          seq,
        })
      if (offset + bytes.length > limits.maxRecordingBytes)
        throw new RecordingTooLargeError(
          `the recording would pass ${limits.maxRecordingBytes} bytes, the most this server keeps of one recording`,
        )
      await quota.check(bytes.length)
      await processing.feed(id, meta.mimeType)
      const stored = await store.append(id, offset, bytes)
      quota.add(bytes.length)
      components.metrics?.received(channel.transport, bytes.length)
      send({ type: 'ack', seq, offset: stored })
    }

    const receive = async (data: Uint8Array, isBinary: boolean) => {
      if (!isBinary) {
        const message = parseJsonMessage(toServerSchema, new TextDecoder().decode(data))
        if (message.type === 'hello') return hello(message.recording, message.token)
        if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
        return publish(recording, message.bytes)
      }
      if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
      return chunk(recording, data)
    }

    const refuse = (error: unknown) => {
      const code = codeOf(error)
      components.metrics?.uploadRefused(code)
      if (code === 'internal') log.error(`upload failed: ${(error as Error).stack ?? String(error)}`)
      send({
        type: 'error',
        code,
        message: code === 'internal' ? 'internal error' : (error as Error).message,
        ...(error instanceof OffsetMismatchError && { expected: error.expected }),
      })
      // What the recorder can act on leaves the connection open: resend from `expected`, publish
      // what is stored, retry when not busy. A recorder that is not authorised, or breaks the
      // protocol, is disconnected; the bytes it had delivered stay, and it can reconnect and resume.
      if (!keepsConnection.has(code)) end(code)
    }

    return {
      receive(data, isBinary) {
        if (closed) return
        // A data channel's message arrives whole, up to its SCTP limit, however large (a WebSocket's
        // was refused at its header): refuse it before keeping any of it, and say why, since a data
        // channel's close carries no reason.
        if (recording === undefined && data.length > limits.maxPreHelloBytes) {
          send({
            type: 'error',
            code: 'too-large',
            message: `a message before hello may be at most ${limits.maxPreHelloBytes} bytes`,
          })
          return end('too-large')
        }
        clearTimeout(idleTimer)
        // The data is the transport's buffer: keep a copy while it waits its turn.
        const message = data.slice()
        if (++pending > 8) channel.pause()
        if (pending > maxQueuedMessages) return end('too-many-messages')
        queue = queue
          .then(() => (closed ? undefined : receive(message, isBinary)))
          .catch((error: unknown) => refuse(error))
          .finally(() => {
            if (--pending <= 8) channel.resume()
            armIdle()
          })
      },
      closed: finish,
    }
  }
}

/** Codes after which the connection stays open. */
const keepsConnection = new Set<UploadErrorCode>([
  'offset-mismatch',
  'invalid-media',
  'too-large',
  'storage-full',
  'busy',
])

/** The protocol's code for a refusal. */
function codeOf(error: unknown): UploadErrorCode {
  if (error instanceof MediaProcessingError) return 'invalid-media'
  if (error instanceof RecordingPublishedError) return 'published'
  if (error instanceof RecordingAccessError) return 'unauthorized'
  if (error instanceof OffsetMismatchError) return 'offset-mismatch'
  if (error instanceof RecordingTooLargeError) return 'too-large'
  if (error instanceof StorageFullError) return 'storage-full'
  if (error instanceof ServerBusyError) return 'busy'
  if (error instanceof CrowdmeshError) return 'invalid-message'
  return 'internal'
}
