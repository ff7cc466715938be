import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocket, WebSocketServer } from 'ws'
import { z } from 'zod'
import { type Logger, logger as makeLogger } from '../peer/protocol/logger.ts'
import { type IceServer, turnCredentials } from '../relay/turn-credentials.ts'
import {
  InvalidTokenError,
  type JoinClaims,
  type Role,
  signJoinToken,
  verifyJoinToken,
} from './join-token.ts'
import { acceptWebSocket, guardedServer, sendOrDrop } from './guard.ts'
import { HttpError, readJsonBody, sendJson as json } from './http.ts'
import { Metrics } from './metrics.ts'
import { parseBoundedJson } from '../peer/protocol/json-limits.ts'
import { serverLimits } from '../peer/protocol/defaults.ts'
import { CrowdmeshError, InvalidMessageError } from '../peer/protocol/errors.ts'
import { parseMessage } from '../peer/protocol/schemas.ts'
import { appPagePolicy, staticFiles } from './static-files.ts'

/** Options of the signaling server; each defaults as documented. */
export interface SignalingInit {
  /** Address to listen on (default 127.0.0.1). */
  host?: string
  /** Port (default 0: any free one). */
  port?: number
  /** Base URL put in join links (default http://<host>:<port>). */
  publicUrl?: string
  /** Secret that signs join tokens (default: random per process). */
  tokenSecret?: string
  /** Bearer key of the operator API (default: random; read it from `operatorKey`). */
  operatorKey?: string
  /** STUN/TURN servers handed to joining peers; TURN credentials are minted per peer. */
  ice?: { stunUrls: string[]; turnUrls: string[]; turnSecret: string; ttlSeconds: number }
  /** Largest request body, bytes (default 16 KiB). */
  maxBodyBytes?: number
  /** Largest signaling message over WebSocket, bytes (default 64 KiB). */
  maxSignalBytes?: number
  /** How often a signaling peer is pinged; one that has not answered the last ping is closed (ms). */
  heartbeatMs?: number
  /** Signaling connections one link may hold open at once (default `serverLimits.maxPeersPerLink`). */
  maxPeersPerLink?: number
  /** Signaling messages one peer may send per second before it is cut off (default 50). */
  maxSignalsPerSecond?: number
  /**
   * Folder of the built participant web app (`dist/web`): served under /app/, its index.html at every
   * valid join link. Without it (or before it is built) a join link shows a plain page saying so.
   */
  webAppDir?: string
}

/** What the coordinator tells the signaling server about its event, for joining peers. */
export interface EventBootstrap {
  coordinatorPeerId: string | undefined
  relayAddrs: string[]
}

/** The event's server peer for recordings, while it is connected to `/signal`. */
export interface RecordingServerBootstrap {
  /** Its signaling peer id: recorders send their WebRTC offers there. */
  peer: string
  /** Its HTTP base URL: recordings are created there, and it takes WebSocket uploads. */
  url: string
}

interface EventRecord extends EventBootstrap {
  recordingServer: RecordingServerBootstrap | undefined
  id: string
  name: string
  createdAt: number
  expiresAt: number
}

/**
 * An event's operator console (`peer/console/`), served under its console link
 * `/console/<event>/<operator token>/`: the signaling server checks the token, serves the page at the
 * link itself, and hands everything under it to the console.
 */
export interface OperatorConsole {
  serve(rest: string, request: IncomingMessage, response: ServerResponse): Promise<void>
}

/** A running signaling server. */
export interface SignalingServer {
  readonly url: string
  readonly operatorKey: string
  /**
   * Creates an event and its join links (also reachable as `POST /api/events`); `consoleLink` opens
   * its operator console (the operator link's token: keep it as secret as the operator link).
   */
  createEvent(
    name: string,
    ttlSeconds?: number,
  ): { event: string; joinLinks: Record<Role, string>; consoleLink: string }
  /** A new join link of an event, valid for `ttlSeconds` (default, and at most: until the event expires). */
  mintLink(event: string, role: Role, ttlSeconds?: number): string
  /**
   * Adds another part's metrics to `/metrics` (the coordinator's, in the same process) until the
   * returned function is called: its exposition text follows the signaling server's own.
   */
  attachMetrics(render: () => Promise<string>): () => void
  /** Serves an event's console at its console link until the returned function is called. */
  attachConsole(event: string, console: OperatorConsole): () => void
  /** Records the coordinator's peer id and the relay's addresses for an event's joiners. */
  setBootstrap(event: string, bootstrap: EventBootstrap): void
  close(): Promise<void>
}

