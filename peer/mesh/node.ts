import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { webRTC } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { IceServer } from '../../relay/turn-credentials.ts'

/** Options of a mesh node. */
export interface MeshNodeInit {
  /** Multiaddrs of the circuit relay (from the signaling server's bootstrap). */
  relayAddrs: readonly string[]
  /** STUN/TURN servers for WebRTC (from the bootstrap; TURN credentials are ephemeral). */
  iceServers?: readonly IceServer[]
  /** Force every WebRTC connection through TURN (ICE relay-only): for tests and locked-down networks. */
  relayOnly?: boolean
}

/**
 * One libp2p node for every peer role, in Node (and, with the browser issue, in the browser):
 * WebSockets to reach the relay, circuit relay to be reachable through it, WebRTC for direct
 * connections, noise and yamux, identify. It listens on `<relay>/p2p-circuit` and `/webrtc`: what we
 * saw on libp2p 3 is that `/p2p-circuit` alone never reserves a slot on a relay known only by dialing
 * it, while this pair does, and the direct WebRTC connection follows about a second later on loopback.
 */
export async function createMeshNode(init: MeshNodeInit): Promise<Libp2p> {
  const rtcConfiguration: RTCConfiguration = {
    iceServers: (init.iceServers ?? []).map((s) => ({ ...s })),
    ...(init.relayOnly === true && { iceTransportPolicy: 'relay' as const }),
  }
  return createLibp2p({
    addresses: { listen: [...init.relayAddrs.map((a) => `${a}/p2p-circuit`), '/webrtc'] },
    transports: [webSockets(), webRTC({ rtcConfiguration }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback and private addresses are where tests and local events run.
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify() },
  })
}
