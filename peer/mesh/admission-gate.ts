import { EventEmitter } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import { type Clock, systemClock } from '../protocol/clock.ts'
import { meshDefaults } from '../protocol/defaults.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import {
  type AdmitAnswer,
  type AdmitErrorCode,
  AdmissionBook,
  AdmissionRefusedError,
  AdmissionTimeoutError,
  admitProtocol,
  admitRequestSchema,
  LinkFullError,
} from './admission.ts'
import { FrameKind, FramedStream, helloFrameLimits } from './framing.ts'
import { parseControl } from './work-protocol.ts'

/** Options of an admission gate; each defaults as documented. */
export interface AdmissionGateInit {
  /**
   * Verifies a token shown on `/crowdmesh/admit/1` and returns its link (the token's jti), or throws
   * with a message for the peer. Without it the gate serves no admission protocol: its owner admits
   * peers itself (`admit`), as the coordinator does on a successful hello.
   */
  verify?: (token: string) => string
  /** An inbound peer not admitted within this long of connecting is disconnected, ms (default `meshDefaults.relayAdmitTimeoutMs`). */
  admitTimeoutMs?: number
  /** Peer ids one link may have admitted at once (default `meshDefaults.maxPeersPerLink`). */
  maxPeersPerLink?: number
  /** Peers admitted as soon as they connect, with no token and counted against no link (the event's coordinator on its relay). */
  trustedPeers?: readonly string[]
  /**
   * Whether the owner is still deciding about a peer when its time is up (the coordinator: a work
   * stream within its own hello window). Such a peer's clock starts again instead: the owner's
   * decision, with its clear answer on that stream, comes first, and the peer is still disconnected
   * if it ends unadmitted. Once only: a peer that keeps opening streams gains one more period, no more.
   */
  deciding?: (peer: string) => boolean
}

/** What a gate reports. */
export interface AdmissionGateEvents {
  admitted: [{ peer: string; link: string | undefined }]
  /** A peer was refused (bad token, full link) or not admitted in time; it is disconnected. */
  refused: [{ peer: string; error: CrowdmeshError }]
}

/**
 * Holds a libp2p node's inbound peers to a join token: each must be admitted (a valid token on the
 * admission protocol, or its owner's `admit`) within `admitTimeoutMs` of connecting or it is
 * disconnected; one link holds at most `maxPeersPerLink` admitted peers at once; a peer's place is
 * freed when its last connection closes. `waitAdmitted` lets a connection gater hold a decision
 * (a relay reservation, a relayed connection) until the peer has shown its token.
 */
export class AdmissionGate extends EventEmitter<AdmissionGateEvents> {
  readonly admitTimeoutMs: number
  private readonly node: Libp2p
  private readonly verify: ((token: string) => string) | undefined
  private readonly trusted: ReadonlySet<string>
  private readonly deciding: (peer: string) => boolean
  private readonly book: AdmissionBook
  private readonly clock: Clock
  private readonly log: Logger
  private readonly timers = new Map<string, unknown>()
  private readonly waiters = new Map<string, Set<(admitted: boolean) => void>>()
  private started = false

  constructor(init: AdmissionGateInit, components: { node: Libp2p; clock?: Clock; logger?: Logger }) {
    super()
    this.verify = init.verify
    this.admitTimeoutMs = init.admitTimeoutMs ?? meshDefaults.relayAdmitTimeoutMs
    this.book = new AdmissionBook(init.maxPeersPerLink ?? meshDefaults.maxPeersPerLink)
    this.trusted = new Set(init.trustedPeers ?? [])
    this.deciding = init.deciding ?? (() => false)
    this.node = components.node
    this.clock = components.clock ?? systemClock
    this.log = components.logger ?? makeLogger('crowdmesh:mesh:admission')
  }

  /** Peers admitted now. */
  get admitted(): number {
    return this.book.size
  }