const createEventSchema = z.object({
  name: z.string().min(1).max(200).optional(),
  ttlSeconds: z
    .number()
    .int()
    .min(60)
    .max(7 * 24 * 3600)
    .optional(),
})
const bootstrapSchema = z.object({
  coordinatorPeerId: z.string().min(1).max(200),
  relayAddrs: z.array(z.string().min(1).max(500)).max(16),
})
const signalSchema = z.object({
  to: z.string().min(1).max(64),
  data: z.unknown(),
})

/**
 * The signaling server: one HTTP + WebSocket server. Operators create events and get signed join
 * links; a joining peer presents its link's token and gets the bootstrap (relay addresses, the
 * coordinator's peer id, STUN/TURN servers with ephemeral credentials); peers that connect with
 * simple-peer exchange SDP and ICE through `/signal`. Also `/health` and `/metrics` (Prometheus text).
 * Every request is validated; a bad one gets a clear error and the server keeps serving the others.
 */
export async function startSignaling(
  init: SignalingInit = {},
  components: { logger?: Logger } = {},
): Promise<SignalingServer> {
  const log = components.logger ?? makeLogger('crowdmesh:signaling')
  const tokenSecret = init.tokenSecret ?? randomBytes(32).toString('base64url')
  const operatorKey = init.operatorKey ?? randomBytes(24).toString('base64url')
  const maxBody = init.maxBodyBytes ?? 16 * 1024
  const maxSignal = init.maxSignalBytes ?? 64 * 1024
  const maxSignalsPerSecond = init.maxSignalsPerSecond ?? 50
  const events = new Map<string, EventRecord>()
  const metrics = new Metrics()
  const webApp = init.webAppDir === undefined ? undefined : staticFiles(init.webAppDir)
  // Signaling peers by event, then by peer id: each connection's own, never the link's jti, since
  // everyone at an event may open the same link.
  const peers = new Map<string, Map<string, WebSocket>>()
  // Open signaling connections per link (its token's jti): one link holds a bounded number.
  const perLink = new Map<string, number>()
  const maxPeersPerLink = init.maxPeersPerLink ?? serverLimits.maxPeersPerLink
  let baseUrl = ''

  const createEvent = (name: string, ttlSeconds = 12 * 3600) => {
    const id = randomUUID().slice(0, 8)
    const now = Math.floor(Date.now() / 1000)
    const record: EventRecord = {
      id,
      name,
      createdAt: now,
      expiresAt: now + ttlSeconds,
      coordinatorPeerId: undefined,
      relayAddrs: [],
      recordingServer: undefined,
    }
    events.set(id, record)
    const joinLinks = {
      participant: mintLink(id, 'participant'),
      viewer: mintLink(id, 'viewer'),
      recorder: mintLink(id, 'recorder'),
      operator: mintLink(id, 'operator'),
    }
    metrics.count('crowdmesh_signaling_events_created_total')
    log(`event ${id} (${name}) created`)
    return { event: id, joinLinks, consoleLink: joinLinks.operator.replace('/join/', '/console/') }
  }

  function mintLink(event: string, role: Role, ttlSeconds?: number): string {
    const record = events.get(event)
    if (record === undefined) throw new CrowdmeshError(`no event ${event}`)
    const exp =
      ttlSeconds === undefined
        ? record.expiresAt
        : Math.min(record.expiresAt, Math.floor(Date.now() / 1000) + ttlSeconds)
    const token = signJoinToken({ event, role, exp, jti: randomUUID().slice(0, 12) }, tokenSecret)
    return `${baseUrl}/join/${event}/${token}`
  }

  const consoles = new Map<string, OperatorConsole>()
  const attachedMetrics = new Set<() => Promise<string>>()

  const server: Server = guardedServer(
    {
      request: (request, response, url) => handle(request, response, url),
      upgrade: (request, socket, head, url) => upgrade(request, socket, head, url),
    },
    {
      name: 'signaling',
      onAnswer: (status) => metrics.count('crowdmesh_signaling_requests_total', { status: String(status) }),
    },
    log,
  )

  async function handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname
    if (request.method === 'GET' && path === '/health') {
      return json(response, 200, { status: 'ok', events: events.size, signalingPeers: countPeers() })
    }
    if (request.method === 'GET' && path === '/metrics') {
      metrics.set('crowdmesh_signaling_events', events.size)
      metrics.set('crowdmesh_signaling_peers', countPeers())
      const attached = await Promise.all([...attachedMetrics].map((render) => render()))
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
      return void response.end([metrics.render(), ...attached].join(''))
    }
    if (request.method === 'POST' && path === '/api/events') {
      requireOperator(request)
      const body = createEventSchema.safeParse(await readJson(request))
      if (!body.success)
        throw new HttpError(
          400,
          `bad event request: ${body.error.issues[0]!.path.join('.')}: ${body.error.issues[0]!.message}`,
        )
      return json(response, 201, createEvent(body.data.name ?? 'event', body.data.ttlSeconds))
    }
    const bootstrapPut = /^\/api\/events\/([\w-]+)\/bootstrap$/.exec(path)
    if (request.method === 'PUT' && bootstrapPut !== null) {
      requireOperator(request)
      const event = events.get(bootstrapPut[1]!)
      if (event === undefined) throw new HttpError(404, `no event ${bootstrapPut[1]}`)
      const body = bootstrapSchema.safeParse(await readJson(request))
      if (!body.success)
        throw new HttpError(
          400,
          `bad bootstrap: ${body.error.issues[0]!.path.join('.')}: ${body.error.issues[0]!.message}`,
        )
      Object.assign(event, body.data)
      response.writeHead(204)
      return void response.end()
    }
    if (request.method === 'GET' && path === '/api/bootstrap') {
      const claims = verify(url.searchParams.get('token') ?? '', undefined)
      const event = events.get(claims.event)!
      metrics.count('crowdmesh_signaling_bootstraps_total')
      const peer = connectionId(claims.jti)
      return json(response, 200, {
        event: event.id,
        name: event.name,
        role: claims.role,
        // A name of this joiner alone (TURN's username, logs): many people share one link.
        peer,
        coordinatorPeerId: event.coordinatorPeerId ?? null,
        relayAddrs: event.relayAddrs,
        recordingServer: event.recordingServer ?? null,
        iceServers: iceServers(peer),
        expiresAt: claims.exp,
      })
    }
    const join = /^\/join\/([\w-]+)\/([\w.-]+)$/.exec(path)
    if (request.method === 'GET' && join !== null) {
      let claims: JoinClaims
      try {
        claims = verify(join[2]!, join[1])
      } catch (error) {
        metrics.count('crowdmesh_signaling_joins_total', { result: 'refused' })
        if (!(error instanceof HttpError)) throw error
        response.writeHead(error.status, { 'content-type': 'text/html; charset=utf-8' })
        return void response.end(page('This link cannot be used', escapeHtml(error.message)))
      }
      metrics.count('crowdmesh_signaling_joins_total', { result: 'ok' })
      // A recorder's link opens the recorder, and so does any link with ?record=1 (the participant
      // page's Record link); otherwise the participant app.
      const recorder =
        claims.role === 'recorder' || (claims.role === 'operator' && url.searchParams.get('record') === '1')
      const app = await webApp?.index(recorder ? 'record.html' : 'index.html')
      response.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy': appPagePolicy,
      })
      return void response.end(
        app ??
          page(
            'crowdmesh',
            `You are joining event ${escapeHtml(claims.event)} as a ${claims.role}, but this server has no participant web app built (the operator runs <code>npm run build:web</code>). A Node participant can join with <code>crowdmesh join &lt;this link&gt;</code>.`,
          ),
      )
    }
    const consolePath = /^\/console\/([\w-]+)\/([\w.-]+)(?:\/(.*))?$/.exec(path)
    if (consolePath !== null) return serveConsole(request, response, consolePath)
    if (request.method === 'GET' && path.startsWith('/app/') && webApp !== undefined) {
      if (await webApp.send(path.slice('/app/'.length), response)) return
    }
    throw new HttpError(404, `no such resource: ${request.method} ${path}`)
  }

  /** `/console/<event>/<token>[/rest]`: an operator link's token of that event, and its console. */
  async function serveConsole(
    request: IncomingMessage,
    response: ServerResponse,
    [, event, token, rest]: RegExpExecArray,
  ): Promise<void> {
    const claims = verify(token!, event)
    if (claims.role !== 'operator') throw new HttpError(403, 'only an operator link opens the console')
    const console = consoles.get(event!)
    if (console === undefined) throw new HttpError(404, `event ${event} has no console running`)
    if (rest !== undefined && rest !== '') return console.serve(rest, request, response)
    if (request.method !== 'GET') throw new HttpError(405, 'the console page is read with GET')
    const app = await webApp?.index('console.html')
    response.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': appPagePolicy,
    })
    response.end(
      app ??
        page(
          'crowdmesh console',
          'This server has no web app built (the operator runs <code>npm run build:web</code>, or <code>crowdmesh start</code> builds it).',
        ),
    )
  }

  function verify(token: string, event: string | undefined): JoinClaims {
    try {
      const claims = verifyJoinToken(token, tokenSecret, event === undefined ? {} : { event })
      if (!events.has(claims.event))
        throw new HttpError(404, `event ${claims.event} does not exist (any more)`)
      return claims
    } catch (error) {
      if (error instanceof InvalidTokenError)
        throw new HttpError(error.reason === 'malformed' ? 400 : 403, error.message)
      throw error
    }
  }

  function requireOperator(request: IncomingMessage): void {
    const given = Buffer.from((request.headers.authorization ?? '').replace(/^Bearer /, ''))
    const expected = Buffer.from(operatorKey)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new HttpError(401, 'the operator key is missing or wrong')
    }
  }

  function iceServers(peerId: string): IceServer[] {
    if (init.ice === undefined) return []
    const turn = turnCredentials(init.ice.turnSecret, peerId, init.ice.ttlSeconds)
    return [
      ...(init.ice.stunUrls.length > 0 ? [{ urls: init.ice.stunUrls }] : []),
      ...(init.ice.turnUrls.length > 0
        ? [{ urls: init.ice.turnUrls, username: turn.username, credential: turn.credential }]
        : []),
    ]
  }

  const readJson = (request: IncomingMessage) => readJsonBody(request, maxBody)

  // SDP/ICE relay for simple-peer: each socket is a peer of one event, named by its token's id.
  const sockets = new WebSocketServer({ noServer: true, maxPayload: maxSignal })
  // A peer that vanished without closing (a phone that lost the venue's Wi-Fi) is found by its
  // missing pong and closed, so its place (and its link's) frees within two intervals.
  const alive = new WeakSet<WebSocket>()
  const heartbeat = setInterval(() => {
    for (const ws of sockets.clients) {
      if (!alive.has(ws)) {
        ws.terminate()
        continue
      }
      alive.delete(ws)
      ws.ping()
    }
  }, init.heartbeatMs ?? serverLimits.heartbeatMs)
  heartbeat.unref()
  function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    if (url.pathname !== '/signal') throw new HttpError(404, 'no such socket')
    const claims = verify(url.searchParams.get('token') ?? '', undefined)
    const serves = recordingServerOf(claims, url.searchParams)
    upgradeAllowed(claims)
    acceptWebSocket(sockets, request, socket, head, (ws) => attach(ws, claims, serves))
  }

  /**
   * `/signal?token=…&serve=recordings&url=…`: the event's server peer for recordings registers for
   * as long as its socket is open, so recorders find it in the bootstrap. Only an operator's link
   * may do that; the URL must be plain http(s).
   */
  function recordingServerOf(
    claims: JoinClaims,
    params: URLSearchParams,
  ): RecordingServerBootstrap | undefined {
    const serve = params.get('serve')
    if (serve === null) return undefined
    if (serve !== 'recordings') throw new HttpError(400, `cannot serve ${serve.slice(0, 40)}`)
    if (claims.role !== 'operator')
      throw new HttpError(403, 'only an operator link may register the server peer for recordings')
    const raw = params.get('url') ?? ''
    let url: URL
    try {
      url = new URL(raw)
    } catch {
      throw new HttpError(400, 'url: the recording server URL is missing or malformed')
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || raw.length > 500)
      throw new HttpError(400, 'url: the recording server URL must be http(s) and at most 500 characters')
    return { peer: '', url: url.origin }
  }

  function upgradeAllowed(claims: JoinClaims): void {
    if ((perLink.get(claims.jti) ?? 0) >= maxPeersPerLink)
      throw new HttpError(429, `this link already has ${maxPeersPerLink} peers connected`)
  }

  function attach(ws: WebSocket, claims: JoinClaims, registering?: RecordingServerBootstrap): void {
    let room = peers.get(claims.event)
    if (room === undefined) {
      room = new Map()
      peers.set(claims.event, room)
    }
    const id = connectionId(claims.jti)
    room.set(id, ws)
    alive.add(ws)
    ws.on('pong', () => alive.add(ws))
    perLink.set(claims.jti, (perLink.get(claims.jti) ?? 0) + 1)
    const event = events.get(claims.event)
    const serves = registering === undefined ? undefined : { ...registering, peer: id }
    if (serves !== undefined && event !== undefined) {
      event.recordingServer = serves
      log(`event ${claims.event}: recordings served at ${serves.url}`)
    }
    // The server peer answers every recorder of the event: it may signal far more than one peer.
    const perSecond = serves === undefined ? maxSignalsPerSecond : maxSignalsPerSecond * 20
    let windowStart = Date.now()
    let inWindow = 0
    ws.send(JSON.stringify({ type: 'welcome', peer: id, event: claims.event }))
    ws.on('message', (raw, binary) => {
      const now = Date.now()
      if (now - windowStart >= 1000) {
        windowStart = now
        inWindow = 0
      }
      if (++inWindow > perSecond) {
        metrics.count('crowdmesh_signaling_signals_refused_total', { reason: 'rate' })
        ws.close(4429, 'too many signaling messages')
        return
      }
      let message: z.infer<typeof signalSchema>
      try {
        if (binary) throw new InvalidMessageError('(root)', 'binary messages are not signaling')
        // Parsed with size and depth limits: data nested 10,000 deep overflowed the stack in
        // JSON.stringify below and took the process down.
        message = parseMessage(
          signalSchema,
          parseBoundedJson(Buffer.from(raw as Buffer).toString('utf8'), { maxBytes: maxSignal }),
        )
      } catch (error) {
        metrics.count('crowdmesh_signaling_signals_refused_total', { reason: 'malformed' })
        const reason = error instanceof CrowdmeshError ? error.message : 'malformed'
        sendOrDrop(
          ws,
          JSON.stringify({ type: 'error', error: `a signaling message is JSON {to, data}: ${reason}` }),
        )
        return
      }
      const target = room.get(message.to)
      if (target === undefined || target.readyState !== WebSocket.OPEN) {
        sendOrDrop(ws, JSON.stringify({ type: 'error', error: `peer ${message.to} is not connected` }))
        return
      }
      metrics.count('crowdmesh_signaling_signals_total')
      // A peer that does not read its socket is dropped, not buffered for (sendOrDrop).
      sendOrDrop(target, JSON.stringify({ type: 'signal', from: id, data: message.data }))
    })
    ws.on('close', () => {
      if (serves !== undefined && event?.recordingServer === serves) event.recordingServer = undefined
      if (room.get(id) === ws) room.delete(id)
      if (room.size === 0) peers.delete(claims.event)
      const left = (perLink.get(claims.jti) ?? 1) - 1
      if (left === 0) perLink.delete(claims.jti)
      else perLink.set(claims.jti, left)
    })
  }

  function countPeers(): number {
    let n = 0
    for (const room of peers.values()) n += room.size
    return n
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(init.port ?? 0, init.host ?? '127.0.0.1', () => resolve())
  })
  const address = server.address() as AddressInfo
  baseUrl = init.publicUrl ?? `http://${address.address}:${address.port}`
  log(`signaling on ${baseUrl}`)

  let closed = false
  return {
    url: baseUrl,
    operatorKey,
    createEvent,
    mintLink,
    attachMetrics(render) {
      attachedMetrics.add(render)
      return () => void attachedMetrics.delete(render)
    },
    attachConsole(event, console) {
      consoles.set(event, console)
      return () => {
        if (consoles.get(event) === console) consoles.delete(event)
      }
    },
    setBootstrap(event, bootstrap) {
      const record = events.get(event)
      if (record !== undefined) Object.assign(record, bootstrap)
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(heartbeat)
      for (const ws of sockets.clients) ws.terminate()
      sockets.close()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** A peer id of one connection (or one bootstrap): the link's id and a random part. */
function connectionId(jti: string): string {
  return `${jti}.${randomBytes(6).toString('base64url')}`
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head><body><h1>${title}</h1><p>${body}</p></body></html>`
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}
