import SimplePeer from '@thaunknown/simple-peer/lite.js'
import { fetchBootstrap, JoinRefusedError, parseJoinLink } from '../mesh/bootstrap.ts'
import { sleep } from '../protocol/clock.ts'
import { recordingLimits } from '../protocol/defaults.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { holdWebRTC } from '../protocol/webrtc-hold.ts'
import { RECORDER_BYE } from './upload-protocol.ts'
import type { UploadChannel, UploadSession } from './upload-session.ts'

/** Options of the server peer's WebRTC side; each defaults as documented. */
export interface RtcUploadsInit {
  /** An operator join link of the event whose recorders this server takes. */
  link: string
  /** The server's HTTP URL as recorders reach it (registered with the signaling server). */
  publicUrl: string
  accept: (channel: UploadChannel) => UploadSession
  signal: AbortSignal
  /**
   * Recorders' peers held at once (default 256): negotiating, connected, or closing (a replaced or
   * dropped peer counts until its native connection is closed). An offer past it is ignored, and the
   * recorder falls back to the WebSocket.
   */
  maxPeers?: number
  /** How long a recorder's connection may take to open (default 20 s). */
  connectTimeoutMs?: number
  /**
   * Signaling messages (offers and ICE candidates) one recorder's signaling id may send while it has
   * a peer here (default 100), and their bytes in all (default 64 KiB); past either, its peer is
   * dropped. A recorder sends one offer of a few KiB and a few tens of candidates at most.
   */
  maxSignalsPerPeer?: number
  maxSignalBytesPerPeer?: number
  /**
   * How long a connection the server ends stays open so that its last answer (why it ended) arrives,
   * ms (default 1 s); nothing more is read meanwhile.
   */
  closeGraceMs?: number
  /**
   * This process also runs other WebRTC (a coordinator's libp2p node): hold node-datachannel alive
   * while serving, so closing the last recorder's connection does not close theirs (default false).
   */
  sharesWebRTC?: boolean
  logger?: Logger
}

/** The server peer's WebRTC side, while it runs. */
export interface RtcUploads {
  /** Its signaling peer id: its current signaling connection's (empty until registered). */
  readonly peer: string
  /** Recorders connected over WebRTC now. */
  readonly connected: number
  /** Recorders' peers held now: negotiating, connected or closing (at most `maxPeers`). */
  readonly peers: number
  /** Offers refused so far because `maxPeers` peers were held (their recorders fall back to the WebSocket). */
  readonly refused: number
  /** Resolves once the server is registered with the signaling server (again after a reconnect). */
  registered(): Promise<void>
}

/** A recorder's peer on this server, until it is gone. */
interface RecorderPeer {
  readonly peer: SimplePeer
  /** Ends it now, and its upload session. */
  drop(): void
}

/**
 * Takes recorders' uploads over WebRTC data channels: registers with the event's signaling server as
 * its server peer for recordings (`/signal?…&serve=recordings`), answers each recorder's offer with
 * simple-peer over node-datachannel, and hands each open channel to the recording server's upload
 * protocol, exactly as a WebSocket. The signaling socket is reopened with back-off if it drops.
 *
 * A stranger with a recorder link can offer and signal at will (within the signaling server's rate
 * limit): the native peers it makes the server hold are bounded by `maxPeers` and each lives at most
 * `connectTimeoutMs` unconnected; what each may send while negotiating (candidates the native side
 * keeps, and may resolve) is bounded by `maxSignalsPerPeer` and `maxSignalBytesPerPeer`. A connected
 * one is an upload session, with its hello and idle timeouts.
 */
