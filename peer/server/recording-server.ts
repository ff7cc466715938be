import { once } from 'node:events'
import { mkdir, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { WebSocket, WebSocketServer } from 'ws'
import { z } from 'zod'
import { sleep } from '../protocol/clock.ts'
import { CrowdmeshError, InvalidMessageError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { HttpError, readJsonBody, sendJson as json } from '../../signaling/http.ts'
import { parseJsonMessage, parseMessage } from '../protocol/schemas.ts'
import { FragmentIndex } from './mp4-faststart.ts'
import { livePage, sendFaststart, sendRanges, sharePage, writeFaststart } from './share-responses.ts'
import { followFile, MediaProcessingError, pipelineOutputs, runPipeline } from './media-pipeline.ts'
import { type RtcUploads, serveRtcUploads } from './rtc-uploads.ts'
import { type AudioResult, audioOutputs, runAudioStages, type SpeechToText } from './audio-stage.ts'
import { OffsetMismatchError, RecordingAccessError, RecordingStore } from './recording-store.ts'
import {
  chunkHeaderBytes,
  decodeChunk,
  maxChunkBytes,
  type ToRecorder,
  toServerSchema,
} from './upload-protocol.ts'

/** Options of the server peer; each defaults as documented. */
export interface RecordingServerInit {
  /** Folder the recordings live in (created if missing). */
  root: string
  /** Address to listen on (default 127.0.0.1). */
  host?: string
  /** Port (default 0: any free one). */
  port?: number
  /**
   * An operator join link of an event: the server registers with that event's signaling server and
   * takes recorders' uploads over WebRTC data channels too (`rtc-uploads.ts`). Without it, WebSocket only.
   */
  eventLink?: string
  /** The URL recorders reach this server at (default its listening URL). */
  publicUrl?: string
  /** A speech-to-text engine fed each recording's sound as it arrives (none is bundled). */
  speechToText?: SpeechToText
  logger?: Logger
}

/** A running server peer. */
export interface RecordingServer {
  readonly url: string
  readonly store: RecordingStore
  /** Its WebRTC side, with an event link. */
  readonly rtc: RtcUploads | undefined
  /** Takes a recorder's connection on another transport (a WebRTC data channel): feed it its messages. */
  accept(channel: UploadChannel): (data: Uint8Array, binary: boolean) => void
  close(): Promise<void>
}

/** One recorder's connection as the server sees it, whatever carries it. */
export interface UploadChannel {
  /** Sends an answer (JSON text); dropped once the connection is gone. */
  send(text: string): void
  /** Ends the connection, with the reason's code. */
  close(reason: string): void
  /** Stops reading (TCP backpressure); a data channel cannot, and ignores it. */
  pause(): void
  resume(): void
}

/** Messages a connection may have waiting before it is cut off (a recorder ignoring its window). */
const maxQueuedMessages = 256

const createSchema = z.object({ mimeType: z.string().min(1).max(200), live: z.boolean().optional() })

/**
 * The server peer for recordings: `POST /api/recordings` creates one (its id, write token and share
 * id); `WS /api/recordings/upload` takes its bytes with the upload protocol (`upload-protocol.ts`);
 * `GET /v/<shareId>/media` serves a published recording's bytes. Nothing is listable; every id is
 * checked against its pattern before it names a file.
 */
export async function startRecordingServer(init: RecordingServerInit): Promise<RecordingServer> {
  const log = init.logger ?? makeLogger('crowdmesh:server')
  const store = new RecordingStore(init.root)
  const sockets = new WebSocketServer({ noServer: true, maxPayload: chunkHeaderBytes + maxChunkBytes })
  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const status =
        error instanceof HttpError ? error.status : error instanceof InvalidMessageError ? 400 : 500
      if (status === 500) log.error(`request failed: ${(error as Error).stack ?? String(error)}`)
      if (!response.headersSent)
        json(response, status, { error: status === 500 ? 'internal error' : (error as Error).message })
      else response.end()
    })
  })

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    // The recorder's page comes from the signaling server, another origin: creating a recording is
    // open to it (the write token it gets is what guards the upload).
    response.setHeader('access-control-allow-origin', '*')
    if (request.method === 'OPTIONS' && path === '/api/recordings') {
      response.writeHead(204, {
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': 'content-type',
        'access-control-max-age': '600',
      })
      return void response.end()
    }
    if (request.method === 'POST' && path === '/api/recordings') {
      const body = parseMessage(createSchema, await readJsonBody(request, 16 * 1024))
      const created = await store.create(body.mimeType, { live: body.live === true })
      return json(response, 201, {
        ...created,
        uploadPath: '/api/recordings/upload',
        sharePath: `/v/${created.shareId}`,
      })
    }
    const share =
      /^\/v\/([\w-]{22})(?:\/(media|video\.mp4|video\.webm|thumb\.jpg|audio\.opus|audio\.m4a|captions\.vtt|live\.mp4))?$/.exec(
        path,
      )
    if ((request.method === 'GET' || request.method === 'HEAD') && share !== null) {
      const shared = await store.shared(share[1]!)
      if (shared === undefined) throw new HttpError(404, 'no such recording')
      const what = share[2]
      if (shared.meta.state !== 'published') {
        // Live: the page plays the fragmented MP4 as it is written; nothing else is there yet.
        if (what === undefined) {
          response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
          return void response.end(livePage(share[1]!))
        }
        if (what === 'live.mp4') return sendLive(response, shared.meta.id)
        throw new HttpError(404, 'the recording is still being recorded')
      }
      if (what === 'live.mp4') throw new HttpError(404, 'the recording is published: play video.mp4')
      if (what === undefined) {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' })
        const captions = await stat(join(store.folderOf(shared.meta.id), audioOutputs.captions)).catch(
          () => undefined,
        )
        return void response.end(sharePage(share[1]!, captions !== undefined))
      }
      const folder = store.folderOf(shared.meta.id)
      const file =
        what === 'media'
          ? { path: shared.mediaPath, type: shared.meta.mimeType }
          : what === 'video.mp4'
            ? undefined
            : what === 'video.webm'
              ? { path: join(folder, pipelineOutputs.webm), type: 'video/webm' }
              : what === 'thumb.jpg'
                ? { path: join(folder, pipelineOutputs.thumbnail), type: 'image/jpeg' }
                : what === 'captions.vtt'
                  ? { path: join(folder, audioOutputs.captions), type: 'text/vtt; charset=utf-8' }
                  : { path: join(folder, what), type: what === 'audio.opus' ? 'audio/ogg' : 'audio/mp4' }
      if (file === undefined) return sendFaststart(request, response, folder)
      const size = (await stat(file.path).catch(() => undefined))?.size
      if (size === undefined) throw new HttpError(404, `this recording has no ${what}`)
      return sendRanges(request, response, [{ path: file.path, start: 0, length: size }], file.type)
    }
    throw new HttpError(404, `no such resource: ${request.method} ${path}`)
  }

  const pipelines = new Map<
    string,
    { end: number | undefined; done: Promise<void>; audio: Promise<AudioResult>; index: FragmentIndex }
  >()
  const stopping = new AbortController()
  /** The recording's processing pipeline, started with its first connection, following its bytes. */
  function processing(id: string, mimeType = 'video/webm') {
    let pipeline = pipelines.get(id)
    if (pipeline === undefined) {
      const folder = store.folderOf(id)
      const state = {
        end: undefined as number | undefined,
        done: Promise.resolve(),
        audio: Promise.resolve<AudioResult>({ audio: undefined, captions: undefined }),
        index: new FragmentIndex(join(folder, pipelineOutputs.fragmentedMp4)),
      }
      // Each stage reads the recording's file as it grows, at its own pace.
      const follow = () =>
        followFile(store.mediaPath(id), {
          end: () => state.end,
          grew: () => store.grew(id),
          signal: stopping.signal,
        })
      state.done = runPipeline({
        input: follow(),
        folder,
        mimeType,
        signal: stopping.signal,
        index: state.index,
      })
      state.audio = runAudioStages({
        input: follow(),
        folder,
        mimeType,
        signal: stopping.signal,
        speechToText: init.speechToText,
      })
      void state.audio.then((result) => {
        if (result.note !== undefined) log(`recording ${id}: ${result.note}`)
      })
      // Failures are reported at publish; until then nothing waits on it.
      state.done.catch((error: unknown) => log(`processing ${id}: ${(error as Error).message}`))
      pipelines.set(id, state)
      pipeline = state
    }
    const current = pipeline
    return {
      /** Ends the input at `bytes`; resolves once every output is complete, the moov-first MP4 too. */
      async finish(bytes: number) {
        current.end = bytes
        try {
          await current.done
          // The sound is a copy, done with the video; captions may take longer and come when ready.
          if (init.speechToText === undefined) await current.audio
          await writeFaststart(store.folderOf(id), current.index.layout())
        } finally {
          pipelines.delete(id)
        }
      },
    }
  }

  server.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    if (path !== '/api/recordings/upload') return void socket.destroy()
    sockets.handleUpgrade(request, socket, head, (ws) => {
      const receive = accept({
        send: (text) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(text)
        },
        close: (reason) => ws.close(1008, reason),
        pause: () => ws.pause(),
        resume: () => ws.resume(),
      })
      ws.on('message', (data: Buffer, isBinary: boolean) =>
        receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), isBinary),
      )
    })
  })

  /**
   * A live recording's fragmented MP4 from its start, following it as ffmpeg writes it, until the
   * recording is published (or the viewer goes): a `<video>` plays fragmented MP4 as it arrives.
   */
  async function sendLive(response: ServerResponse, id: string): Promise<void> {
    const path = join(store.folderOf(id), pipelineOutputs.fragmentedMp4)
    if ((await stat(path).catch(() => undefined)) === undefined)
      throw new HttpError(404, 'nothing recorded yet')
    response.writeHead(200, { 'content-type': 'video/mp4', 'cache-control': 'no-store' })
    const gone = new AbortController()
    response.once('close', () => gone.abort())
    const signal = AbortSignal.any([gone.signal, stopping.signal])
    const input = followFile(path, {
      // Past the end of what is written, and processing is over: the stream ends.
      end: () => (pipelines.has(id) ? undefined : 0),
      grew: () => sleep(200, signal),
      signal,
    })
    for await (const piece of input) {
      if (!response.write(piece)) await once(response, 'drain', { signal }).catch(() => undefined)
      if (signal.aborted) break
    }
    response.end()
  }

  /** One recorder's connection, on any transport: hello, then chunks and publish, answered in order. */
  function accept(channel: UploadChannel): (data: Uint8Array, binary: boolean) => void {
    let recording: string | undefined
    // Messages are handled one at a time, in arrival order; the transport is paused while a backlog
    // waits, so a fast recorder cannot queue unbounded work (backpressure through TCP). A transport
    // that cannot pause (a data channel) is closed past a hard limit: the recorder's window keeps
    // an honest one far below it.
    let queue = Promise.resolve()
    let pending = 0
    let closed = false
    const send = (message: ToRecorder) => channel.send(JSON.stringify(message))
    const receive = async (data: Uint8Array, isBinary: boolean) => {
      if (!isBinary) {
        const message = parseJsonMessage(toServerSchema, new TextDecoder().decode(data))
        if (message.type === 'hello') {
          const { offset, meta } = await store.authorize(message.recording, message.token)
          recording = message.recording
          if (meta.state === 'recording') processing(recording, meta.mimeType)
          return send({ type: 'ready', offset })
        }
        if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
        const held = await store.offset(recording)
        if (held !== message.bytes) throw new OffsetMismatchError(held, message.bytes)
        // Every byte is here: let the pipeline finish its backlog, then the share link shows it.
        await processing(recording).finish(message.bytes)
        const meta = await store.publish(recording, message.bytes)
        return send({ type: 'published', shareId: meta.shareId, bytes: meta.finalBytes ?? message.bytes })
      }
      if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
      const chunk = decodeChunk(data)
      try {
        const offset = await store.append(recording, chunk.offset, chunk.data)
        send({ type: 'ack', seq: chunk.seq, offset })
      } catch (error) {
        // A chunk at the wrong place is answered, not fatal: the recorder resends from `expected`.
        if (!(error instanceof OffsetMismatchError)) throw error
        send({
          type: 'error',
          code: 'offset-mismatch',
          message: error.message,
          expected: error.expected,
          seq: chunk.seq,
        })
      }
    }
    const refuse = (error: unknown) => {
      const known = error instanceof CrowdmeshError
      if (!known) log.error(`upload failed: ${(error as Error).stack ?? String(error)}`)
      const code =
        error instanceof MediaProcessingError
          ? 'invalid-media'
          : error instanceof RecordingAccessError
            ? /published/.test(error.message)
              ? 'published'
              : 'unauthorized'
            : error instanceof OffsetMismatchError
              ? 'offset-mismatch'
              : known
                ? 'invalid-message'
                : 'internal'
      send({
        type: 'error',
        code,
        message: known ? error.message : 'internal error',
        ...(error instanceof OffsetMismatchError && { expected: error.expected }),
      })
      // A recording ffmpeg cannot read stays unpublished; its connection stays open.
      if (code === 'invalid-media') return
      // A recorder that is not authorised, or breaks the protocol, is disconnected; the bytes it
      // had delivered stay, and it can reconnect and resume.
      if (code !== 'offset-mismatch') {
        closed = true
        channel.close(code)
      }
    }
    return (data, isBinary) => {
      if (closed) return
      // The data is the transport's buffer: keep a copy while it waits its turn.
      const message = data.slice()
      if (++pending > 8) channel.pause()
      if (pending > maxQueuedMessages) {
        closed = true
        channel.close('too-many-messages')
        return
      }
      queue = queue
        .then(() => (closed ? undefined : receive(message, isBinary)))
        .catch((error: unknown) => refuse(error))
        .finally(() => {
          if (--pending <= 8) channel.resume()
        })
    }
  }

  await mkdir(init.root, { recursive: true })
  await new Promise<void>((resolve) => server.listen(init.port ?? 0, init.host ?? '127.0.0.1', resolve))
  const { address, port } = server.address() as AddressInfo
  const url = `http://${address}:${port}`
  const rtc =
    init.eventLink === undefined
      ? undefined
      : await serveRtcUploads({
          link: init.eventLink,
          publicUrl: init.publicUrl ?? url,
          accept,
          signal: stopping.signal,
          logger: log,
        }).catch((error: unknown) => {
          stopping.abort()
          server.close()
          throw error
        })
  return {
    url,
    store,
    rtc,
    accept,
    async close() {
      stopping.abort()
      for (const ws of sockets.clients) ws.terminate()
      sockets.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await store.close()
    },
  }
}
