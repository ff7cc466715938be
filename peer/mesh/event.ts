import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p } from 'libp2p'
import { verifyJoinToken } from '../../signaling/join-token.ts'
import { type SignalingInit, type SignalingServer, startSignaling } from '../../signaling/server.ts'
import { webAppDir } from '../../signaling/web-app.ts'
import { createRelayNode } from '../../relay/circuit-relay.ts'
import { CoturnSupervisor, findTurnserver, privateRanges } from '../../relay/coturn.ts'
import { Coordinator, type CoordinatorInit, type FrameReport } from '../coordinator/coordinator.ts'
import { nodeFiles, nodeVideos } from '../jobs/node-env.ts'
import { frameSource } from '../participant/frame-source.ts'
import { systemClock } from '../protocol/clock.ts'
import { turnDefaults } from '../protocol/defaults.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { type FrameKey, generateFrameKey } from '../protocol/frame-keys.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { CoordinatorHost, type HostLimits } from './coordinator-host.ts'
import type { EventConsole } from '../console/event-console.ts'
import type { DedicatedDevices, DedicatedLauncher } from './dedicated-devices.ts'
import { startOperatorParts } from './event-operator.ts'
import { type FrameStore, type ImageInput, startFrameStore } from './frame-store.ts'
import { createMeshNode, type MeshNode } from './node.ts'

/** Options of an event run on this machine. */
export interface EventInit<T = unknown> {
  /** The coordinator's options (its jobs, scheduling); its first job's rounds are `addFrame`'s. */
  coordinator: CoordinatorInit<T>
  name?: string
  /** Address every part listens on (default 127.0.0.1). */
  host?: string
  /** Signaling port (default: any free one). */
  signalingPort?: number
  /** Relay port (default: any free one); with `relayKey`, a restarted relay is the same relay. */
  relayPort?: number
  relayKey?: PrivateKey
  /**
   * TURN: `auto` (default) starts coturn when it is installed and says so when it is not; `required`
   * fails without it; `off` runs without TURN (direct and STUN-less host candidates only).
   */
  turn?: 'auto' | 'required' | 'off'
  /**
   * Address coturn relays from (default: `host`). With the event on a private interface and the
   * coordinator's ICE on loopback, a relay on loopback is the only path between them.
   */
  turnRelayIp?: string
  /** Local address the coordinator's WebRTC binds to (default: every interface). */
  coordinatorIceBindAddress?: string
  /** Limits of the coordinator's work protocol and admission (`HostLimits`). */
  limits?: Partial<HostLimits>
  /**
   * The relay's admission: a peer must show a valid participant or operator link's token within
   * `admitTimeoutMs` of connecting (default `meshDefaults.relayAdmitTimeoutMs`), and one link holds at
   * most `maxPeersPerLink` peers (default `meshDefaults.maxPeersPerLink`).
   */
  admission?: { admitTimeoutMs?: number; maxPeersPerLink?: number }
  /**
   * Per-frame keys (off by default): each frame's images are served sealed with a key of that frame
   * alone, its leases carry the key, and results come back sealed with it (`protocol/frame-keys.ts`).
   */
  frameKeys?: boolean
  /**
   * Dedicated devices: at most `max` participants started (by `launch`, default a local Node
   * participant process) while the crowd computes less than a live job's floor (`floors`, reference
   * units per second by job; default each live job's own, from its rounds' rate and size).
   */
  dedicated?: { max: number; launch?: DedicatedLauncher; floors?: Record<string, number> }
  /** Folder of the built participant web app served at join links (default: `dist/web` when built). */
  webAppDir?: string
  logger?: Logger
}

/** What an operator link's label starts with (`RunningEvent.isOperator`). */
const operatorLabel = 'operator:'

