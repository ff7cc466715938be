import type { Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMeshNode } from '../../peer/mesh/node.ts'
import { createRelayNode } from '../../relay/circuit-relay.ts'

let relay: Libp2p
const peers: Libp2p[] = []

const webrtcAddr = (node: Libp2p) => {
  const addr = node.getMultiaddrs().find((m) => m.toString().includes('/p2p-circuit/webrtc/'))
  return addr
}

/**
 * Dials `to`'s WebRTC address. On a loaded machine libp2p's own WebRTC handshake now and then times
 * out (it did before any admission existed, at the same rate); the path under test is the one that
 * connects, so a timed-out handshake is tried again, twice at most.
 */
async function dialWebRtc(from: Libp2p, to: Libp2p) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await from.dial(webrtcAddr(to)!, { signal: AbortSignal.timeout(30_000) })
    } catch (error) {
      if (attempt === 3 || (error as Error).name !== 'TimeoutError') throw error
    }
  }
}

beforeAll(async () => {
  relay = await createRelayNode()
  const relayAddrs = relay.getMultiaddrs().map(String)
  for (let i = 0; i < 3; i++) peers.push(await createMeshNode({ relayAddrs }))
  // Each reserves a slot on the relay and gets a WebRTC address through it.
  for (let i = 0; i < 300 && peers.some((p) => webrtcAddr(p) === undefined); i++)
    await new Promise((r) => setTimeout(r, 100))
})

afterAll(async () => {
  for (const peer of peers) await peer.stop()
  await relay?.stop()
})

describe('libp2p mesh over a circuit relay', () => {
  it('every peer reserves a slot and connects to the others directly over WebRTC', async () => {
    for (const peer of peers) expect(webrtcAddr(peer)).toBeDefined()
    for (let i = 0; i < peers.length; i++) {
      const next = peers[(i + 1) % peers.length]!
      const connection = await dialWebRtc(peers[i]!, next)
      expect(connection.remotePeer.equals(next.peerId)).toBe(true)
      expect(connection.remoteAddr.toString()).toMatch(/\/webrtc\//)
    }
  })

  it('carries a 1 MiB message whole over a WebRTC stream', async () => {
    const [a, b] = peers as [Libp2p, Libp2p]
    const received = new Promise<number>((resolve) => {
      void b.handle('/crowdmesh/test/sink/1', async (stream) => {
        let bytes = 0
        for await (const chunk of stream) bytes += chunk.byteLength
        resolve(bytes)
        await stream.close()
      })
    })
    const stream = await a.dialProtocol(webrtcAddr(b)!, '/crowdmesh/test/sink/1')
    const payload = new Uint8Array(1024 * 1024).fill(7)
    for (let offset = 0; offset < payload.length; offset += 16 * 1024) {
      if (!stream.send(payload.subarray(offset, offset + 16 * 1024))) await stream.onDrain()
    }
    await stream.close()
    expect(await received).toBe(payload.length)
  })
})