export async function serveRtcUploads(init: RtcUploadsInit): Promise<RtcUploads> {
  const log = init.logger ?? makeLogger('crowdmesh:server:rtc')
  const bootstrap = await fetchBootstrap(init.link, init.signal)
  if (bootstrap.role !== 'operator')
    throw new JoinRefusedError(`the server peer needs an operator link; this one is a ${bootstrap.role}'s`)
  // With the coordinator in the same process (crowdmesh start), the last recorder to leave would
  // otherwise cut every participant off (see holdWebRTC).
  if (init.sharesWebRTC === true) holdWebRTC(init.signal)
  const { base, token } = parseJoinLink(init.link)
  const signalUrl = `${base.replace(/^http/, 'ws')}/signal?${new URLSearchParams({
    token,
    serve: 'recordings',
    url: init.publicUrl,
  })}`
  const limits = {
    maxPeers: init.maxPeers ?? recordingLimits.maxRtcPeers,
    connectTimeoutMs: init.connectTimeoutMs ?? recordingLimits.rtcConnectTimeoutMs,
    maxSignalsPerPeer: init.maxSignalsPerPeer ?? recordingLimits.maxSignalsPerPeer,
    maxSignalBytesPerPeer: init.maxSignalBytesPerPeer ?? recordingLimits.maxSignalBytesPerPeer,
    closeGraceMs: init.closeGraceMs ?? recordingLimits.closeGraceMs,
  }
  /** Each recorder's current peer by its signaling id, with what that id has signaled so far. */
  const negotiations = new Map<string, { recorder: RecorderPeer; signals: number; bytes: number }>()
  /** Every peer not yet closed, replaced ones included: what `maxPeers` bounds. */
  const open = new Set<RecorderPeer>()
  let connected = 0
  let refused = 0
  let registered = Promise.withResolvers<void>()

  /** A new peer for the recorder at `from`, answering its offer; undefined when the server is full. */
  const create = (ws: WebSocket, from: string): RecorderPeer | undefined => {
    if (open.size >= limits.maxPeers) {
      refused++
      log(`refused a recorder: ${open.size} peers already`)
      return undefined
    }
    const peer = new SimplePeer({ objectMode: true, config: { iceServers: bootstrap.iceServers } })
    let session: UploadSession | undefined
    let ending: NodeJS.Timeout | undefined
    let going = false
    const timeout = setTimeout(() => {
      if (!peer.connected) drop()
    }, limits.connectTimeoutMs)
    /**
     * The peer is going, whoever began it. simple-peer closes its native connection in its next
     * timer, and emits 'close' only when its own destroy() began it: when the recorder closed the
     * channel, or it failed, it says 'disconnect' or 'error' and never 'close'. So every one of those
     * lets the peer go, here, once that timer has run; until then it counts.
     */
    const release = () => {
      if (going) return
      going = true
      clearTimeout(timeout)
      clearTimeout(ending)
      setTimeout(() => {
        open.delete(recorder)
        if (session !== undefined) connected--
        session?.closed()
        if (negotiations.get(from)?.recorder === recorder) negotiations.delete(from)
      }, 0)
    }
    const drop = () => {
      peer.destroy()
      release()
    }
    const recorder: RecorderPeer = { peer, drop }
    open.add(recorder)
    peer.on('signal', (reply) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ to: from, data: reply }))
    })
    peer.on('connect', () => {
      if (going) return
      clearTimeout(timeout)
      connected++
      session = init.accept({
        send: (text) => {
          if (peer.connected) peer.send(text)
        },
        // The session's last answer says why it ends: destroying the peer at once lost that answer
        // about one time in ten. The session reads nothing more; the peer goes after a grace period.
        close: () => {
          ending ??= setTimeout(drop, limits.closeGraceMs)
        },
        // A data channel cannot pause its sender: the recorder's window is the backpressure.
        pause: () => {},
        resume: () => {},
        transport: 'webrtc',
      })
    })
    peer.on('data', (message) => {
      if (going || ending !== undefined) return
      if (typeof message === 'string') session?.receive(new TextEncoder().encode(message), false)
      else session?.receive(message, true)
    })
    peer.on('error', (error) => {
      log(`recorder ${from}: ${error.message}`)
      release()
    })
    peer.on('close', release)
    peer.on('disconnect', release)
    return recorder
  }

  /** One signaling message (`bytes` long) from the recorder at `from`. */
  const isBye = (data: unknown) =>
    typeof data === 'object' && data !== null && (data as { type?: unknown }).type === RECORDER_BYE
  const answer = (ws: WebSocket, from: string, data: unknown, bytes: number) => {
    const offer = typeof data === 'object' && data !== null && (data as { type?: unknown }).type === 'offer'
    const known = negotiations.get(from)
    // Only an offer opens a connection; stray candidates of a gone peer are dropped.
    if (known === undefined && !offer) return
    // What an id signals counts while it has a peer here, across its offers.
    const signals = (known?.signals ?? 0) + 1
    const sent = (known?.bytes ?? 0) + bytes
    if (signals > limits.maxSignalsPerPeer || sent > limits.maxSignalBytesPerPeer) {
      log(`recorder ${from}: dropped after ${signals} signaling messages (${sent} bytes)`)
      known?.recorder.drop()
      return
    }
    // A recorder whose negotiation failed on its side says so: its peer goes now, not after the
    // connect timeout (it could otherwise hold a slot for 20 s, and a retrying recorder two).
    if (isBye(data)) {
      if (known !== undefined && !known.recorder.peer.connected) known.recorder.drop()
      return
    }
    // A recorder never renegotiates: a new offer is a reconnection, and the old connection (which
    // this side may not yet have noticed is dead) goes.
    if (offer) known?.recorder.drop()
    const recorder = offer ? create(ws, from) : known?.recorder
    if (recorder === undefined) return void negotiations.delete(from)
    negotiations.set(from, { recorder, signals, bytes: sent })
    try {
      recorder.peer.signal(data)
    } catch (error) {
      log(`recorder ${from} sent a bad signal: ${(error as Error).message}`)
      recorder.drop()
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
          answer(ws, message.from, message.data, String(event.data).length)
      })
      await closed
      init.signal.removeEventListener('abort', onAbort)
      if (init.signal.aborted) break
      registered = Promise.withResolvers<void>()
      log(`signaling connection lost; reconnecting`)
      await sleep(Math.min(10_000, 500 * 2 ** failures++), init.signal)
    }
    for (const { peer } of open) peer.destroy()
    negotiations.clear()
  })()

  return {
    get peer() {
      return ownPeer
    },
    get connected() {
      return connected
    },
    get peers() {
      return open.size
    },
    get refused() {
      return refused
    },
    registered: () => registered.promise,
  }
}