/** A running event: every server part on this machine, and the coordinator. */
export interface RunningEvent<T = unknown> {
  readonly event: string
  /** The link participants open. */
  readonly joinLink: string
  readonly joinLinks: Record<string, string>
  readonly signaling: SignalingServer
  /** The operator's console (a page at `consoleLink`, served by the signaling server). */
  readonly console: EventConsole
  readonly consoleLink: string
  /** The pool of dedicated devices, when `dedicated` was given. */
  readonly dedicated: DedicatedDevices | undefined
  readonly relay: Libp2p
  readonly node: MeshNode
  readonly coordinator: Coordinator<T>
  readonly host: CoordinatorHost
  /** Whether `peer` was admitted on the operator's link (a result writer, say). */
  isOperator(peer: PeerId | string): boolean
  readonly frames: FrameStore
  /** The TURN server, when coturn runs. */
  readonly turn: CoturnSupervisor | undefined
  /** Why there is no TURN, when there is none. */
  readonly turnNote: string | undefined
  /**
   * Publishes an image input (a camera's frame) in the frame store and hands it to the coordinator,
   * as an input of round `frame.index` of the first job.
   */
  addFrame(frame: ImageInput): void
  /**
   * Hands an input of round `frameIndex` of any job to the coordinator; each of the input's file:
   * URLs (`imageUrl`, `videoUrl`, …) is published in the frame store first, so every participant
   * can fetch it.
   */
  addInput(jobId: string, frameIndex: number, input: unknown): void
  /** Stops the relay (to test reconnection); `restartRelay` brings it back on the same port and key. */
  stopRelay(): Promise<void>
  restartRelay(): Promise<void>
  /** Stops every part. Safe to call twice. */
  stop(): Promise<void>
}

/**
 * Starts an event on this machine: the signaling server, coturn (when installed), the circuit relay,
 * the coordinator's mesh node (reserved on the relay, so participants can reach it over WebRTC), the
 * coordinator and its host, and the frame store. Returns once a participant could join.
 */
