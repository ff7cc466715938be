import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import type { PrivateKey } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import { AdmissionGate, type AdmissionGateInit } from '../peer/mesh/admission-gate.ts'

/** Options of the relay node; each defaults as documented. */
export interface RelayNodeInit {
  /** Address and port for the WebSocket listener (default 127.0.0.1, any free port). */
  host?: string
  port?: number
  /**
   * Reservations it holds at once (libp2p's default is 15: an event needs one per participant
   * waiting for WebRTC upgrades; default 4,096).
   */
  maxReservations?: number
  /**
   * Relayed connections carry only WebRTC negotiation before the direct connection takes over, but
   * a peer behind a symmetric NAT may stay relayed: libp2p's 2 min / 128 KiB default would cut it off.
   * Defaults: 30 min and 64 MiB per relayed connection.
   */
  durationLimitMs?: number
  dataLimitBytes?: bigint
  /** The relay's identity (default: a new one); keep it to restart the relay under the same multiaddr. */
  privateKey?: PrivateKey
  /**
   * Join-token admission (`peer/mesh/admission-gate.ts`): each peer shows a valid token on
   * `/crowdmesh/admit/1` right after connecting; until then it gets no reservation and no relayed
   * connection, and without it in time it is disconnected. An event's relay always has one
   * (`startEvent` passes the event's token check); without it the relay serves anyone (tests, benches).
   */
  admission?: AdmissionGateInit
}

/**
 * The libp2p circuit-relay v2 node every peer dials first (WebSocket transport): peers reserve a slot
 * on it, and WebRTC connections between them are negotiated through it. With `admission`, reserving
 * and being relayed wait for the peer's admission (at most its admission timeout) and are refused
 * without it.
 */
export async function createRelayNode(init: RelayNodeInit = {}): Promise<Libp2p> {
  // The gater is asked before the gate exists (the gate needs the node): it reads it when called.
  let gate: AdmissionGate | undefined
  const admitted = async (peer: Parameters<AdmissionGate['waitAdmitted']>[0]) =>
    gate === undefined || (await gate.waitAdmitted(peer))
  const node = await createLibp2p({
    start: false,
    ...(init.privateKey !== undefined && { privateKey: init.privateKey }),
    addresses: { listen: [`/ip4/${init.host ?? '127.0.0.1'}/tcp/${init.port ?? 0}/ws`] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 10_000 },
    ...(init.admission !== undefined && {
      connectionGater: {
        denyInboundRelayReservation: async (peer) => !(await admitted(peer)),
        // The source must be admitted; a destination holds a reservation only if it was.
        denyOutboundRelayedConnection: async (source) => !(await admitted(source)),
      },
    }),
    services: {
      identify: identify(),
      relay: circuitRelayServer({
        reservations: {
          maxReservations: init.maxReservations ?? 4096,
          applyDefaultLimit: true,
          defaultDurationLimit: init.durationLimitMs ?? 30 * 60_000,
          defaultDataLimit: init.dataLimitBytes ?? 64n * 1024n * 1024n,
        },
        maxInboundHopStreams: 4096,
        maxOutboundHopStreams: 4096,
      }),
    },
  })
  if (init.admission !== undefined) {
    const started = new AdmissionGate(init.admission, { node })
    await started.start()
    gate = started
    node.addEventListener('stop', () => void started.stop(), { once: true })
  }
  await node.start()
  return node
}
