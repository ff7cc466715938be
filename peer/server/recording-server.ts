import { ServerMetrics } from './server-metrics.ts'
import type { RecordingMeta } from './recording-store.ts'
import { randomBytes } from 'node:crypto'
import { mkdir, stat } from 'node:fs/promises'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { join } from 'node:path'
import { type WebSocket, WebSocketServer } from 'ws'
import { z } from 'zod'
import { acceptWebSocket, guardedServer, sendOrDrop } from '../../signaling/guard.ts'
import { HttpError, readJsonBody, sendJson as json } from '../../signaling/http.ts'
import { recordingLimits } from '../protocol/defaults.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { parseMessage } from '../protocol/schemas.ts'
import { audioOutputs, type SpeechToText } from './audio-stage.ts'
import { DiskQuota, StorageFullError } from './disk-quota.ts'
import { pipelineOutputs } from './media-pipeline.ts'
import { ProcessingPool } from './processing.ts'
import { type AuthorizeRecorder, eventLinkAuthorizer, recorderKeyAuthorizer } from './recorder-auth.ts'
import { RecordingStore } from './recording-store.ts'
import { type RtcUploads, serveRtcUploads } from './rtc-uploads.ts'
import {
  livePage,
  mediaTypes,
  recorderMediaType,
  sendFaststart,
  sendLive,
  sendPage,
  sendRanges,
  sharePage,
} from './share-responses.ts'
import { chunkHeaderBytes, maxChunkBytes } from './upload-protocol.ts'
import { type UploadChannel, type UploadSession, uploadSessions } from './upload-session.ts'

export type { UploadChannel, UploadSession } from './upload-session.ts'

/** The limits of a server peer for recordings (`recordingLimits`, README "Security"). */
export type RecordingLimits = { -readonly [K in keyof typeof recordingLimits]: number }

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
   * takes recorders' uploads over WebRTC data channels too (`rtc-uploads.ts`); recordings are
   * created by the bearers of that event's recorder or operator links. Without it, WebSocket only,
   * and recordings are created by the bearer of the server's recorder key.
   */
  eventLink?: string
  /** The URL recorders reach this server at (default its listening URL). */
  publicUrl?: string
  /**
   * The key that creates recordings on a server without an event (default: a random one, minted at
   * start; read it from `recorderKey`).
   */
  recorderKey?: string
  /**
   * This process also runs other WebRTC, such as the event's coordinator (`crowdmesh start`): see
   * `RtcUploadsInit.sharesWebRTC` (default false).
   */
  sharesWebRTC?: boolean
  /** Limits, each defaulting from `recordingLimits`. */
  limits?: Partial<RecordingLimits>
}

/** What a server peer uses; each is optional. */
export interface RecordingServerComponents {
  /**
   * Decides who may create a recording (the request's bearer token). Default: with an event link,
   * that event's recorder and operator links, checked with its signaling server
   * (`eventLinkAuthorizer`); without, the server's recorder key.
   */
  authorizeRecorder?: AuthorizeRecorder
  /** A speech-to-text engine fed each recording's sound as it arrives (none is bundled). */
  speechToText?: SpeechToText
  logger?: Logger
}

/** A running server peer. */
export interface RecordingServer {
  readonly url: string
  readonly store: RecordingStore
  /** The bearer that creates recordings, when the server checks its own key (no event, no authorizer). */
  readonly recorderKey: string | undefined
  /** Its WebRTC side, with an event link. */
  readonly rtc: RtcUploads | undefined
  /** Takes a recorder's connection on another transport (a WebRTC data channel): feed it its messages. */
  accept(channel: UploadChannel): UploadSession
  /** Its Prometheus metrics (also at `GET /metrics`). */
  readonly metrics: ServerMetrics
  /** The recordings, newest first (at most `max`), for the operator's console. */
  list(max: number): Promise<RecordingMeta[]>
  /** Bytes the recordings take, and their quota. */
  storage(): { usedBytes: number; maxTotalBytes: number }
  close(): Promise<void>
}

