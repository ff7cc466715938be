import { EventEmitter } from 'node:events'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Coordinator, FrameReport, RejectedResult } from '../coordinator/coordinator.ts'
import type { AnyJobKind, JobSpec, TaskBase } from '../jobs/kind.ts'
import type { Clock } from '../protocol/clock.ts'
import { meshDefaults } from '../protocol/defaults.ts'
import type { FrameKey } from '../protocol/frame-keys.ts'
import {
  CrowdmeshError,
  InvalidMessageError,
  LinkExhaustedError,
  QuarantinedError,
  MessageTooLargeError,
  ProtocolError,
} from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { LinkFullError } from './admission.ts'
import { AdmissionGate } from './admission-gate.ts'
import {
  type Frame,
  FrameKind,
  FrameKindRefusedError,
  FramedStream,
  frameLimits,
  helloFrameLimits,
  ReceiveBudget,
  ReceiveBudgetError,
} from './framing.ts'
import type { CoordinatorStatus } from './gossip.ts'
import { TokenBucket } from './rate-limit.ts'
import {
  decodeResultFrame,
  resultFrameIds,
  errorCodes,
  parseControl,
  type ToParticipant,
  toCoordinatorSchema,
  workProtocol,
} from './work-protocol.ts'
import { CoordinatorGossip, type GossipNode, type PublishedOutcome } from './coordinator-gossip.ts'

export type { GossipNode } from './coordinator-gossip.ts'

/** Limits the host enforces; each defaults from the `meshDefaults` field of the same name. */
export interface HostLimits {
  /** Messages one participant may send per second, sustained, and its burst above that. */
  requestsPerSecond: number
  requestBurst: number
  /** Requests refused within 10 s after which a flooding participant's stream is closed. */
  maxRefused: number
  /** A work stream without a successful hello within this long is refused and closed, ms. */
  helloTimeoutMs: number
  statusIntervalMs: number
  /** Bytes of unfinished frames buffered across all work streams together (`busy` past it). */
  maxBufferedBytes: number
  /** A peer connected to the coordinator without a successful hello within this long is disconnected, ms (`coordinatorAdmitTimeoutMs`). */
  admitTimeoutMs: number
  /** Peer ids one link may have welcomed at once. */
  maxPeersPerLink: number
}

/** How long a refused peer has to read the error before its stream is aborted, ms. */
const refuseGraceMs = 2000

/** Options of a coordinator host. */
export interface CoordinatorHostInit {
  node: GossipNode
  coordinator: Coordinator
  /** The event id: names the gossip topics. */
  event: string
  /**
   * Checks a participant's join token (its link's); returns a label for logs, or throws
   * (`InvalidTokenError`): the participant is refused with the error's message.
   */
  authorize: (token: string) => string
  limits?: Partial<HostLimits>
}

/** What a coordinator host reports. */
export interface CoordinatorHostEvents {
  participantJoined: [{ participantId: string; label: string; agent: string }]
  participantLeft: [{ participantId: string }]
  /** A participant's stream was closed for breaking the protocol, or a request was refused. */
  refused: [{ participantId: string; code: (typeof errorCodes)[number]; message: string }]
  /** A round's outcome went out on gossip. */
  outcomePublished: [PublishedOutcome]
}

/** A participant connected to the host, as the operator's console shows it. */
export interface ConnectedParticipant {
  participantId: string
  /** The label of the link it came through (`authorize`'s answer). */
  label: string
  /** What it said it is in its hello (`crowdmesh-web/webgl Chrome 131`, `crowdmesh-node/v24.9.0`). */
  agent: string
  /** The address its connection comes from (a multiaddr; a relayed one names the relay). */
  address: string
  connectedAt: number
}

interface Session {
  readonly participantId: string
  readonly address: string
  readonly connectedAt: number
  agent: string
  readonly framed: FramedStream
  readonly bucket: TokenBucket
  label: string | undefined
  /** Requests refused for rate since `refusedSince` (a 10 s window). */
  refused: number
  refusedSince: number
  /** Answered "no work" and not yet woken. */
  waiting: boolean
  /** Frame keys of the keyed leases it holds, by lease id: its results open with them. */
  readonly keys: Map<number, FrameKey>
  /**
   * The tasks leased to it that it has not answered, by lease id, with their kinds: its results are
   * decoded by them (a late one too, after its round ended); a result for any other lease id is not
   * the protocol. The oldest are forgotten past `maxUnansweredLeases`.
   */
  readonly leases: Map<number, { kind: AnyJobKind; task: TaskBase }>
  /** Refused: its stream is closing; nothing it sends is handled any more. */
  closing: boolean
}

