import SimplePeer from '@thaunknown/simple-peer/lite.js'
import { fetchBootstrap, JoinRefusedError, parseJoinLink } from '../mesh/bootstrap.ts'
import { sleep } from '../protocol/clock.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import type { RecordingServer, UploadSession } from './recording-server.ts'

/** Options of the server peer's WebRTC side; each defaults as documented. */
export interface RtcUploadsInit {
  /** An operator join link of the event whose recorders this server takes. */
  link: string
  /** The server's HTTP URL as recorders reach it (registered with the signaling server). */
  publicUrl: string
  accept: RecordingServer['accept']
  signal: AbortSignal
  /** Recorders connected or connecting at once (default 256); more are refused. */
  maxPeers?: number
  /** How long a recorder's connection may take to open (default 20 s). */
  connectTimeoutMs?: number
  logger?: Logger
}

/** The server peer's WebRTC side, while it runs. */
export interface RtcUploads {
  /** Its signaling peer id: its current signaling connection's (empty until registered). */
  readonly peer: string
  /** Recorders connected over WebRTC now. */
  readonly connected: number
  /** Resolves once the server is registered with the signaling server (again after a reconnect). */
  registered(): Promise<void>
}

/**
 * Takes recorders' uploads over WebRTC data channels: registers with the event's signaling server as
 * its server peer for recordings (`/signal?…&serve=recordings`), answers each recorder's offer with
 * simple-peer over node-datachannel, and hands each open channel to the recording server's upload
 * protocol, exactly as a WebSocket. The signaling socket is reopened with back-off if it drops.
 */
export async function serveRtcUploads(init: RtcUploadsInit): Promise<RtcUploads> {
  const log = init.logger ?? makeLogger('crowdmesh:server:rtc')
  const bootstrap = await fetchBootstrap(init.link, init.signal)
  if (bootstrap.role !== 'operator')
    throw new JoinRefusedError(`the server peer needs an operator link; this one is a ${bootstrap.role}'s`)
  const { base, token } = parseJoinLink(init.link)
  const signalUrl = `${base.replace(/^http/, 'ws')}/signal?${new URLSearchParams({
    token,
    serve: 'recordings',
    url: init.publicUrl,
  })}`
  const peers = new Map<string, SimplePeer>()
  let connected = 0
  let registered = Promise.withResolvers<void>()

  const answer = (ws: WebSocket, from: string, data: unknown) => {
    const offer = typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'offer'
    let peer = peers.get(from)
    // A recorder never renegotiates: a new offer is a reconnection, and the old connection (which
    // this side may not yet have noticed is dead) goes.
    if (offer && peer !== undefined) {
      peers.delete(from)
      peer.destroy()
      peer = undefined
    }
    if (peer === undefined) {
      // Only an offer opens a connection; stray candidates of a gone peer are dropped.
      if (!offer) return
      if (peers.size >= (init.maxPeers ?? 256)) {
        log(`refused a recorder: ${peers.size} connections already`)
        return
      }
      const created = new SimplePeer({ objectMode: true, config: { iceServers: bootstrap.iceServers } })
      peer = created
      peers.set(from, created)
      const timeout = setTimeout(() => {
        if (!created.connected) created.destroy()
      }, init.connectTimeoutMs ?? 20_000)
      created.on('signal', (reply) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ to: from, data: reply }))
      })
      let session: UploadSession | undefined
      created.on('connect', () => {
        clearTimeout(timeout)
        connected++
        session = init.accept({
          send: (text) => {
            if (created.connected) created.send(text)
          },
          close: () => created.destroy(),
          // A data channel cannot pause its sender: the recorder's window is the backpressure.
          pause: () => {},
          resume: () => {},
        })
      })
      created.on('data', (message) => {
        if (typeof message === 'string') session?.receive(new TextEncoder().encode(message), false)
        else session?.receive(message, true)
      })
      created.on('error', (error) => log(`recorder ${from}: ${error.message}`))
      created.on('close', () => {
        clearTimeout(timeout)
        if (session !== undefined) connected--
        session?.closed()
        if (peers.get(from) === created) peers.delete(from)
      })
    }
    try {
      peer.signal(data)
    } catch (error) {
      log(`recorder ${from} sent a bad signal: ${(error as Error).message}`)
      peer.destroy()
    }
  }

  let ownPeer = ''
  // One signaling socket at a time, reopened while the server runs.
  void (async () => {
    let failures = 0
    while (!init.signal.aborted) {
      const ws = new WebSocket(signalUrl)
      const closed = new Promise<void>((resolve) => {
        ws.addEventListener('close', () => resolve())
        ws.addEventListener('error', () => resolve())
      })
      const onAbort = () => ws.close()
      init.signal.addEventListener('abort', onAbort, { once: true })
      ws.addEventListener('message', (event) => {
        let message: { type?: string; from?: unknown; data?: unknown; peer?: unknown }
        try {
          message = JSON.parse(String(event.data)) as typeof message
        } catch {
          return
        }
        if (message.type === 'welcome') {
          // Each signaling connection has its own peer id: recorders find it in the bootstrap.
          if (typeof message.peer === 'string') ownPeer = message.peer
          failures = 0
          log(`registered with ${base} as the server peer for recordings`)
          registered.resolve()
        } else if (message.type === 'signal' && typeof message.from === 'string')
          answer(ws, message.from, message.data)
      })
      await closed
      init.signal.removeEventListener('abort', onAbort)
      if (init.signal.aborted) break
      registered = Promise.withResolvers<void>()
      log(`signaling connection lost; reconnecting`)
      await sleep(Math.min(10_000, 500 * 2 ** failures++), init.signal)
    }
    for (const peer of peers.values()) peer.destroy()
    peers.clear()
  })()

  return {
    get peer() {
      return ownPeer
    },
    get connected() {
      return connected
    },
    registered: () => registered.promise,
  }
}