export async function startEvent<T = unknown>(init: EventInit<T>): Promise<RunningEvent<T>> {
  const log = init.logger ?? makeLogger('crowdmesh:event')
  const host = init.host ?? '127.0.0.1'
  const tokenSecret = randomBytes(32).toString('base64url')
  const stops: [string, () => Promise<unknown>][] = []
  const stopAll = async () => {
    for (const [name, stop] of stops.splice(0).reverse()) {
      const started = performance.now()
      await stop().catch((e: unknown) => log.error(`stopping ${name}: ${String(e)}`))
      log(`stopped ${name} in ${Math.round(performance.now() - started)} ms`)
    }
  }
  try {
    let turn: CoturnSupervisor | undefined
    let turnNote: string | undefined
    let ice: SignalingInit['ice']
    const mode = init.turn ?? 'auto'
    if (mode !== 'off') {
      if (findTurnserver() === undefined) {
        turnNote = 'coturn is not installed (apt-get install coturn): participants get no TURN relay'
        if (mode === 'required') throw new CrowdmeshError(turnNote)
      } else {
        const port = await freeUdpPort(host)
        const secret = randomBytes(24).toString('base64url')
        const relayIp = init.turnRelayIp ?? host
        const loopback = relayIp.startsWith('127.')
        const supervisor = new CoturnSupervisor({
          listeningIp: host,
          port,
          relayIp,
          minPort: port + 1,
          maxPort: port + turnDefaults.relayPorts,
          realm: 'crowdmesh',
          secret,
          // On loopback the relay must reach loopback peers; every other private range stays denied.
          deniedPeerRanges: loopback ? privateRanges.filter((r) => !r.startsWith('127.')) : privateRanges,
          allowLoopbackPeers: loopback,
          // No workDir: the supervisor makes a private temp folder for the configuration and secret,
          // and removes it on stop, or through coturn's watchdog when this process dies unstopped.
        })
        await supervisor.start()
        turn = supervisor
        stops.push(['coturn', () => supervisor.stop()])
        ice = {
          stunUrls: [`stun:${host}:${port}`],
          turnUrls: [`turn:${host}:${port}?transport=udp`],
          turnSecret: secret,
          ttlSeconds: 12 * 3600,
        }
      }
    }
    const signaling = await startSignaling({
      host,
      ...(init.signalingPort !== undefined && { port: init.signalingPort }),
      tokenSecret,
      ...(ice !== undefined && { ice }),
      webAppDir: init.webAppDir ?? webAppDir,
    })
    stops.push(['signaling', () => signaling.close()])
    const frames = await startFrameStore({ host })
    stops.push(['frame store', () => frames.close()])
    const { event, joinLinks, consoleLink } = signaling.createEvent(
      init.name ?? init.coordinator.jobs[0]?.spec.jobId ?? 'event',
    )
    // One check for the relay's admission and the coordinator's hello: a link of this event that may
    // compute. Its jti names the link, whose admitted peers are counted.
    const computeLink = (token: string): string => {
      const claims = verifyJoinToken(token, tokenSecret, { event })
      if (claims.role !== 'participant' && claims.role !== 'operator')
        throw new CrowdmeshError(`a ${claims.role} link cannot compute for the event`)
      // The label says the role too: an operator's peers may do what participants may not (write
      // a match run's results).
      return claims.role === 'operator' ? `${operatorLabel}${claims.jti}` : claims.jti
    }
    // The coordinator's identity is known before its node starts, so the relay can trust it by peer id.
    const coordinatorKey = await generateKeyPair('Ed25519')
    const coordinatorPeer = peerIdFromPrivateKey(coordinatorKey).toString()

    let relayPort = init.relayPort ?? 0
    const relayInit = () => ({
      host,
      port: relayPort,
      ...(init.relayKey !== undefined && { privateKey: init.relayKey }),
      admission: { ...init.admission, verify: computeLink, trustedPeers: [coordinatorPeer] },
    })
    let relay = await createRelayNode(relayInit())
    relayPort = Number(/\/tcp\/(\d+)/.exec(relay.getMultiaddrs()[0]!.toString())![1])
    stops.push(['relay', () => relay.stop() as Promise<void>])
    const relayAddrs = relay.getMultiaddrs().map(String)

    // The coordinator needs no TURN of its own: a relay-only participant's TURN relay reaches it directly.
    // It gossips only with the participants its host welcomed.
    const welcomed: { by?: CoordinatorHost } = {}
    const node = await createMeshNode({
      relayAddrs,
      privateKey: coordinatorKey,
      gossipPeers: (peer) => welcomed.by?.isAdmitted(peer) === true,
      ...(init.coordinatorIceBindAddress !== undefined && { iceBindAddress: init.coordinatorIceBindAddress }),
    })
    stops.push(['coordinator node', () => node.stop() as Promise<void>])
    await reserved(node)
    // The coordinator's spot checks read frames the way a Node participant does (README, "Trust"); a
    // sealed frame (per-frame keys) from the file it was sealed from.
    const sealedFrom = new Map<string, string>()
    const checkFrames = frameSource()
    const coordinator = new Coordinator<T>(init.coordinator, {
      clock: systemClock,
      checkerEnv: {
        frames: {
          get: (url, signal) => checkFrames.get(sealedFrom.get(url) ?? url, signal),
          get size() {
            return checkFrames.size
          },
        },
        files: nodeFiles(),
        videos: nodeVideos(),
      },
    })
    stops.push(['coordinator', () => Promise.resolve(coordinator.stop())])
    const coordinatorHost = new CoordinatorHost(
      {
        node,
        coordinator,
        event,
        authorize: computeLink,
        ...(init.limits !== undefined && { limits: init.limits }),
      },
      { clock: systemClock },
    )
    welcomed.by = coordinatorHost
    await coordinatorHost.start()
    stops.push(['host', () => coordinatorHost.stop()])
    signaling.setBootstrap(event, { coordinatorPeerId: node.peerId.toString(), relayAddrs })
    // The operator's side: the console, the metrics and dedicated devices.
    const operator = startOperatorParts({
      event,
      signaling,
      coordinator,
      host: coordinatorHost,
      dedicatedLink: (link) =>
        verifyJoinToken(link.slice(link.lastIndexOf('/') + 1), tokenSecret, { event }).jti,
      ...(init.dedicated !== undefined && { dedicated: init.dedicated }),
      // Every participant reaches the relay first, from its own address; the host sees relayed WebRTC.
      addressOf: (participantId) => {
        const remote = relay.getConnections(peerIdFromString(participantId))[0]?.remoteAddr.toString()
        const ip = remote === undefined ? null : /^\/ip[46]\/([^/]+)\/(?:tcp|udp)\/(\d+)/.exec(remote)
        return ip === null ? undefined : `${ip[1]}:${ip[2]}`
      },
      health: () => ({
        turn: turn === undefined ? 'off' : turn.running ? 'up' : 'down',
        relay:
          relay.status === 'started' &&
          node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit/webrtc'))
            ? 'up'
            : 'down',
      }),
    })
    stops.push(['console, metrics and dedicated devices', () => operator.stop()])
    log(`event ${event} ready: ${joinLinks.participant}`)

    const firstJob = init.coordinator.jobs[0]!.spec.jobId
    const addFrame =
      init.frameKeys === true
        ? keyedFrames(coordinator, firstJob, coordinatorHost, frames, sealedFrom, log)
        : undefined
    let stopped = false
    return {
      event,
      joinLink: joinLinks.participant,
      joinLinks,
      signaling,
      console: operator.console,
      consoleLink,
      dedicated: operator.dedicated,
      get relay() {
        return relay
      },
      node,
      coordinator,
      host: coordinatorHost,
      isOperator: (peer) => coordinatorHost.linkOf(peer)?.startsWith(operatorLabel) === true,
      frames,
      turn,
      turnNote,
      addFrame: addFrame ?? ((frame) => coordinator.addInput(firstJob, frame.index, frames.publish(frame))),
      addInput: (jobId, frameIndex, input) => {
        // Every file: URL of the input (an image, a video, a fingerprint file) is served by the
        // frame store, so participants on other machines fetch it the way they fetch any URL.
        const published =
          typeof input === 'object' && input !== null && !Array.isArray(input)
            ? Object.fromEntries(
                Object.entries(input).map(([key, value]) => [
                  key,
                  typeof value === 'string' && value.startsWith('file:') ? frames.publishFile(value) : value,
                ]),
              )
            : input
        coordinator.addInput(jobId, frameIndex, published)
      },
      stopRelay: async () => {
        const id = relay.peerId
        await relay.stop()
        // Until the coordinator notices, its old reservation would look valid.
        const deadline = performance.now() + 5000
        while (node.getConnections(id).length > 0 && performance.now() < deadline)
          await new Promise((r) => setTimeout(r, 50))
        await new Promise((r) => setTimeout(r, 200))
      },
      restartRelay: async () => {
        relay = await createRelayNode(relayInit())
        // The coordinator reserves a slot on the new relay before participants can reach it again.
        await reserved(node, relay.peerId)
      },
      stop: async () => {
        if (stopped) return
        stopped = true
        await stopAll()
      },
    }
  } catch (error) {
    await stopAll()
    throw error
  }
}