/** Leases a participant may leave unanswered before the oldest are forgotten (see `Session.leases`). */
const maxUnansweredLeases = 64
/** Removed peer ids remembered (the oldest forgotten first): a removal is an operator's act, rare. */
const maxRemembered = 10_000

/**
 * Serves the work protocol and the event's gossip for one coordinator: every participant stream's
 * frames are validated and handed to the coordinator's `handle*` methods, the answers go back on the
 * same stream, standby participants are woken when work is queued, and each completed frame's
 * outcome is gossiped. A participant that sends something malformed or oversized gets a clear error
 * and its stream is closed (its leases go back to the queue); one that floods is refused, then cut
 * off. Nothing a participant sends can stop the host serving the others.
 *
 * Until its hello succeeds a stream may send one small control frame, nothing binary; unfinished
 * frames of all streams together are bounded (`maxBufferedBytes`). A peer is admitted by its hello:
 * only admitted peers exchange gossip with the coordinator (`isAdmitted`), one link holds at most
 * `maxPeersPerLink` of them, and a peer connected without a hello in time is disconnected.
 */
export class CoordinatorHost extends EventEmitter<CoordinatorHostEvents> {
  readonly event: string
  private readonly node: GossipNode
  private readonly coordinator: Coordinator<unknown, TaskBase>
  private readonly authorize: (token: string) => string
  private readonly limits: HostLimits
  private readonly clock: Clock
  private readonly log: Logger
  private readonly gossip: CoordinatorGossip
  private readonly sessions = new Map<string, Session>()
  private readonly budget: ReceiveBudget
  private readonly gate: AdmissionGate
  /** Per-frame keys by job and round (`jobId/frameIndex`), while the round is open (see `protocol/frame-keys.ts`). */
  private readonly frameKeys = new Map<string, FrameKey>()
  private lastRejection: RejectedResult | undefined
  private statusTimer: unknown
  private stopped = false
  private readonly unlisten: (() => void)[] = []
  /** Peer ids the operator removed, with the reason they are shown if they come back (bounded). */
  private readonly removed = new Map<string, string>()

  constructor(init: CoordinatorHostInit, components: { clock: Clock; logger?: Logger }) {
    super()
    this.node = init.node
    this.coordinator = init.coordinator
    this.event = init.event
    this.authorize = init.authorize
    this.limits = {
      requestsPerSecond: meshDefaults.requestsPerSecond,
      requestBurst: meshDefaults.requestBurst,
      maxRefused: meshDefaults.maxRefused,
      helloTimeoutMs: meshDefaults.helloTimeoutMs,
      statusIntervalMs: meshDefaults.statusIntervalMs,
      maxBufferedBytes: meshDefaults.maxBufferedBytes,
      admitTimeoutMs: meshDefaults.coordinatorAdmitTimeoutMs,
      maxPeersPerLink: meshDefaults.maxPeersPerLink,
      ...init.limits,
    }
    this.clock = components.clock
    this.log = components.logger ?? makeLogger('crowdmesh:mesh:host')
    this.gossip = new CoordinatorGossip({
      node: this.node,
      event: this.event,
      coordinator: this.coordinator,
      log: this.log,
    })
    this.budget = new ReceiveBudget(this.limits.maxBufferedBytes)
    this.gate = new AdmissionGate(
      {
        admitTimeoutMs: this.limits.admitTimeoutMs,
        maxPeersPerLink: this.limits.maxPeersPerLink,
        // A peer whose work stream is within its hello window gets that stream's answer first.
        deciding: (peer) => {
          const session = this.sessions.get(peer)
          return session !== undefined && session.label === undefined && !session.closing
        },
      },
      { node: this.node, clock: this.clock, logger: makeLogger('crowdmesh:mesh:host:admission') },
    )
  }

