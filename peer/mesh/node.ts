import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import { FaultTolerance, type PeerId, type PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { IceServer } from '../../relay/turn-credentials.ts'
import { meshDefaults } from '../protocol/defaults.ts'

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
export async function createMeshNode(init: MeshNodeInit): Promise<MeshNode> {
  // A browser's RTCPeerConnection takes TURN credentials as given; node-datachannel needs them encoded.
  const inBrowser = 'document' in globalThis
  const rtcConfiguration: RTCConfiguration = {
    iceServers: (init.iceServers ?? []).map(inBrowser ? (s) => ({ ...s, urls: [...s.urls] }) : nodeIceServer),
    ...(init.relayOnly === true && { iceTransportPolicy: 'relay' as const }),
    // node-datachannel reads this extension of RTCConfiguration; browsers ignore it.
    ...(init.iceBindAddress !== undefined && { bindAddress: init.iceBindAddress }),
  }
  const node = await createLibp2p({
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
    // Loopback and private addresses are where tests and local events run.
    connectionGater: { denyDialMultiaddr: () => false },
    ...(init.privateKey !== undefined && { privateKey: init.privateKey }),
    services: {
      identify: identify(),
      gossip: gossipsub({
        // The coordinator publishes before anyone has subscribed (the first status, an early outcome).
        allowPublishToZeroTopicPeers: true,
        maxInboundDataLength: meshDefaults.maxGossipBytes + 4096,
        // An outcome is up to 1 MiB; a slow participant must not make the coordinator buffer without end.
        maxOutboundBufferSize: 16 * meshDefaults.maxGossipBytes,
      }),
    },
  })
  keepRelay(node, init.relayAddrs)
  return node
}

/**
 * Dials the relay again whenever the connection to it drops (a relay restart, a network change), with
 * back-off, until the node stops: the circuit-relay transport then reserves a slot again, and peers
 * can reach this one through the relay once more. Direct WebRTC connections are unaffected meanwhile.
 */
function keepRelay(node: Libp2p, relayAddrs: readonly string[]): void {
  const relays = new Set(
    relayAddrs.map(
      (a) =>
        multiaddr(a)
          .getComponents()
          .find((c) => c.name === 'p2p')?.value,
    ),
  )
  let timer: ReturnType<typeof setTimeout> | undefined
  let attempt = 0
  const redial = () => {
    timer = undefined
    if (node.status !== 'started') return
    Promise.any(relayAddrs.map((a) => node.dial(multiaddr(a))))
      .then(() => {
        attempt = 0
      })
      .catch(() => {
        timer = setTimeout(redial, Math.min(10_000, 250 * 2 ** attempt++))
      })
  }
  const onDisconnect = (event: CustomEvent<PeerId>) => {
    if (relays.has(event.detail.toString()) && timer === undefined) timer = setTimeout(redial, 250)
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