  /** Starts holding peers to admission (and serving the admission protocol when it verifies tokens). */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    if (this.verify !== undefined)
      await this.node.handle(
        admitProtocol,
        (stream, connection) => void this.serveAdmit(stream, connection),
        {
          maxInboundStreams: 2,
        },
      )
    this.node.addEventListener('connection:open', this.onConnection)
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    for (const connection of this.node.getConnections())
      this.onConnection(new CustomEvent('', { detail: connection }))
  }

  /** Stops: no more timers or protocol; peers already connected stay. Safe twice. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.node.removeEventListener('connection:open', this.onConnection)
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const timer of this.timers.values()) this.clock.clearTimer(timer)
    this.timers.clear()
    for (const peer of [...this.waiters.keys()]) this.settle(peer, false)
    if (this.verify !== undefined) await this.node.unhandle(admitProtocol).catch(() => {})
  }

  /** The link (its label) that admitted `peer`, if any. */
  linkOf(peer: PeerId | string): string | undefined {
    return this.book.linkOf(peer.toString())
  }

  /** Whether `peer` is admitted. */
  isAdmitted(peer: PeerId | string): boolean {
    return this.book.has(peer.toString())
  }

  /**
   * Admits `peer` as one of `link`'s peers (`undefined`: trusted). Throws `LinkFullError`, admitting
   * nothing, when the link already holds its maximum.
   */
  admit(peer: PeerId | string, link: string | undefined): void {
    const id = peer.toString()
    this.book.admit(id, link)
    this.clock.clearTimer(this.timers.get(id))
    this.timers.delete(id)
    this.emit('admitted', { peer: id, link })
    this.settle(id, true)
  }

  /**
   * Resolves `true` once `peer` is admitted, `false` once it is refused, disconnects or runs out of
   * time (the admission timeout bounds the wait).
   */
  waitAdmitted(peer: PeerId): Promise<boolean> {
    const id = peer.toString()
    if (this.book.has(id)) return Promise.resolve(true)
    if (!this.started || this.node.getConnections(peer).length === 0) return Promise.resolve(false)
    this.watch(peer)
    return new Promise((resolve) => {
      let waiting = this.waiters.get(id)
      if (waiting === undefined) {
        waiting = new Set()
        this.waiters.set(id, waiting)
      }
      waiting.add(resolve)
    })
  }

  /** Refuses `peer` with `error` and disconnects it. */
  refuse(peer: PeerId, error: CrowdmeshError): void {
    const id = peer.toString()
    this.clock.clearTimer(this.timers.get(id))
    this.timers.delete(id)
    this.book.release(id)
    this.log(`${id}: refused: ${error.message}`)
    this.emit('refused', { peer: id, error })
    this.settle(id, false)
    void this.node.hangUp(peer).catch(() => {})
  }

  private readonly onConnection = (event: CustomEvent<Connection>): void => {
    const connection = event.detail
    const id = connection.remotePeer.toString()
    if (this.book.has(id)) return
    if (this.trusted.has(id)) return this.admit(connection.remotePeer, undefined)
    // This node's own dials (a coordinator's to its relay) are not held to admission.
    if (connection.direction === 'inbound') this.watch(connection.remotePeer)
  }

  private readonly onDisconnect = (event: CustomEvent<PeerId>): void => {
    const id = event.detail.toString()
    this.clock.clearTimer(this.timers.get(id))
    this.timers.delete(id)
    this.book.release(id)
    this.settle(id, false)
  }

  /** Starts `peer`'s admission clock, unless it runs already (`deferred`: its second and last period). */
  private watch(peer: PeerId, deferred = false): void {
    const id = peer.toString()
    if (this.timers.has(id) || this.book.has(id)) return
    this.timers.set(
      id,
      this.clock.setTimer(() => {
        this.timers.delete(id)
        if (this.book.has(id)) return
        if (!deferred && this.deciding(id)) return this.watch(peer, true)
        this.refuse(
          peer,
          new AdmissionTimeoutError(`not admitted within ${this.admitTimeoutMs} ms of connecting`),
        )
      }, this.admitTimeoutMs),
    )
  }

  private settle(id: string, admitted: boolean): void {
    const waiting = this.waiters.get(id)
    this.waiters.delete(id)
    for (const resolve of waiting ?? []) resolve(admitted)
  }

  /** One admission request: a token in, `admitted` or a refusal out; a refused peer is disconnected. */
  private async serveAdmit(stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const framed = new FramedStream(stream, {
      limits: helloFrameLimits,
      limitsLabel: 'on the admission stream',
    })
    const late = new AdmissionTimeoutError(
      `no token within ${this.admitTimeoutMs} ms on the admission stream`,
    )
    let timedOut = false
    const deadline = this.clock.setTimer(() => {
      timedOut = true
      stream.abort(late)
    }, this.admitTimeoutMs)
    let refusal: CrowdmeshError | undefined
    let answer: AdmitAnswer
    try {
      const request = await this.readRequest(framed)
      let link: string
      try {
        link = this.verify!(request.token)
      } catch (error) {
        throw new AdmissionRefusedError((error as Error).message)
      }
      this.admit(peer, link)
      answer = { type: 'admitted' }
    } catch (error) {
      refusal = timedOut
        ? late
        : error instanceof CrowdmeshError
          ? error
          : new AdmissionRefusedError(`the admission stream failed: ${(error as Error).message}`)
      answer = { type: 'error', code: codeOf(refusal), message: refusal.message }
    } finally {
      this.clock.clearTimer(deadline)
    }
    await framed.sendJson(answer).catch(() => {})
    await framed.close().catch(() => {})
    if (refusal !== undefined) this.refuse(peer, refusal)
  }

  private async readRequest(framed: FramedStream) {
    for await (const frame of framed.frames()) {
      if (frame.kind === FrameKind.control) return parseControl(admitRequestSchema, frame.payload)
    }
    throw new AdmissionRefusedError('the admission stream ended before a token')
  }
}

function codeOf(error: CrowdmeshError): AdmitErrorCode {
  if (error instanceof LinkFullError) return 'link-full'
  if (error instanceof AdmissionTimeoutError) return 'admit-timeout'
  if (error instanceof AdmissionRefusedError) return 'unauthorized'
  return 'invalid-message'
}
