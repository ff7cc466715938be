import { RTCPeerConnection } from 'webrtc-polyfill'

/*
 * webrtc-polyfill (simple-peer's RTCPeerConnection in Node) calls node-datachannel's global
 * cleanup() whenever its last RTCPeerConnection closes, and that destroys every native WebRTC
 * connection of the process: another one still negotiating (seen as "remote candidate without ICE
 * transport"), an open data channel that then never reports its close, a libp2p node's. A process
 * where WebRTC connections come and go while others live holds one idle connection open meanwhile,
 * so the count never reaches zero. Holders are counted: the idle connection is closed (and the
 * cleanup runs) when the last one lets go.
 */

let holders = 0
let idle: RTCPeerConnection | undefined

/**
 * Holds node-datachannel alive until the returned function is called (once; later calls do
 * nothing) or `signal` aborts.
 */
export function holdWebRTC(signal?: AbortSignal): () => void {
  if (holders++ === 0) idle = new RTCPeerConnection()
  let released = false
  const release = () => {
    if (released) return
    released = true
    signal?.removeEventListener('abort', release)
    if (--holders === 0) {
      idle?.close()
      idle = undefined
    }
  }
  if (signal?.aborted === true) release()
  else signal?.addEventListener('abort', release, { once: true })
  return release
}