  /** The label of the link that admitted `peer` (`authorize`'s answer), while it is admitted. */
  linkOf(peer: PeerId | string): string | undefined {
    return this.gate.linkOf(peer)
  }

  /** Whether `peer` is admitted: connected, and welcomed after a hello with a valid token. */
  isAdmitted(peer: PeerId | string): boolean {
    return this.gate.isAdmitted(peer)
  }

  /** Bytes of unfinished frames buffered now, all work streams together. */
  get bufferedBytes(): number {
    return this.budget.used
  }

  /** Participants connected and past hello. */
  get participants(): number {
    let n = 0
    for (const session of this.sessions.values()) if (session.label !== undefined) n++
    return n
  }

  /** Every participant past hello, as the operator's console lists them. */
  connected(): ConnectedParticipant[] {
    const list: ConnectedParticipant[] = []
    for (const s of this.sessions.values())
      if (s.label !== undefined && !s.closing)
        list.push({
          participantId: s.participantId,
          label: s.label,
          agent: s.agent,
          address: s.address,
          connectedAt: s.connectedAt,
        })
    return list
  }

  /**
   * Removes a participant (the operator's console): it is told `reason` (code `removed`), its stream
   * and connection close, its leases go back to the queue, and it is refused with the same reason
   * if it comes back under the same peer id. False when it is not connected.
   */
  remove(participantId: string, reason: string): boolean {
    const session = this.sessions.get(participantId)
    if (session === undefined || session.label === undefined || session.closing) return false
    const message = `the operator removed you from the event: ${reason.slice(0, 500)}`
    this.removed.set(participantId, message)
    if (this.removed.size > maxRemembered) this.removed.delete(this.removed.keys().next().value!)
    const error = new ProtocolError('removed', message)
    void this.refuse(session, error).then(() => this.gate.refuse(peerIdFromString(participantId), error))
    return true
  }

  /**
   * Gives a round of a job (by default the first job's) a key: its leases carry it, and results of
   * those leases must be sealed with it.
   */
  setFrameKey(frameIndex: number, key: FrameKey, jobId = this.coordinator.jobs[0]!.jobId): void {
    this.frameKeys.set(`${jobId}/${frameIndex}`, key)
  }

  /** Starts serving: admission, the protocol handler, the coordinator's events, the status gossip. */
  async start(): Promise<void> {
    await this.gate.start()
    await this.node.handle(workProtocol, (stream, connection) => void this.serve(stream, connection), {
      maxInboundStreams: 4,
    })
    this.gossip.start((peer) => this.gate.isAdmitted(peer))
    const on = <
      K extends
        | 'workQueued'
        | 'backupsWanted'
        | 'leaseCancelled'
        | 'frameComplete'
        | 'frameDropped'
        | 'resultRejected'
        | 'jobAdded'
        | 'jobEnded'
        | 'participantQuarantined',
    >(
      name: K,
      listener: (...args: never[]) => void,
    ) => {
      this.coordinator.on(name, listener as never)
      this.unlisten.push(() => this.coordinator.off(name, listener as never))
    }
    const wake = () => {
      for (const session of this.sessions.values()) {
        if (!session.waiting) continue
        session.waiting = false
        this.send(session, { type: 'work-available' })
      }
    }
    on('workQueued', wake)
    on('backupsWanted', wake)
    on('leaseCancelled', ({ participantId, leaseId }: { participantId: string; leaseId: number }) => {
      const session = this.sessions.get(participantId)
      if (session !== undefined) this.send(session, { type: 'lease-cancelled', leaseId })
    })
    on('resultRejected', (rejected: RejectedResult) => {
      this.lastRejection = rejected
    })
    on('frameComplete', (outcome: unknown, report: FrameReport) => {
      // Its late copies are refused anyway; the key is no longer needed.
      this.frameKeys.delete(`${report.jobId}/${report.frameIndex}`)
      void this.gossip.publishOutcome(outcome, report).then((published) => {
        if (published !== undefined) this.emit('outcomePublished', published)
      })
    })
    on('frameDropped', (report: FrameReport) => this.frameKeys.delete(`${report.jobId}/${report.frameIndex}`))
    // Jobs added and ended while participants are connected: each is told.
    const tellAll = (message: ToParticipant) => {
      for (const session of this.sessions.values())
        if (session.label !== undefined) this.send(session, message)
    }
    on('jobAdded', (job: JobSpec) => tellAll({ type: 'job-added', job }))
    // A caught liar is told why, and disconnected: its link's slot stays taken.
    on('participantQuarantined', ({ participantId, reason }: { participantId: string; reason: string }) => {
      const session = this.sessions.get(participantId)
      const error = new ProtocolError(
        'quarantined',
        `a check proved a result of yours wrong: ${reason.slice(0, 500)}`,
      )
      const hangUp = () => this.gate.refuse(peerIdFromString(participantId), error)
      if (session !== undefined) void this.refuse(session, error).then(hangUp)
      else hangUp()
    })
    on('jobEnded', (jobId: string) => {
      this.gossip.jobEnded(jobId)
      tellAll({ type: 'job-ended', jobId })
    })
    const tick = () => {
      if (this.stopped) return
      this.gossip.publishStatus(this.status())
      this.statusTimer = this.clock.setTimer(tick, this.limits.statusIntervalMs)
    }
    tick()
  }

