import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { type Connection, FaultTolerance, type PeerId, type PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { IceServer } from '../../relay/turn-credentials.ts'
import { meshDefaults } from '../protocol/defaults.ts'
import type { CrowdmeshError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { AdmissionRefusedError, LinkFullError, requestAdmission } from './admission.ts'

/** Options of a mesh node. */
export interface MeshNodeInit {
  /** Multiaddrs of the circuit relay (from the signaling server's bootstrap). */
  relayAddrs: readonly string[]
  /** STUN/TURN servers for WebRTC (from the bootstrap; TURN credentials are ephemeral). */
  iceServers?: readonly IceServer[]
  /** Force every WebRTC connection through TURN (ICE relay-only): for tests and locked-down networks. */
  relayOnly?: boolean
  /**
   * Local address WebRTC's ICE binds to (Node only; default: every interface). An operator's
   * coordinator on a multi-homed host pins it; the relay-only test pins it to loopback.
   */
  iceBindAddress?: string
  /** The node's identity (default: a new one); a coordinator that restarts keeps its peer id with it. */
  privateKey?: PrivateKey
  /**
   * The join token this node shows the relay on each connection to it (`/crowdmesh/admit/1`): an
   * event's relay reserves no slot and relays nothing for a peer it has not admitted. `onRefused` is
   * called once if the relay refuses it (`AdmissionRefusedError`, `LinkFullError`); the node then
   * stops dialling the relay. Without it the node shows no token (the event's own coordinator,
   * whom its relay trusts by peer id; tests on an open relay).
   */
  admission?: { token: string; onRefused?: (error: CrowdmeshError) => void }
  /**
   * The peers this node exchanges gossip with (default: any). Others are scored
   * `meshDefaults.outsiderGossipScore`: nothing is published or forwarded to them, and they are kept
   * out of the gossip mesh. A coordinator passes the peers it admitted; a participant, its coordinator.
   */
  gossipPeers?: (peer: string) => boolean
  /**
   * The peers this node accepts inbound connections from, besides its relays (default: anyone, as the
   * coordinator's node needs). Whoever the relay admitted (any holder of a participant link) can be
   * relayed to any peer with a slot on it, and each connection costs a phone memory, a WebRTC
   * negotiation and a data channel: a participant, which talks to its coordinator alone, passes it.
   */
  acceptInboundFrom?: (peer: string) => boolean
}

/** A mesh node: libp2p with gossipsub. */
export type MeshNode = Libp2p<{ identify: unknown; gossip: GossipSub }>

/**
 * One libp2p node for every peer role, in Node (and, with the browser issue, in the browser):
 * WebSockets to reach the relay, circuit relay to be reachable through it, WebRTC for direct
 * connections, noise and yamux, identify, gossipsub. It listens on `<relay>/p2p-circuit` and `/webrtc`: what we
 * saw on libp2p 3 is that `/p2p-circuit` alone never reserves a slot on a relay known only by dialing
 * it, while this pair does, and the direct WebRTC connection follows about a second later on loopback.
 */
export async function createMeshNode(
  init: MeshNodeInit,
  components: { logger?: Logger } = {},
): Promise<MeshNode> {
  // A browser's RTCPeerConnection takes TURN credentials as given; node-datachannel needs them encoded.
  const inBrowser = 'document' in globalThis
  const rtcConfiguration: RTCConfiguration = {
    iceServers: (init.iceServers ?? []).map(inBrowser ? (s) => ({ ...s, urls: [...s.urls] }) : nodeIceServer),
    ...(init.relayOnly === true && { iceTransportPolicy: 'relay' as const }),
    // node-datachannel reads this extension of RTCConfiguration; browsers ignore it.
    ...(init.iceBindAddress !== undefined && { bindAddress: init.iceBindAddress }),
  }
  const gossipPeers = init.gossipPeers
  const relayPeers = relayPeerIds(init.relayAddrs)
  const acceptInboundFrom = init.acceptInboundFrom
  const refusesInbound =
    acceptInboundFrom === undefined
      ? undefined
      : (peer: PeerId) => !relayPeers.has(peer.toString()) && !acceptInboundFrom(peer.toString())
  const node = await createLibp2p({
    // Started below, once the relay's admission listens for the first connection.
    start: false,
    addresses: {
      // `/p2p-circuit` as well: a reservation made by discovery is made again when the relay comes
      // back after a restart (one made for a configured relay address is not), see `keepRelay`.
      listen: [...init.relayAddrs.map((a) => `${a}/p2p-circuit`), '/p2p-circuit', '/webrtc'],
    },
    // A relay that is down or restarting must not stop the node from starting: `keepRelay` retries.
    transportManager: { faultTolerance: FaultTolerance.NO_FATAL },
    transports: [webSockets(), webRTC({ rtcConfiguration }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: {
      // Loopback and private addresses are where tests and local events run.
      denyDialMultiaddr: () => false,
      // A relayed stranger is refused at the relay's request to connect, before any handshake or WebRTC
      // negotiation; any other inbound path (a direct WebRTC connection) once its peer id is known.
      ...(refusesInbound !== undefined && {
        denyInboundRelayedConnection: (_relay: PeerId, remote: PeerId) => refusesInbound(remote),
        denyInboundEncryptedConnection: refusesInbound,
      }),
    },
    ...(init.privateKey !== undefined && { privateKey: init.privateKey }),
    services: {
      identify: identify(),
      gossip: gossipsub({
        // The coordinator publishes before anyone has subscribed (the first status, an early outcome).
        allowPublishToZeroTopicPeers: true,
        maxInboundDataLength: meshDefaults.maxGossipBytes + 4096,
        // An outcome is up to 1 MiB; a slow participant must not make the coordinator buffer without end.
        maxOutboundBufferSize: 16 * meshDefaults.maxGossipBytes,
        scoreParams: {
          appSpecificScore: (peer) =>
            gossipPeers === undefined || gossipPeers(peer) ? 0 : meshDefaults.outsiderGossipScore,
          appSpecificWeight: 1,
          // Everyone at a venue may share one public address, and every relayed or TURN path shares
          // the relay's: gossipsub's colocation penalty (−5 per peer past 10, squared) would push an
          // event's crowd below the publish threshold. Admission bounds the peers instead.
          IPColocationFactorWeight: 0,
        },
      }),
    },
  })
  const relay = keepRelay(node, init.relayAddrs, relayPeers)
  if (init.admission !== undefined)
    admitOnRelay(node, relay, init.admission, components.logger ?? makeLogger('crowdmesh:mesh:node'))
  await node.start()
  return node
}

/**
 * Shows the token to the relay on every new connection to it (a relay restart, a network change).
 * A refusal is final: it is reported once and the relay is no longer dialled.
 */
function admitOnRelay(
  node: Libp2p,
  relay: RelayKeeper,
  admission: NonNullable<MeshNodeInit['admission']>,
  log: Logger,
): void {
  const stopped = new AbortController()
  const onConnection = (event: CustomEvent<Connection>) => {
    const connection = event.detail
    if (!relay.peers.has(connection.remotePeer.toString()) || relay.refused) return
    const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(meshDefaults.relayAdmitTimeoutMs)])
    requestAdmission(connection, admission.token, signal).catch((error: unknown) => {
      if (stopped.signal.aborted) return
      // A refused token or a full link is final (the relay hangs up right after saying so); anything
      // else (a slow admission, a dropped connection) is tried again on the next connection.
      if (error instanceof AdmissionRefusedError || error instanceof LinkFullError) {
        relay.refused = true
        admission.onRefused?.(error)
      } else log(`admission on the relay failed: ${(error as Error).message}`)
    })
  }
  node.addEventListener('connection:open', onConnection)
  node.addEventListener(
    'stop',
    () => {
      stopped.abort()
      node.removeEventListener('connection:open', onConnection)
    },
    { once: true },
  )
}

/** The relay's peer ids, and whether it refused this node (then it is not dialled again). */
interface RelayKeeper {
  readonly peers: ReadonlySet<string>
  refused: boolean
}

/**
 * Dials the relay again whenever the connection to it drops (a relay restart, a network change), with
 * back-off, until the node stops: the circuit-relay transport then reserves a slot again, and peers
 * can reach this one through the relay once more. Direct WebRTC connections are unaffected meanwhile.
 */
function keepRelay(node: Libp2p, relayAddrs: readonly string[], relays: ReadonlySet<string>): RelayKeeper {
  const keeper: RelayKeeper = { peers: relays, refused: false }
  let timer: ReturnType<typeof setTimeout> | undefined
  let attempt = 0
  const redial = () => {
    timer = undefined
    if (node.status !== 'started' || keeper.refused) return
    Promise.any(relayAddrs.map((a) => node.dial(multiaddr(a))))
      .then(() => {
        attempt = 0
      })
      .catch(() => {
        timer = setTimeout(redial, Math.min(10_000, 250 * 2 ** attempt++))
      })
  }
  const onDisconnect = (event: CustomEvent<PeerId>) => {
    if (relays.has(event.detail.toString()) && timer === undefined && !keeper.refused)
      timer = setTimeout(redial, 250)
  }
  node.addEventListener('peer:disconnect', onDisconnect)
  node.addEventListener(
    'stop',
    () => {
      node.removeEventListener('peer:disconnect', onDisconnect)
      clearTimeout(timer)
    },
    { once: true },
  )
  return keeper
}

/** The peer ids in the relay's multiaddrs (`…/p2p/<id>`). */
function relayPeerIds(relayAddrs: readonly string[]): ReadonlySet<string> {
  const ids = relayAddrs.map(
    (a) =>
      multiaddr(a)
        .getComponents()
        .find((c) => c.name === 'p2p')?.value,
  )
  return new Set(ids.filter((id) => id !== undefined))
}

/**
 * node-datachannel hands TURN servers to libdatachannel as `turn:<user>:<password>@host` URLs, so
 * the TURN REST username's own colon (`<expiry>:<id>`) would end the username early and coturn would
 * refuse it. libdatachannel percent-decodes both parts: encoding them here keeps them whole.
 */
function nodeIceServer(server: IceServer): RTCIceServer {
  return {
    urls: [...server.urls],
    ...(server.username !== undefined && { username: encodeURIComponent(server.username) }),
    ...(server.credential !== undefined && { credential: encodeURIComponent(server.credential) }),
  }
}
