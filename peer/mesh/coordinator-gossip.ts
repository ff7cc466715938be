import type { PeerId } from '@libp2p/interface'
import type { Coordinator, FrameReport } from '../coordinator/coordinator.ts'
import { meshDefaults } from '../protocol/defaults.ts'
import type { Logger } from '../protocol/logger.ts'
import type { TaskBase } from '../jobs/kind.ts'
import type { GossipSub } from '@libp2p/gossipsub'
import type { Libp2p } from 'libp2p'
import {
  type CoordinatorStatus,
  coordinatorValidators,
  encodeJobOutcome,
  encodeJson,
  eventTopics,
  outcomeEnvelopeBytes,
} from './gossip.ts'

/** The libp2p node a coordinator host runs on: any mesh node with gossipsub. */
export type GossipNode = Libp2p<{ gossip: GossipSub }>

/** An outcome that went out on gossip. */
export interface PublishedOutcome {
  jobId: string
  frameIndex: number
  bytes: number
  recipients: number
  at: number
}

/**
 * The coordinator's side of an event's gossip: its topics' validators and subscriptions, every
 * job's outcomes (each in an envelope naming its job, the latest of each kept for a participant who
 * joins late), and the status. The work protocol is `CoordinatorHost`'s.
 */
export class CoordinatorGossip {
  private readonly node: GossipNode
  private readonly event: string
  private readonly coordinator: Coordinator<unknown, TaskBase>
  private readonly log: Logger
  private readonly topics: ReturnType<typeof eventTopics>
  private readonly latestOutcomes = new Map<string, Uint8Array>()

  constructor(init: {
    node: GossipNode
    event: string
    coordinator: Coordinator<unknown, TaskBase>
    log: Logger
  }) {
    this.node = init.node
    this.event = init.event
    this.coordinator = init.coordinator
    this.log = init.log
    this.topics = eventTopics(init.event)
  }

  /** Installs the validators (presence only from `isAdmitted` peers) and subscribes to the topics. */
  start(isAdmitted: (peer: PeerId) => boolean): void {
    const gossip = this.node.services.gossip
    for (const [topic, validator] of coordinatorValidators(this.event, isAdmitted))
      gossip.topicValidators.set(topic, validator)
    // The coordinator subscribes to its own topics so gossipsub grafts participants into its mesh.
    for (const topic of Object.values(this.topics)) gossip.subscribe(topic)
  }

  stop(): void {
    for (const topic of Object.values(this.topics)) this.node.services.gossip.topicValidators.delete(topic)
  }

  /** Each running job's latest outcome, in its envelope. */
  latest(): Iterable<Uint8Array> {
    return this.latestOutcomes.values()
  }

  /** A job ended: its latest outcome is no longer shown to newcomers. */
  jobEnded(jobId: string): void {
    this.latestOutcomes.delete(jobId)
  }

  /** Publishes a round's outcome, encoded by its job's kind; resolves once gossipsub sent it. */
  publishOutcome(outcome: unknown, report: FrameReport): Promise<PublishedOutcome | undefined> {
    const spec = this.coordinator.jobs.find((job) => job.jobId === report.jobId)
    const kind = this.coordinator.kindOf(report.jobId)
    if (spec === undefined || kind === undefined) return Promise.resolve(undefined)
    let bytes: Uint8Array
    try {
      const room = meshDefaults.maxGossipBytes - outcomeEnvelopeBytes(spec.jobId)
      bytes = encodeJobOutcome(spec.jobId, kind.outcome.encode(outcome, spec, room))
    } catch (error) {
      this.log(`the outcome of round ${report.frameIndex} of ${spec.jobId} cannot go out: ${String(error)}`)
      return Promise.resolve(undefined)
    }
    this.latestOutcomes.set(spec.jobId, bytes)
    const at = Date.now()
    return this.node.services.gossip
      .publish(this.topics.outcome, bytes)
      .then((result) => ({
        jobId: spec.jobId,
        frameIndex: report.frameIndex,
        bytes: bytes.length,
        recipients: result.recipients.length,
        at,
      }))
      .catch((error: unknown) => {
        this.log(`outcome gossip failed: ${(error as Error).message}`)
        return undefined
      })
  }

  publishStatus(status: CoordinatorStatus): void {
    this.node.services.gossip
      .publish(this.topics.job, encodeJson(status))
      .catch((error: unknown) => this.log(`status gossip failed: ${(error as Error).message}`))
  }
}
