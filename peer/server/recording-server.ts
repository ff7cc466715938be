import { createReadStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { z } from 'zod'
import { CrowdmeshError, InvalidMessageError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { parseJsonMessage, parseMessage } from '../protocol/schemas.ts'
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
  logger?: Logger
}

/** A running server peer. */
export interface RecordingServer {
  readonly url: string
  readonly store: RecordingStore
  close(): Promise<void>
}

const createSchema = z.object({ mimeType: z.string().min(1).max(200) })

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
    if (request.method === 'POST' && path === '/api/recordings') {
      const body = parseMessage(createSchema, await readJson(request))
      const created = await store.create(body.mimeType)
      return json(response, 201, {
        ...created,
        uploadPath: '/api/recordings/upload',
        sharePath: `/v/${created.shareId}`,
      })
    }
    const media = /^\/v\/([\w-]{22})\/media$/.exec(path)
    if ((request.method === 'GET' || request.method === 'HEAD') && media !== null) {
      const shared = await store.shared(media[1]!)
      if (shared === undefined) throw new HttpError(404, 'no such recording')
      const { size } = await stat(shared.mediaPath)
      response.writeHead(200, { 'content-type': shared.meta.mimeType, 'content-length': size })
      if (request.method === 'HEAD') return void response.end()
      createReadStream(shared.mediaPath).pipe(response)
      return
    }
    throw new HttpError(404, `no such resource: ${request.method} ${path}`)
  }

  server.on('upgrade', (request, socket, head) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    if (path !== '/api/recordings/upload') return void socket.destroy()
    sockets.handleUpgrade(request, socket, head, (ws) => upload(ws))
  })

  /** One recorder's connection: hello, then chunks and publish, answered in order. */
  function upload(ws: WebSocket): void {
    let recording: string | undefined
    // Messages are handled one at a time, in arrival order; the socket is paused while a backlog
    // waits, so a fast recorder cannot queue unbounded work (backpressure through TCP).
    let queue = Promise.resolve()
    let pending = 0
    const send = (message: ToRecorder) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message))
    }
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (++pending > 8) ws.pause()
      queue = queue
        .then(() => receive(data, isBinary))
        .catch((error: unknown) => refuse(error))
        .finally(() => {
          if (--pending <= 8) ws.resume()
        })
    })
    const receive = async (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        const message = parseJsonMessage(toServerSchema, data.toString('utf8'))
        if (message.type === 'hello') {
          const { offset } = await store.authorize(message.recording, message.token)
          recording = message.recording
          return send({ type: 'ready', offset })
        }
        if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
        const meta = await store.publish(recording, message.bytes)
        return send({ type: 'published', shareId: meta.shareId, bytes: meta.finalBytes ?? message.bytes })
      }
      if (recording === undefined) throw new RecordingAccessError('say hello with the write token first')
      const chunk = decodeChunk(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
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
        error instanceof RecordingAccessError
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
      // A recorder that is not authorised, or breaks the protocol, is disconnected; the bytes it
      // had delivered stay, and it can reconnect and resume.
      if (code !== 'offset-mismatch') ws.close(1008, code)
    }
  }

  await mkdir(init.root, { recursive: true })
  await new Promise<void>((resolve) => server.listen(init.port ?? 0, init.host ?? '127.0.0.1', resolve))
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${address}:${port}`,
    store,
    async close() {
      for (const ws of sockets.clients) ws.terminate()
      sockets.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await store.close()
    },
  }
}

class HttpError extends CrowdmeshError {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

async function readJson(request: IncomingMessage): Promise<unknown> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > 16 * 1024) throw new HttpError(413, 'request body over 16 KiB')
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new HttpError(400, 'request body is not JSON')
  }
}