/**
 * Resolves once the node is connected to the relay and holds a reservation on it (it has a
 * `/p2p-circuit/webrtc` address); after a relay restart the mesh node's relay keeper reconnects.
 */
async function reserved(node: MeshNode, relay?: PeerId, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const connected = relay === undefined || node.getConnections(relay).length > 0
    if (connected && node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit/webrtc'))) return
    if (performance.now() > deadline)
      throw new CrowdmeshError('the coordinator could not reserve a slot on the relay')
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** A UDP port free on `host` now (coturn needs one; it also takes the TCP port of the same number). */
function freeUdpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    socket.once('error', reject)
    // Stay below the range the kernel hands out for ephemeral ports, and leave room for the relay range.
    const port = 20_000 + Math.floor(Math.random() * 10_000)
    socket.bind(port, host, () => {
      socket.close(() => resolve(port))
    })
  })
}

/**
 * `addFrame` with per-frame keys: a new key for each frame index, the frame's images sealed with it
 * in the frame store and dropped from memory once the frame ends. Sealing is asynchronous; a chain
 * keeps frames reaching the coordinator in the order they were added.
 */
function keyedFrames<T>(
  coordinator: Coordinator<T>,
  firstJob: string,
  host: CoordinatorHost,
  frames: FrameStore,
  sealedFrom: Map<string, string>,
  log: Logger,
): (frame: ImageInput) => void {
  const keys = new Map<number, Promise<FrameKey>>()
  const sealedUrls = new Map<number, string[]>()
  const release = ({ jobId, frameIndex }: FrameReport) => {
    if (jobId !== firstJob) return
    keys.delete(frameIndex)
    for (const url of sealedUrls.get(frameIndex) ?? []) {
      frames.release(url)
      sealedFrom.delete(url)
    }
    sealedUrls.delete(frameIndex)
  }
  coordinator.on('frameComplete', (_outcome, report) => release(report))
  coordinator.on('frameDropped', release)
  let chain = Promise.resolve()
  return (frame) => {
    let key = keys.get(frame.index)
    if (key === undefined) {
      key = generateFrameKey()
      keys.set(frame.index, key)
    }
    const pending = key
    chain = chain
      .then(async () => {
        const frameKey = await pending
        const sealed = await frames.publishSealed(frame, frameKey)
        sealedUrls.set(frame.index, [...(sealedUrls.get(frame.index) ?? []), sealed.imageUrl])
        sealedFrom.set(sealed.imageUrl, frame.imageUrl)
        host.setFrameKey(frame.index, frameKey)
        coordinator.addInput(firstJob, sealed.index, sealed)
      })
      .catch((error: unknown) =>
        log.error(`frame ${frame.index}: cannot seal ${frame.imageUrl}: ${String(error)}`),
      )
  }
}