  /** The coordinator's status as gossiped. */
  status(): CoordinatorStatus {
    const stats = this.coordinator.statistics()
    const completed = stats.frames.filter((f) => !f.dropped)
    return {
      type: 'status',
      event: this.event,
      jobId: this.coordinator.jobs[0]?.jobId ?? '',
      framesCompleted: stats.framesCompleted,
      framesDropped: stats.framesDropped,
      framesOpen: this.coordinator.audit().openFrames,
      participants: this.participants,
      latestFrame: completed.length > 0 ? Math.max(...completed.map((f) => f.frameIndex)) : -1,
      outcomeFps: stats.outcomeFps,
      at: Date.now(),
    }
  }

  /** Stops serving: tells every participant, closes their streams, removes every listener. Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.clock.clearTimer(this.statusTimer)
    for (const off of this.unlisten.splice(0)) off()
    await this.node.unhandle(workProtocol).catch(() => {})
    this.gossip.stop()
    await this.gate.stop()
    await Promise.all(
      [...this.sessions.values()].map(async (session) => {
        this.send(session, { type: 'error', code: 'shutting-down', message: 'the event has ended' })
        await session.framed.close().catch(() => {})
      }),
    )
    this.sessions.clear()
  }

  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const participantId = connection.remotePeer.toString()
    if (this.stopped) return void stream.abort(new Error('shutting down'))
    const session: Session = {
      participantId,
      address: connection.remoteAddr.toString(),
      connectedAt: this.clock.now(),
      agent: '',
      // Until hello: one small control frame. Every stream's unfinished frames share one budget.
      framed: new FramedStream(stream, {
        limits: helloFrameLimits,
        limitsLabel: 'before hello',
        budget: this.budget,
      }),
      bucket: new TokenBucket(this.limits.requestsPerSecond, this.limits.requestBurst, this.clock.now()),
      label: undefined,
      refused: 0,
      refusedSince: this.clock.now(),
      waiting: false,
      keys: new Map(),
      leases: new Map(),
      closing: false,
    }
    // One stream per participant: a newer one (after a reconnect) replaces the older.
    const older = this.sessions.get(participantId)
    if (older !== undefined) {
      this.sessions.delete(participantId)
      older.framed.stream.abort(new Error('replaced by a newer stream of the same peer'))
    }
    this.sessions.set(participantId, session)
    const helloTimer = this.clock.setTimer(() => {
      if (session.label === undefined)
        void this.refuse(session, new ProtocolError('hello-timeout', 'no hello within the time allowed'))
    }, this.limits.helloTimeoutMs)
    try {
      for await (const frame of session.framed.frames()) {
        if (this.sessions.get(participantId) !== session || session.closing) break
        await this.receive(session, frame)
      }
    } catch (error) {
      if (error instanceof CrowdmeshError) await this.refuse(session, error)
      else this.log(`${participantId}: stream ended: ${(error as Error).message}`)
    } finally {
      this.clock.clearTimer(helloTimer)
      // The participant closed its side (it left): close ours, so its read loop ends too.
      if (stream.status === 'open') void session.framed.close().catch(() => {})
      if (this.sessions.get(participantId) === session) {
        this.sessions.delete(participantId)
        if (session.label !== undefined) {
          // Its leases go back to the queue at once rather than at their deadlines.
          this.coordinator.handleParticipantGone(participantId)
          this.emit('participantLeft', { participantId })
        }
      }
    }
  }

  /** Handles one frame; throws a CrowdmeshError for anything that should close the stream. */
  private async receive(session: Session, frame: Frame): Promise<void> {
    const now = this.clock.now()
    if (!session.bucket.take(now)) {
      if (now - session.refusedSince > 10_000) {
        session.refused = 0
        session.refusedSince = now
      }
      // A peer that keeps flooding after being told is cut off, whatever it gets through meanwhile.
      if (++session.refused > this.limits.maxRefused)
        throw new ProtocolError('rate-limited', 'too many requests; disconnected')
      // A refused result is answered with its request id too (its first 4 bytes), so an honest
      // participant that got ahead of the limit resends it rather than losing its link.
      const requestId =
        frame.kind === FrameKind.control ? requestIdOf(frame.payload) : resultRequestIdOf(frame.payload)
      const message = `over ${this.limits.requestsPerSecond} requests/s; request refused`
      this.send(session, {
        type: 'error',
        code: 'rate-limited',
        message,
        ...(requestId !== undefined && { requestId }),
      })
      if (session.refused === 1)
        this.emit('refused', { participantId: session.participantId, code: 'rate-limited', message })
      return
    }
    if (frame.kind === FrameKind.binary) return this.receiveResult(session, frame.payload)
    const message = parseControl(toCoordinatorSchema, frame.payload)
    if (message.type === 'hello') {
      if (session.label !== undefined) throw new ProtocolError('protocol', 'hello sent twice')
      let label: string
      try {
        label = this.authorize(message.token)
      } catch (error) {
        throw new ProtocolError('unauthorized', (error as Error).message)
      }
      const removed = this.removed.get(session.participantId)
      if (removed !== undefined) throw new ProtocolError('removed', removed)
      try {
        this.gate.admit(session.participantId, label)
        // The link's identities are counted for good (a caught liar rejoins under a new peer id at
        // most a few times), and a quarantined identity is refused.
        this.coordinator.admit(session.participantId, label)
      } catch (error) {
        if (error instanceof LinkFullError || error instanceof LinkExhaustedError)
          throw new ProtocolError('link-full', error.message)
        if (error instanceof QuarantinedError) throw new ProtocolError('quarantined', error.message)
        throw error
      }
      session.label = label
      session.agent = message.agent
      session.framed.setLimits(frameLimits)
      // Known from now on (push mode offers it work at once; pull mode waits for its request).
      this.coordinator.handleParticipantJoined(session.participantId, message.capability)
      this.send(session, {
        type: 'welcome',
        participantId: session.participantId,
        event: this.event,
        jobs: this.coordinator.jobs,
      })
      // A participant who joins late sees the latest outcome at once.
      for (const bytes of this.gossip.latest())
        void session.framed.send(FrameKind.binary, bytes).catch(() => {})
      this.emit('participantJoined', {
        participantId: session.participantId,
        label,
        agent: message.agent,
      })
      return
    }
    if (session.label === undefined) throw new ProtocolError('protocol', `${message.type} before hello`)
    switch (message.type) {
      case 'lease-request': {
        const lease = this.coordinator.handleLeaseRequest(session.participantId, message.capability)
        session.waiting = lease === undefined
        const leased = lease === undefined ? undefined : this.coordinator.leaseOf(lease.leaseId)
        if (leased !== undefined) {
          session.leases.set(lease!.leaseId, leased)
          // Expired leases it never answers would otherwise pile up for as long as it stays.
          if (session.leases.size > maxUnansweredLeases)
            session.leases.delete(session.leases.keys().next().value!)
        }
        const key =
          lease === undefined
            ? undefined
            : this.frameKeys.get(`${lease.block.jobId}/${lease.block.frameIndex}`)
        if (key !== undefined) session.keys.set(lease!.leaseId, key)
        this.send(session, {
          type: 'lease',
          requestId: message.requestId,
          lease: (lease ?? null) as never,
          ...(key !== undefined && { frameKey: key.encoded }),
        })
        return
      }
      case 'failed':
        this.log(`${session.participantId} failed lease ${message.leaseId}: ${message.reason}`)
        this.coordinator.handleBlockFailed(session.participantId, message.leaseId, message.reason)
        session.keys.delete(message.leaseId)
        session.leases.delete(message.leaseId)
        this.send(session, { type: 'ack', requestId: message.requestId, accepted: true })
        return
    }
  }

