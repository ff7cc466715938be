import type { Connection } from '@libp2p/interface'
import { z } from 'zod'
import { meshDefaults } from '../protocol/defaults.ts'
import { AbortError, CrowdmeshError } from '../protocol/errors.ts'
import { FrameKind, FramedStream } from './framing.ts'
import { parseControl } from './work-protocol.ts'

/**
 * Admission: a peer shows its join token before the mesh serves it. On the relay, through
 * `/crowdmesh/admit/1` right after connecting (the relay reserves no slot and relays no connection
 * for a peer it has not admitted, and disconnects it if it is not admitted in time); at the
 * coordinator, through the work protocol's hello. Either way, one link (its token's jti) holds a
 * bounded number of admitted peer ids at once.
 *
 * This file is the part a browser loads too (the protocol and the client); the server's gate is in
 * `admission-gate.ts`.
 */
export const admitProtocol = '/crowdmesh/admit/1'

/** Peer → relay: the join token. */
export const admitRequestSchema = z.object({ type: z.literal('admit'), token: z.string().min(1).max(2048) })
export type AdmitRequest = z.infer<typeof admitRequestSchema>

/** Relay → peer: admitted, or why not. */
export const admitAnswerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('admitted') }),
  z.object({
    type: z.literal('error'),
    code: z.enum(['unauthorized', 'link-full', 'admit-timeout', 'invalid-message']),
    message: z.string().max(2000),
  }),
])
export type AdmitAnswer = z.infer<typeof admitAnswerSchema>
export type AdmitErrorCode = Extract<AdmitAnswer, { type: 'error' }>['code']

/** The token was refused (malformed, not this event's, expired, a role that may not join the mesh). */
export class AdmissionRefusedError extends CrowdmeshError {}

/** The link already has as many peers admitted as it may hold at once. */
export class LinkFullError extends CrowdmeshError {
  constructor(message = 'this link already has as many peers connected as one link may hold') {
    super(message)
  }

  /** The refusal with the limit in it, as the relay and the coordinator send it. */
  static limit(maxPeers: number): LinkFullError {
    return new LinkFullError(
      `this link already has ${maxPeers} peers connected, the most one link may hold at once; ` +
        'ask the organiser for another link',
    )
  }
}

/** A peer was not admitted within the time allowed. */
export class AdmissionTimeoutError extends CrowdmeshError {
  constructor(message = 'not admitted in time: a peer shows its join token first') {
    super(message)
  }
}

/** The error a refusal's code stands for, with the server's message. */
export function admissionError(code: AdmitErrorCode, message: string): CrowdmeshError {
  if (code === 'link-full') return new LinkFullError(message)
  if (code === 'admit-timeout') return new AdmissionTimeoutError(message)
  return new AdmissionRefusedError(message)
}

/**
 * Which peer ids each link has admitted, at most `maxPeersPerLink` per link. Pure bookkeeping: the
 * gate admits on a valid token and releases when the peer's last connection closes.
 */
export class AdmissionBook {
  readonly maxPeersPerLink: number
  private readonly linkOfPeer = new Map<string, string | undefined>()
  private readonly peersOfLink = new Map<string, Set<string>>()

  constructor(maxPeersPerLink: number = meshDefaults.maxPeersPerLink) {
    this.maxPeersPerLink = maxPeersPerLink
  }

  /**
   * Admits `peer` as one of `link`'s peers (`undefined`: trusted, counted against no link). Throws
   * `LinkFullError`, admitting nothing, when the link holds its maximum of other peers already.
   */
  admit(peer: string, link: string | undefined): void {
    if (this.linkOfPeer.has(peer) && this.linkOfPeer.get(peer) === link) return
    if (link !== undefined) {
      const peers = this.peersOfLink.get(link)
      if (peers !== undefined && peers.size >= this.maxPeersPerLink && !peers.has(peer))
        throw LinkFullError.limit(this.maxPeersPerLink)
    }
    this.release(peer)
    this.linkOfPeer.set(peer, link)
    if (link === undefined) return
    let peers = this.peersOfLink.get(link)
    if (peers === undefined) {
      peers = new Set()
      this.peersOfLink.set(link, peers)
    }
    peers.add(peer)
  }

  /** Forgets `peer`: its link's place is free again. */
  release(peer: string): void {
    if (!this.linkOfPeer.has(peer)) return
    const link = this.linkOfPeer.get(peer)
    this.linkOfPeer.delete(peer)
    if (link === undefined) return
    const peers = this.peersOfLink.get(link)
    peers?.delete(peer)
    if (peers?.size === 0) this.peersOfLink.delete(link)
  }

  /** The link that admitted `peer` (undefined: trusted, or not admitted). */
  linkOf(peer: string): string | undefined {
    return this.linkOfPeer.get(peer)
  }

  /** Whether `peer` is admitted. */
  has(peer: string): boolean {
    return this.linkOfPeer.has(peer)
  }

  /** Peers `link` has admitted now. */
  count(link: string): number {
    return this.peersOfLink.get(link)?.size ?? 0
  }

  /** Admitted peers in all. */
  get size(): number {
    return this.linkOfPeer.size
  }
}

/**
 * Shows `token` to the peer at the other end of `connection` (the relay) and resolves once it
 * admits this peer. Rejects with `AdmissionRefusedError`, `LinkFullError` or `AdmissionTimeoutError`
 * when it refuses, or with the stream's error when the connection fails first.
 */
export async function requestAdmission(
  connection: Connection,
  token: string,
  signal: AbortSignal,
): Promise<void> {
  const stream = await connection.newStream(admitProtocol, { signal })
  const framed = new FramedStream(stream)
  const onAbort = () => stream.abort(new AbortError())
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    await framed.sendJson({ type: 'admit', token } satisfies AdmitRequest, signal)
    for await (const frame of framed.frames()) {
      if (frame.kind !== FrameKind.control) continue
      const answer = parseControl(admitAnswerSchema, frame.payload)
      if (answer.type === 'admitted') return
      throw admissionError(answer.code, answer.message)
    }
    if (signal.aborted) throw new AbortError()
    throw new AdmissionRefusedError('the relay closed the admission stream without an answer')
  } finally {
    signal.removeEventListener('abort', onAbort)
    await framed.close().catch(() => {})
  }
}
