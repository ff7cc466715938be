import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { WebSocket, WebSocketServer } from 'ws'
import { serverLimits } from '../peer/protocol/defaults.ts'
import {
  CrowdmeshError,
  InvalidMessageError,
  MessageTooDeepError,
  MessageTooLargeError,
} from '../peer/protocol/errors.ts'
import type { Logger } from '../peer/protocol/logger.ts'
import { HttpError } from './http.ts'

/** The guard's limits; each defaults from `serverLimits`. */
export type GuardLimits = Pick<
  typeof serverLimits,
  | 'maxHeaderBytes'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'keepAliveTimeoutMs'
  | 'maxConnectionsPerIp'
  | 'maxConnections'
>

/** What one server serves: plain requests, and optionally WebSocket upgrades. */
export interface GuardedRoutes {
  /** Answers one request. Throw an `HttpError` (or any `CrowdmeshError`) to refuse it. */
  request(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> | void
  /** Takes an upgrade. Throw an `HttpError` to refuse it with that status; the socket is closed. */
  upgrade?(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> | void
}

/** Options of a guarded server. */
export interface GuardInit {
  /** Names the server in log lines and refusals. */
  name: string
  limits?: Partial<GuardLimits>
  /** Counts each answered request by status (the signaling server's `/metrics`). */
  onAnswer?: (status: number) => void
}

/**
 * The HTTP status for an error thrown while serving: an `HttpError` says its own; a message over a
 * limit is 413; anything else crowdmesh names as the peer's fault is 400; the rest is a bug (500).
 */
export function statusOf(error: unknown): number {
  if (error instanceof HttpError) return error.status
  if (error instanceof MessageTooLargeError) return 413
  if (error instanceof MessageTooDeepError || error instanceof InvalidMessageError) return 400
  if (error instanceof CrowdmeshError) return 400
  return 500
}

/**
 * A request's URL, parsed inside the guard. Node hands the request target as sent; a target such as
 * `//a:b` is a valid path, but `new URL('//a:b', base)` reads it as a host and throws. The target is
 * always taken as a path on this server.
 */
export function requestUrl(target: string | undefined): URL {
  const raw = target ?? '/'
  const url = URL.parse(raw.startsWith('/') ? `http://server${raw}` : `http://server/${raw}`)
  if (url === null) throw new HttpError(400, 'the request target is not a URL')
  return url
}

/**
 * Headers every answer carries: browsers must never guess a content type (a recording served as
 * HTML would run script on our origin), and nothing of ours is framed or leaks its URL (join links
 * carry tokens). Pages set their own Content-Security-Policy; everything else allows nothing.
 */
export const securityHeaders: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
}

/**
 * The one request boundary of a server. Every request, upgrade and connection of the returned server
 * runs inside it: the URL is parsed inside it, any exception becomes a clear answer for that request
 * alone (400/404/413/429 with a JSON `{error}`, or an HTTP status line on an upgrade) and a log
 * line, never a crash; every socket has an `error` listener; headers, bodies and idle keep-alive
 * connections are timed; connections are capped per IP and in all. Tests make any unhandled error
 * fail the run, so a path that escapes this boundary is a bug that shows.
 */
export function guardedServer(routes: GuardedRoutes, init: GuardInit, log: Logger): Server {
  const limits: GuardLimits = { ...pickLimits(serverLimits), ...init.limits }
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    },
    (request, response) => void serve(request, response),
  )
  const perIp = new Map<string, number>()
  let open = 0
  server.on('connection', (socket: Socket) => {
    // A reset connection must not become an uncaught 'error'.
    socket.on('error', () => socket.destroy())
    const ip = socket.remoteAddress ?? 'unknown'
    const fromIp = (perIp.get(ip) ?? 0) + 1
    if (fromIp > limits.maxConnectionsPerIp || open + 1 > limits.maxConnections) {
      log(`${init.name}: connection from ${ip} refused (too many connections)`)
      socket.destroy()
      return
    }
    perIp.set(ip, fromIp)
    open++
    socket.once('close', () => {
      open--
      const left = (perIp.get(ip) ?? 1) - 1
      if (left === 0) perIp.delete(ip)
      else perIp.set(ip, left)
    })
  })
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    // Malformed HTTP, headers too large, or too slow: answered and closed; nothing else is affected.
    const status =
      error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
    if (socket.writable && !(socket as Socket).destroyed)
      socket.end(
        `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : 'Refused'}\r\nconnection: close\r\n\r\n`,
      )
    socket.destroy()
  })
  server.on('error', (error) => log.error(`${init.name}: server error: ${error.message}`))

  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    request.on('error', () => response.destroy())
    response.on('error', () => response.destroy())
    for (const [name, value] of Object.entries(securityHeaders)) response.setHeader(name, value)
    let status: number
    try {
      await routes.request(request, response, requestUrl(request.url))
      status = response.statusCode
    } catch (error) {
      // The client went away mid-request (a body cut short): nobody to answer, and not our bug.
      if (request.destroyed && !request.complete) {
        response.destroy()
        init.onAnswer?.(499)
        return
      }
      status = statusOf(error)
      if (status === 500)
        log.error(`${init.name}: ${request.method} failed: ${(error as Error)?.stack ?? String(error)}`)
      else log(`${init.name}: ${request.method} refused ${status}: ${(error as Error).message}`)
      if (!response.headersSent) {
        response.writeHead(status, { 'content-type': 'application/json', connection: 'close' })
        response.end(JSON.stringify({ error: status === 500 ? 'internal error' : (error as Error).message }))
      } else response.destroy()
    }
    init.onAnswer?.(status)
  }

  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy())
    const refuse = (error: unknown) => {
      const status = statusOf(error)
      if (status === 500)
        log.error(`${init.name}: upgrade failed: ${(error as Error)?.stack ?? String(error)}`)
      const reason = status === 500 ? 'internal error' : oneLine((error as Error).message)
      if (socket.writable)
        socket.end(
          `HTTP/1.1 ${status} Refused\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${reason}`,
        )
      socket.destroy()
      init.onAnswer?.(status)
    }
    try {
      if (routes.upgrade === undefined) throw new HttpError(404, 'no socket here')
      const pending = routes.upgrade(request, socket, head, requestUrl(request.url))
      if (pending instanceof Promise) pending.catch(refuse)
    } catch (error) {
      refuse(error)
    }
  })
  return server
}