  private async receiveResult(session: Session, payload: Uint8Array): Promise<void> {
    if (session.label === undefined) throw new ProtocolError('protocol', 'result before hello')
    const ids = resultFrameIds(payload)
    const key = session.keys.get(ids.leaseId)
    // Decoded by the kind of the lease it answers, which must be one leased to this participant.
    const lease = session.leases.get(ids.leaseId)
    const decode = (bytes: Uint8Array): unknown => {
      if (lease === undefined)
        throw new InvalidMessageError('leaseId', `${ids.leaseId} is not a lease of yours`)
      const limit = lease.kind.limits.maxResultBytes(lease.task)
      if (bytes.length > limit)
        throw new InvalidMessageError('(result)', `${bytes.length} bytes exceeds the task's ${limit}`)
      return lease.kind.result.decode(bytes, lease.task)
    }
    const { requestId, leaseId, result } = await decodeResultFrame(payload, key, decode)
    session.keys.delete(leaseId)
    session.leases.delete(leaseId)
    if (result instanceof InvalidMessageError) {
      // Its lease is re-queued now rather than at its deadline; then the stream is closed.
      this.coordinator.handleBlockFailed(session.participantId, leaseId)
      throw result
    }
    // The coordinator says why it refused through `resultRejected`, synchronously within the call.
    this.lastRejection = undefined
    const accepted = this.coordinator.handleBlockResult(session.participantId, leaseId, result)
    const rejection = this.lastRejection as RejectedResult | undefined
    const error =
      rejection?.participantId === session.participantId && rejection.leaseId === leaseId
        ? rejection.error.message
        : undefined
    this.send(session, { type: 'ack', requestId, accepted, ...(error !== undefined && { error }) })
  }

