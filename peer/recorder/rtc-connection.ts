import SimplePeer from '@thaunknown/simple-peer/lite.js'
import { AbortError, CrowdmeshError } from '../protocol/errors.ts'
import { RECORDER_BYE } from '../server/upload-protocol.ts'
import { AnswerQueue } from './answers.ts'
import type { Connect } from './uploader.ts'

/** Where a recorder's WebRTC connection to the server peer is negotiated. */
export interface RtcConnectInit {
  /** The signaling socket with the recorder's token: `ws://…/signal?token=…`. */
  signalUrl: string
  /** The server peer's signaling id, asked on every connection (a restarted server may move). */
  serverPeer: (signal: AbortSignal) => Promise<string | undefined>
  iceServers?: RTCIceServer[]
  /** Only TURN relay candidates (a network that blocks the direct path). */
  relayOnly?: boolean
}

/** The server peer could not be reached over WebRTC: the next transport (WebSocket) is tried. */
export class RtcUnavailableError extends CrowdmeshError {}

/**
 * An upload connection over a reliable, ordered WebRTC data channel to the server peer (the seed's
 * transport): offered through the signaling server's `/signal` relay with simple-peer (a maintained
 * fork: the page's RTCPeerConnection in a browser, node-datachannel in Node), TURN when direct
 * fails. The signaling socket is closed once the channel is open. The uploader gives up on it after
 * its connect timeout and falls back to the WebSocket.
 */
export function connectRtc(init: RtcConnectInit): Connect {
  return async (signal) => {
    const server = await init.serverPeer(signal)
    if (server === undefined) throw new RtcUnavailableError('no server peer for recordings is connected')
    const ws = new WebSocket(init.signalUrl)
    const peer = new SimplePeer({
      initiator: true,
      objectMode: true,
      config: {
        iceServers: init.iceServers ?? [],
        ...(init.relayOnly === true && { iceTransportPolicy: 'relay' as const }),
      },
    })
    return new Promise((resolve, reject) => {
      const outgoing: unknown[] = []
      let welcomed = false
      let settled = false
      const fail = (error: Error) => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        peer.destroy()
        // The server peer holds a peer for this negotiation until its connect timeout otherwise.
        if (welcomed) forward({ type: RECORDER_BYE })
        ws.close()
        reject(error)
      }
      const onAbort = () => fail(new AbortError('WebRTC did not connect in time'))
      signal.addEventListener('abort', onAbort, { once: true })
      // Candidates still trickling after the channel opened have nowhere to go, and need none.
      const forward = (data: unknown) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ to: server, data }))
      }
      peer.on('signal', (data) => (welcomed ? forward(data) : outgoing.push(data)))
      const answers = new AnswerQueue()
      peer.on('error', (error) => {
        answers.end()
        fail(new RtcUnavailableError(`WebRTC failed: ${error.message}`))
      })
      peer.on('close', () => answers.end())
      peer.on('data', (data) => {
        // The server answers in text only; anything else is not the protocol.
        if (typeof data !== 'string' || !answers.push(data)) peer.destroy()
      })
      ws.addEventListener('message', (event) => {
        let message: { type?: string; from?: string; data?: unknown; error?: string }
        try {
          message = JSON.parse(String(event.data)) as typeof message
        } catch {
          return fail(new RtcUnavailableError('the signaling server sent something unreadable'))
        }
        if (message.type === 'welcome') {
          welcomed = true
          for (const data of outgoing.splice(0)) forward(data)
        } else if (message.type === 'signal' && message.from === server) {
          try {
            peer.signal(message.data)
          } catch (error) {
            fail(new RtcUnavailableError(`bad answer from the server peer: ${(error as Error).message}`))
          }
        } else if (message.type === 'error') {
          fail(new RtcUnavailableError(`signaling: ${message.error ?? 'refused'}`))
        }
      })
      ws.addEventListener('error', () => fail(new RtcUnavailableError('cannot reach the signaling server')))
      ws.addEventListener('close', () => {
        if (!peer.connected) fail(new RtcUnavailableError('the signaling server closed the connection'))
      })
      peer.on('connect', () => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        ws.close()
        resolve({
          kind: 'webrtc',
          send: (message) => peer.send(message),
          get bufferedAmount() {
            return peer.bufferSize
          },
          messages: () => answers.messages(),
          close: () => peer.destroy(),
        })
      })
    })
  }
}