/**
 * Completes a WebSocket upgrade with the socket guarded: an `error` listener is attached before any
 * other (a frame that breaks the protocol, such as an unmasked one from a client, makes `ws` emit
 * `error`, which would otherwise crash the process), and the peer is terminated on it.
 */
export function acceptWebSocket(
  sockets: WebSocketServer,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  onSocket: (ws: WebSocket) => void,
): void {
  sockets.handleUpgrade(request, socket, head, (ws) => {
    ws.on('error', () => ws.terminate())
    onSocket(ws)
  })
}

/**
 * Sends on a WebSocket unless the peer is not reading: past `maxBufferedBytes` waiting in its send
 * buffer, the peer is dropped as too slow rather than held in memory. Returns whether it sent.
 */
export function sendOrDrop(
  ws: WebSocket,
  data: string | Uint8Array,
  maxBufferedBytes: number = serverLimits.maxSocketBufferedBytes,
): boolean {
  if (ws.readyState !== 1) return false
  if (ws.bufferedAmount > maxBufferedBytes) {
    // A peer that does not read would not read a close frame either: its buffers go at once.
    ws.terminate()
    return false
  }
  ws.send(data)
  return true
}

function pickLimits(limits: typeof serverLimits): GuardLimits {
  const { maxHeaderBytes, headersTimeoutMs, requestTimeoutMs, keepAliveTimeoutMs } = limits
  const { maxConnectionsPerIp, maxConnections } = limits
  return {
    maxHeaderBytes,
    headersTimeoutMs,
    requestTimeoutMs,
    keepAliveTimeoutMs,
    maxConnectionsPerIp,
    maxConnections,
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 300)
}
