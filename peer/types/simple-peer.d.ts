// The parts of @thaunknown/simple-peer (a maintained ESM fork of simple-peer) that crowdmesh uses:
// a data-channel-only peer ("lite"). In a browser it uses the page's RTCPeerConnection; in Node,
// webrtc-polyfill over node-datachannel.
declare module '@thaunknown/simple-peer/lite.js' {
  export interface SimplePeerOptions {
    initiator?: boolean
    /** Text arrives as strings and binary as Uint8Array (otherwise both are bytes). */
    objectMode?: boolean
    config?: RTCConfiguration
    channelConfig?: RTCDataChannelInit
    trickle?: boolean
  }
  export default class SimplePeer {
    constructor(options?: SimplePeerOptions)
    readonly connected: boolean
    readonly destroyed: boolean
    /** The data channel's bufferedAmount. */
    readonly bufferSize: number
    signal(data: unknown): void
    send(data: string | Uint8Array): void
    destroy(error?: Error): void
    on(event: 'signal', listener: (data: unknown) => void): this
    /** 'disconnect': simple-peer tore a connected peer down itself (the other side closed, or ICE failed). */
    on(event: 'connect' | 'close' | 'disconnect', listener: () => void): this
    on(event: 'data', listener: (data: string | Uint8Array) => void): this
    on(event: 'error', listener: (error: Error & { code?: string }) => void): this
  }
}
