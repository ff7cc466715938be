import type { AnyJobKind, OutcomePicture, WorkerCapability } from '../jobs/kind.ts'
import { multiaddr } from '@multiformats/multiaddr'
import type { Message } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { CapabilityMeter } from '../participant/capability-meter.ts'
import { JobDirectory, type WorkerFactory } from '../participant/job-directory.ts'
import { type ParticipantStats, runParticipant, type WorkGate } from '../participant/participant.ts'
import { InvalidMessageError } from '../protocol/errors.ts'
import { sleep } from '../protocol/clock.ts'
import { meshDefaults, schedulingDefaults } from '../protocol/defaults.ts'
import { AbortError, PeerGoneError, ProtocolError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { type Bootstrap, fetchBootstrap, JoinRefusedError, parseJoinLink } from './bootstrap.ts'
import { FramedStream } from './framing.ts'
import {
  type CoordinatorStatus,
  decodeJobOutcome,
  encodeJson,
  eventTopics,
  eventValidators,
  parseStatus,
  type Presence,
} from './gossip.ts'
import { MeshLink } from './mesh-link.ts'
import { createMeshNode, type MeshNode } from './node.ts'
import { retryableCodes, workProtocol } from './work-protocol.ts'

export { type Bootstrap, fetchBootstrap, JoinRefusedError, parseJoinLink } from './bootstrap.ts'

/** What a joined participant reports as it goes (the CLI prints these with --json). */
export type ParticipantEvent =
  | {
      type: 'bootstrap'
      event: string
      /** The link's role: only a recorder's or an operator's may also record. */
      role: string
      coordinatorPeerId: string
      relayAddrs: number
      turn: boolean
    }
  | { type: 'connected'; peerId: string; remoteAddr: string; ms: number }
  | {
      type: 'welcome'
      participantId: string
      /** The event's first job, and every job it announced. */
      jobId: string
      jobs: { jobId: string; kind: string; runs: boolean }[]
      ms: number
    }
  | { type: 'firstLease'; ms: number }
  | {
      type: 'outcome'
      jobId: string
      kind: string
      frameIndex: number
      /** What the kind's summary counts (vertices coloured, pixels filtered). */
      items: number
      bytes: number
      source: 'gossip' | 'welcome'
    }
  | { type: 'status'; status: CoordinatorStatus }
  | { type: 'disconnected'; reason: string; willRetry: boolean }

/** Options of a participant joining an event. */
export interface JoinInit {
  link: string
  /** Share of this machine it lends (default `schedulingDefaults.dutyCycle`). */
  dutyCycle?: number
  /** Cores it states (Node: `availableParallelism()`, a browser: `navigator.hardwareConcurrency`). */
  cores: number
  /** ICE relay-only: every WebRTC connection through TURN. */
  relayOnly?: boolean
  /**
   * Makes the worker of a job kind on its first task: the CPU worker in Node, the WebGL one in a
   * browser with a usable GPU. The participant states every kind of the registry it runs.
   */
  workers: WorkerFactory
  /** What the workers' environment offers beyond frames (Node: video fingerprinting, files). */
  capabilities?: readonly WorkerCapability[]
  /** The job kinds it may run (default: the registry's; none for a peer that only listens, a result writer). */
  kinds?: ReadonlyMap<string, AnyJobKind>
  /** Pauses and resumes asking for work (the web app's Pause button); the node stays connected. */
  gate?: WorkGate
  /** How many times a broken connection to the coordinator is retried (default 5). */
  maxReconnects?: number
  /** Who this participant is, for the operator's presence view (e.g. `crowdmesh-node/v24.9.0`). */
  agent: string
  signal: AbortSignal
  onEvent?: (event: ParticipantEvent) => void
  /**
   * Called with each outcome of every job of a kind this participant has, decoded by that kind (the
   * web app shows each kind's view).
   */
  onOutcome?: (outcome: {
    jobId: string
    kind: string
    frameIndex: number
    items: number
    snapshot: unknown
    /** The kind's picture of it, if the kind draws one (`JobKind.outcome.picture`). */
    picture: () => OutcomePicture | undefined
  }) => void
  /** Called once the mesh node runs (the web app counts its connections). */
  onNode?: (node: MeshNode) => void
}

/** What a participant did. */
export interface JoinResult extends ParticipantStats {
  peerId: string
  /** Results the coordinator counted. */
  accepted: number
  /** Why it stopped: the event ended, the signal, or the last error. */
  ended: string
}

/**
 * Joins an event as a participant: the link's bootstrap from the signaling server, a mesh node that
 * reserves a slot on the relay, a WebRTC connection to the coordinator negotiated through it, the
 * work protocol's hello with the link's token, then the participant loop until the event ends or
 * `signal` aborts. A connection that breaks is dialled again (with back-off); its leases went back to
 * the coordinator's queue, so nothing is lost meanwhile. Gossiped outcomes and status are reported.
 */
export async function joinEvent(init: JoinInit, components: { logger?: Logger } = {}): Promise<JoinResult> {
  const log = components.logger ?? makeLogger('crowdmesh:mesh:participant')
  const started = performance.now()
  const since = () => Math.round(performance.now() - started)
  const emit = init.onEvent ?? (() => {})
  const { token } = parseJoinLink(init.link)
  const bootstrap = await waitForCoordinator(init.link, init.signal)
  const coordinatorId = bootstrap.coordinatorPeerId!
  emit({
    type: 'bootstrap',
    event: bootstrap.event,
    role: bootstrap.role,
    coordinatorPeerId: coordinatorId,
    relayAddrs: bootstrap.relayAddrs.length,
    turn: bootstrap.iceServers.some((s) => s.urls.some((u) => u.startsWith('turn'))),
  })
  // The relay admits this peer on the link's token; a refusal (another event's link, a full link)
  // ends the join with the relay's reason.
  const refusedByRelay = new AbortController()
  const node = await createMeshNode(
    {
      relayAddrs: bootstrap.relayAddrs,
      iceServers: bootstrap.iceServers,
      ...(init.relayOnly === true && { relayOnly: true }),
      admission: { token, onRefused: (error) => refusedByRelay.abort(error) },
      // Gossip comes from the coordinator alone (it forwards the crowd's presence).
      gossipPeers: (peer) => peer === coordinatorId,
      // Nobody else has a reason to connect to a participant: a link holder dialling it through the
      // relay, again and again, would only cost it memory and WebRTC negotiations.
      acceptInboundFrom: (peer) => peer === coordinatorId,
    },
    { logger: log },
  )
  init.onNode?.(node)
  const topics = eventTopics(bootstrap.event)
  const gossip = node.services.gossip
  for (const [topic, validator] of eventValidators(bootstrap.event, peerIdFromString(coordinatorId)))
    gossip.topicValidators.set(topic, validator)
  const directory = new JobDirectory({
    workers: init.workers,
    ...(init.capabilities !== undefined && { capabilities: init.capabilities }),
    ...(init.kinds !== undefined && { kinds: init.kinds }),
  })
  // Every job's outcomes are gossiped, each named by its job; decoded by its kind (when this
  // participant has it: one it lacks is skipped).
  const showOutcome = (bytes: Uint8Array, source: 'gossip' | 'welcome') => {
    const { jobId, payload } = decodeJobOutcome(bytes)
    const job = directory.jobs.find((known) => known.spec.jobId === jobId)
    if (job === undefined) return
    const snapshot: unknown = job.kind.outcome.decode(payload)
    const { frameIndex, items } = job.kind.outcome.summary(snapshot)
    emit({ type: 'outcome', jobId, kind: job.kind.name, frameIndex, items, bytes: bytes.length, source })
    const picture = () => job.kind.outcome.picture?.(snapshot)
    init.onOutcome?.({ jobId, kind: job.kind.name, frameIndex, items, snapshot, picture })
  }
  const onMessage = (event: CustomEvent<Message>) => {
    try {
      if (event.detail.topic === topics.outcome) showOutcome(event.detail.data, 'gossip')
      else if (event.detail.topic === topics.job)
        emit({ type: 'status', status: parseStatus(event.detail.data) })
    } catch (error) {
      log(`dropped a gossip message: ${(error as Error).message}`)
    }
  }
  gossip.addEventListener('message', onMessage)
  gossip.subscribe(topics.job)
  gossip.subscribe(topics.outcome)
  gossip.subscribe(topics.presence)

  const meter = new CapabilityMeter({
    cores: init.cores,
    dutyCycle: init.dutyCycle ?? schedulingDefaults.dutyCycle,
  })
  const { agent } = init
  const total: JoinResult = {
    peerId: node.peerId.toString(),
    blocksDone: 0,
    threadsDone: 0,
    blocksFailed: 0,
    busyMs: 0,
    accepted: 0,
    ended: '',
  }
  let state: Presence['state'] = 'joining'
  const presence = setInterval(() => {
    const message: Presence = {
      type: 'presence',
      state,
      blocksDone: total.blocksDone,
      threadsPerSec: Math.round(meter.current().threadsPerSec),
      agent,
    }
    gossip.publish(topics.presence, encodeJson(message)).catch(() => {})
  }, 5000)
  const target = multiaddr(`${bootstrap.relayAddrs[0]}/p2p-circuit/webrtc/p2p/${coordinatorId}`)
  let firstLease = true
  let failures = 0
  try {
    while (!init.signal.aborted) {
      const session = new AbortController()
      const signal = AbortSignal.any([init.signal, session.signal, refusedByRelay.signal])
      let ended: Error
      try {
        const dialStarted = performance.now()
        const stream = await node.dialProtocol(target, workProtocol, {
          signal: AbortSignal.any([signal, AbortSignal.timeout(meshDefaults.dialTimeoutMs)]),
        })
        // Dialling a /webrtc address opens a relayed connection for the negotiation first; the
        // work protocol runs only on the direct one.
        const connections = node.getConnections(peerIdFromString(coordinatorId))
        const connection =
          connections.find((c) => c.remoteAddr.toString().includes('/webrtc')) ?? connections[0]
        emit({
          type: 'connected',
          peerId: total.peerId,
          remoteAddr: connection?.remoteAddr.toString() ?? target.toString(),
          ms: Math.round(performance.now() - dialStarted),
        })
        const link = new MeshLink(new FramedStream(stream), {
          onOutcome: (bytes) => showOutcome(bytes, 'welcome'),
          onJobAdded: (job) => {
            try {
              if (!directory.add(job)) log(`job ${job.jobId} is of a kind this participant lacks`)
            } catch (error) {
              if (!(error instanceof InvalidMessageError)) throw error
              log(`job ${job.jobId} refused: ${error.message}`)
            }
          },
          onJobEnded: (jobId) => directory.remove(jobId),
          // Stop the loop first, so pending requests rejecting read as "session over", not as errors.
          onClosed: () => session.abort(),
        })
        const reading = link.read()
        const welcome = await link.hello(token, { ...meter.current(), kinds: directory.tags }, agent, signal)
        // A job whose description its kind refuses is one this participant cannot run either.
        const lacking = new Set<string>()
        directory.set([])
        for (const job of welcome.jobs) {
          try {
            if (!directory.add(job)) lacking.add(job.jobId)
          } catch (error) {
            if (!(error instanceof InvalidMessageError)) throw error
            lacking.add(job.jobId)
            log(`job ${job.jobId} refused: ${error.message}`)
          }
        }
        failures = 0
        state = 'computing'
        emit({
          type: 'welcome',
          participantId: welcome.participantId,
          jobId: welcome.jobs[0]?.jobId ?? '',
          jobs: welcome.jobs.map((j) => ({ jobId: j.jobId, kind: j.kind, runs: !lacking.has(j.jobId) })),
          ms: since(),
        })
        const stats = await runParticipant(
          directory,
          {
            link,
            onTask: () => {
              if (!firstLease) return
              firstLease = false
              emit({ type: 'firstLease', ms: since() })
            },
            meter,
            dutyCycle: init.dutyCycle ?? schedulingDefaults.dutyCycle,
            ...(init.gate !== undefined && { gate: init.gate }),
          },
          signal,
        )
        total.blocksDone += stats.blocksDone
        total.threadsDone += stats.threadsDone
        total.blocksFailed += stats.blocksFailed
        total.busyMs += stats.busyMs
        total.accepted += link.accepted
        session.abort()
        // Close our side; the coordinator closes its own. A coordinator that does not answer within
        // two seconds is not waited for: the stream is aborted.
        await stream.close().catch(() => {})
        const patience = new AbortController()
        ended = await Promise.race([
          reading,
          sleep(2000, patience.signal).then(
            () => new PeerGoneError('the coordinator did not close the stream'),
          ),
        ])
        patience.abort()
        if (stream.status === 'open') stream.abort(new Error('left'))
      } catch (error) {
        if (init.signal.aborted) break
        if (refusedByRelay.signal.aborted)
          throw new JoinRefusedError(
            `the relay refused this participant: ${(refusedByRelay.signal.reason as Error).message}`,
          )
        ended = error instanceof Error ? error : new Error(String(error))
      }
      total.ended = ended.message
      // The coordinator refusing us, or ending the event, is final; a broken connection, a busy or
      // rate-limited coordinator, is retried.
      const final = ended instanceof ProtocolError && !retryableCodes.has(ended.code) ? ended : undefined
      const willRetry = final === undefined && !init.signal.aborted && ++failures <= (init.maxReconnects ?? 5)
      emit({ type: 'disconnected', reason: ended.message, willRetry })
      if (final !== undefined) {
        if (final.code === 'shutting-down') break
        throw new JoinRefusedError(`the coordinator refused this participant: ${final.message}`)
      }
      if (!willRetry) {
        if (init.signal.aborted) break
        throw ended instanceof PeerGoneError ? ended : new PeerGoneError(ended.message)
      }
      state = 'joining'
      await sleep(Math.min(8000, 250 * 2 ** failures), init.signal)
    }
    if (init.signal.aborted && total.ended === '') total.ended = 'left'
    return total
  } finally {
    state = 'leaving'
    clearInterval(presence)
    gossip.removeEventListener('message', onMessage)
    directory.dispose()
    await node.stop()
  }
}

/** The bootstrap, once the event's coordinator has registered (a link can be opened before it starts). */
async function waitForCoordinator(link: string, signal: AbortSignal): Promise<Bootstrap> {
  for (;;) {
    const bootstrap = await fetchBootstrap(link, signal)
    if (bootstrap.coordinatorPeerId !== null && bootstrap.relayAddrs.length > 0) return bootstrap
    await sleep(1000, signal)
    if (signal.aborted) throw new AbortError()
  }
}