  /**
   * Sends a clear error and closes the participant's stream: gracefully, so the error reaches it,
   * then aborted after a grace period whatever the peer does (a peer that keeps its side open and
   * keeps sending is cut off rather than read on).
   */
  private async refuse(session: Session, error: CrowdmeshError): Promise<void> {
    if (session.closing) return
    session.closing = true
    const code = errorCode(error)
    this.log(`${session.participantId}: refused (${code}): ${error.message}`)
    this.emit('refused', { participantId: session.participantId, code, message: error.message })
    this.send(session, { type: 'error', code, message: error.message })
    const stream = session.framed.stream
    const timer = setTimeout(() => stream.abort(new Error(code)), refuseGraceMs)
    // A timer of a stream already gone must not keep a finished process alive.
    timer.unref?.()
    await session.framed.close().catch(() => {})
    if (stream.status === 'closed') clearTimeout(timer)
  }

  private send(session: Session, message: ToParticipant): void {
    // A failed send means the stream is gone; its reader notices and cleans up.
    session.framed.sendJson(message).catch(() => {})
  }
}

/** The code a refusal is sent with. */
function errorCode(error: CrowdmeshError): (typeof errorCodes)[number] {
  if (error instanceof ProtocolError && (errorCodes as readonly string[]).includes(error.code))
    return error.code as (typeof errorCodes)[number]
  if (error instanceof MessageTooLargeError) return 'too-large'
  if (error instanceof FrameKindRefusedError) return 'protocol'
  if (error instanceof ReceiveBudgetError) return 'busy'
  if (error instanceof LinkFullError) return 'link-full'
  return 'invalid-message'
}

/** The request id of a binary result frame (u32, little-endian, first), if it is long enough to have one. */
function resultRequestIdOf(payload: Uint8Array): number | undefined {
  return payload.length >= 4
    ? new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true)
    : undefined
}

/** The request id of a control message, if it has a readable one (to answer a refused request). */
function requestIdOf(payload: Uint8Array): number | undefined {
  try {
    const id = (JSON.parse(new TextDecoder().decode(payload)) as { requestId?: unknown }).requestId
    return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < 2 ** 32 ? id : undefined
  } catch {
    return undefined
  }
}