/** What a recorder records: WebM or MP4, with codecs named in a plain charset and nothing else. */
const recorderMimeType = z
  .string()
  .max(120)
  .regex(
    /^video\/(?:webm|mp4)(?:\s*;\s*codecs=(?:[\w.+-]+(?:\s*,\s*[\w.+-]+)*|"[\w.+-]+(?:\s*,\s*[\w.+-]+)*"))?$/i,
    'a recorder records video/webm or video/mp4 (with a codecs parameter, if any)',
  )
const createSchema = z.object({ mimeType: recorderMimeType, live: z.boolean().optional() })

/**
 * The server peer for recordings: `POST /api/recordings` creates one (its id, write token and share
 * id) for a recorder's bearer token; `WS /api/recordings/upload` takes its bytes with the upload
 * protocol (`upload-protocol.ts`, `upload-session.ts`); `GET /v/<shareId>/…` serves a published (or
 * live) recording's page and media. Nothing is listable; every id is checked against its pattern
 * before it names a file, and share ids are looked up in memory. Every request and socket goes
 * through the one guard (`signaling/guard.ts`); what a recorder or viewer may hold is bounded by
 * `recordingLimits`.
 */
export async function startRecordingServer(
  init: RecordingServerInit,
  components: RecordingServerComponents = {},
): Promise<RecordingServer> {
  const log = components.logger ?? makeLogger('crowdmesh:server')
  const limits: RecordingLimits = { ...recordingLimits, ...init.limits }
  await mkdir(init.root, { recursive: true })
  const store = new RecordingStore(init.root)
  await store.index()
  const recorderKey =
    components.authorizeRecorder === undefined && init.eventLink === undefined
      ? (init.recorderKey ?? randomBytes(24).toString('base64url'))
      : undefined
  const authorizeRecorder =
    components.authorizeRecorder ??
    (recorderKey !== undefined
      ? recorderKeyAuthorizer(recorderKey)
      : eventLinkAuthorizer(init.eventLink!, {
          cacheMs: limits.authCacheMs,
          maxEntries: limits.maxAuthCacheEntries,
        }))
  const quota = new DiskQuota({ root: init.root, ...limits }, () => store.usage())
  const processing = new ProcessingPool(limits, {
    store,
    speechToText: components.speechToText,
    logger: log,
  })
  const stopping = new AbortController()
  /** Upload connections per recording: the sweep leaves those recordings alone. */
  const connections = new Map<string, number>()
  /** Live viewers per recording. */
  const viewers = new Map<string, number>()

  const metrics = new ServerMetrics({
    uploading: () => connections.size,
    pipelines: () => processing.running,
    storage: () => ({ usedBytes: quota.usedBytes, maxTotalBytes: limits.maxTotalBytes }),
  })
  const accept = uploadSessions(limits, {
    store,
    processing,
    quota,
    metrics,
    logger: log,
    joined: (id) => connections.set(id, (connections.get(id) ?? 0) + 1),
    left: (id) => {
      const left = (connections.get(id) ?? 1) - 1
      if (left > 0) return void connections.set(id, left)
      connections.delete(id)
      // Nobody writes to it now: its file is closed until someone does.
      store.release(id).catch((error: unknown) => log(`releasing ${id}: ${(error as Error).message}`))
    },
  })

  /** Deletes recordings nobody finished, and measures the disk use again. */
  async function sweep(): Promise<void> {
    for (const id of await store.abandoned(limits.abandonedAfterMs)) {
      if (connections.has(id) || processing.finishing(id)) continue
      await processing.stop(id)
      await store.delete(id)
      log(`recording ${id}: never published, untouched for ${limits.abandonedAfterMs} ms: deleted`)
    }
    await quota.measure()
  }
  await sweep()
  let sweeping = Promise.resolve()
  const sweeper = setInterval(() => {
    sweeping = sweeping.then(sweep).catch((error: unknown) => log.error(`sweep: ${(error as Error).message}`))
  }, limits.sweepIntervalMs)
  sweeper.unref()

  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname
    if (path === '/metrics' && request.method === 'GET') {
      response.writeHead(200, { 'content-type': metrics.registry.contentType })
      return void response.end(await metrics.registry.metrics())
    }
    if (path === '/api/recordings') {
      // The recorder's page comes from the signaling server, another origin: it may create a
      // recording with its link's token as the bearer.
      response.setHeader('access-control-allow-origin', '*')
      if (request.method === 'OPTIONS') {
        response.writeHead(204, {
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': 'content-type, authorization',
          'access-control-max-age': '600',
        })
        return void response.end()
      }
      if (request.method === 'POST') return create(request, response)
    }
    const share =
      /^\/v\/([\w-]{22})(?:\/(media|video\.mp4|video\.webm|thumb\.jpg|audio\.opus|audio\.m4a|captions\.vtt|live\.mp4))?$/.exec(
        path,
      )
    if ((request.method === 'GET' || request.method === 'HEAD') && share !== null)
      return serveShare(request, response, share[1]!, share[2])
    throw new HttpError(404, `no such resource: ${request.method} ${path.slice(0, 200)}`)
  }

  /** `POST /api/recordings`: the bearer must be allowed to record, and the server have room. */
  async function create(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const bearer = /^Bearer ([^\s]+)$/.exec(request.headers.authorization ?? '')?.[1]
    if (bearer === undefined) {
      response.setHeader('www-authenticate', 'Bearer realm="crowdmesh recordings"')
      throw new HttpError(
        401,
        recorderKey !== undefined
          ? "creating a recording needs this server's recorder key (authorization: Bearer <key>, printed by crowdmesh serve)"
          : "creating a recording needs the event's recorder link (authorization: Bearer <its token>)",
      )
    }
    await authorizeRecorder(bearer, AbortSignal.any([stopping.signal, AbortSignal.timeout(10_000)]))
    const body = parseMessage(createSchema, await readJsonBody(request, 16 * 1024))
    if (store.unpublishedCount >= limits.maxUnpublishedRecordings)
      throw new HttpError(
        503,
        `the server holds ${store.unpublishedCount} unfinished recordings, as many as it may: try again later`,
      )
    try {
      await quota.check(0)
    } catch (error) {
      if (error instanceof StorageFullError) throw new HttpError(507, error.message)
      throw error
    }
    const created = await store.create(body.mimeType, { live: body.live === true })
    return json(response, 201, {
      ...created,
      uploadPath: '/api/recordings/upload',
      sharePath: `/v/${created.shareId}`,
    })
  }

  /** `GET /v/<shareId>[/<what>]`: a share link's page or media, only as what it is. */
  async function serveShare(
    request: IncomingMessage,
    response: ServerResponse,
    shareId: string,
    what: string | undefined,
  ): Promise<void> {
    const shared = await store.shared(shareId)
    if (shared === undefined) throw new HttpError(404, 'no such recording')
    const { id } = shared.meta
    const folder = store.folderOf(id)
    if (shared.meta.state !== 'published') {
      // Live: the page plays the fragmented MP4 as it is written; nothing else is there yet.
      if (what === undefined) return sendPage(response, livePage(shareId), 'no-store')
      if (what !== 'live.mp4') throw new HttpError(404, 'the recording is still being recorded')
      const watching = viewers.get(id) ?? 0
      if (watching >= limits.maxLiveViewers)
        throw new HttpError(
          429,
          `this live recording has ${watching} viewers, as many as it may: try again shortly`,
        )
      viewers.set(id, watching + 1)
      try {
        return await sendLive(request, response, join(folder, pipelineOutputs.fragmentedMp4), {
          following: () => processing.has(id),
          stallMs: limits.liveStallMs,
          signal: stopping.signal,
        })
      } finally {
        const left = (viewers.get(id) ?? 1) - 1
        if (left > 0) viewers.set(id, left)
        else viewers.delete(id)
      }
    }
    if (what === 'live.mp4') throw new HttpError(404, 'the recording is published: play video.mp4')
    if (what === undefined) {
      const captions = await stat(join(folder, audioOutputs.captions)).catch(() => undefined)
      return sendPage(response, sharePage(shareId, captions !== undefined), 'no-cache')
    }
    if (what === 'video.mp4') return sendFaststart(request, response, folder)
    const file =
      what === 'media'
        ? { path: shared.mediaPath, type: recorderMediaType(shared.meta.mimeType) }
        : what === 'video.webm'
          ? { path: join(folder, pipelineOutputs.webm), type: mediaTypes.webm }
          : what === 'thumb.jpg'
            ? { path: join(folder, pipelineOutputs.thumbnail), type: mediaTypes.thumbnail }
            : what === 'captions.vtt'
              ? { path: join(folder, audioOutputs.captions), type: mediaTypes.captions }
              : { path: join(folder, what), type: what === 'audio.opus' ? mediaTypes.ogg : mediaTypes.m4a }
    const size = (await stat(file.path).catch(() => undefined))?.size
    if (size === undefined) throw new HttpError(404, `this recording has no ${what}`)
    return sendRanges(request, response, [{ path: file.path, start: 0, length: size }], file.type)
  }

  // Before hello a socket takes only small frames: a larger one is refused at its header.
  const sockets = new WebSocketServer({ noServer: true, maxPayload: limits.maxPreHelloBytes })
  function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (url.pathname !== '/api/recordings/upload') throw new HttpError(404, 'no such socket')
    acceptWebSocket(sockets, request, socket, head, (ws) => {
      const session = accept({
        send: (text) => void sendOrDrop(ws, text),
        close: (reason) => ws.close(1008, reason),
        pause: () => ws.pause(),
        resume: () => ws.resume(),
        admit: () => raiseMaxPayload(ws, chunkHeaderBytes + maxChunkBytes),
        transport: 'websocket',
      })
      ws.on('message', (data: Buffer, isBinary: boolean) =>
        session.receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), isBinary),
      )
      ws.on('close', () => session.closed())
    })
  }

  const server: Server = guardedServer({ request: handle, upgrade }, { name: 'recordings' }, log)
  const stop = async () => {
    stopping.abort()
    clearInterval(sweeper)
    for (const ws of sockets.clients) ws.terminate()
    sockets.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await sweeping
    await processing.close()
    await store.close()
  }
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
          maxPeers: limits.maxRtcPeers,
          connectTimeoutMs: limits.rtcConnectTimeoutMs,
          maxSignalsPerPeer: limits.maxSignalsPerPeer,
          maxSignalBytesPerPeer: limits.maxSignalBytesPerPeer,
          closeGraceMs: limits.closeGraceMs,
          ...(init.sharesWebRTC === true && { sharesWebRTC: true }),
        }).catch(async (error: unknown) => {
          await stop()
          throw error
        })
  let closed: Promise<void> | undefined
  return {
    url,
    store,
    recorderKey,
    rtc,
    accept,
    metrics,
    list: (max) => store.list(max),
    storage: () => ({ usedBytes: quota.usedBytes, maxTotalBytes: limits.maxTotalBytes }),
    close: () => (closed ??= stop()),
  }
}

/**
 * Lets a WebSocket's frames be as large as a chunk, once its recorder said hello. `ws` has one
 * `maxPayload` per server, checked at each frame's header; strangers get the small one, and this
 * raises it on the one socket (ws 8's receiver keeps it in `_maxPayload`; a version that does not
 * fails here, loudly, at the first hello).
 */
function raiseMaxPayload(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
  if (receiver === undefined || typeof receiver._maxPayload !== 'number')
    throw new Error("cannot raise the socket's frame limit: ws's receiver has changed")
  receiver._maxPayload = bytes
}
