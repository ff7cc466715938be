import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { z } from 'zod'
import { parseJoinLink } from '../mesh/bootstrap.ts'
import type { GossipNode } from '../mesh/coordinator-gossip.ts'
import type { RunningEvent } from '../mesh/event.ts'
import { parseControl } from '../mesh/work-protocol.ts'
import { type Clock, systemClock } from '../protocol/clock.ts'
import { meshDefaults } from '../protocol/defaults.ts'
import { InvalidMessageError, MessageTooLargeError } from '../protocol/errors.ts'
import type { Logger } from '../protocol/logger.ts'
import type { MatchOutput } from './match-pool.ts'
import type { TaskResult } from './results-store.ts'
import type { TaskPool } from './task-pool.ts'

/*
 * Match results over gossipsub (issue 15): the coordinator publishes each done task's match list
 * from the pool's outbox on the event's `results` topic, signed with its key; result writers (peers
 * admitted on the operator's link) write them into their results store and publish the task ids on
 * the `written` topic; an acknowledged task leaves the outbox. A result no writer acknowledged is
 * published again, so a writer that dies mid-batch loses nothing, and the store's key (the task id)
 * makes the copy count once. A task reopened because an identity answerable for it was caught
 * (README, "Trust") sends the withdrawal of its output, then its next generation's output: a writer
 * keeps the newest generation of each, so the order they arrive in does not matter.
 *
 * Every admitted peer may subscribe to a topic, and a participant has no business reading which
 * user videos match which references: results are sealed (AES-256-GCM) with a key derived from the
 * operator link's token, which the coordinator and the writers hold and participants do not.
 */

/** The result topics of an event. */
export function resultTopics(event: string): { results: string; written: string } {
  return { results: `/crowdmesh/${event}/results/1`, written: `/crowdmesh/${event}/written/1` }
}

const seconds = z.number().finite().min(-1e6).max(1e6)
const matchSchema = z.strictObject({
  ugcId: z.string().min(1).max(256),
  refId: z.string().min(1).max(256),
  ugcStart: seconds,
  ugcEnd: seconds,
  refStart: seconds,
  refEnd: seconds,
  score: z.number().finite().min(-1).max(1),
})
const taskId = z.string().min(1).max(256)

/** Coordinator → writers: done tasks' match lists (what a sealed message holds). */
export const resultsMessageSchema = z.strictObject({
  type: z.literal('results'),
  results: z
    .array(
      z.strictObject({
        task: taskId,
        run: z.string().min(1).max(64),
        /** 1, and one more each time the task was reopened. */
        generation: z.number().int().min(1).max(1_000_000),
        /** This generation's output is withdrawn (its matches are empty). */
        withdrawn: z.literal(true).optional(),
        matches: z.array(matchSchema).max(100_000),
      }),
    )
    .min(1)
    .max(256),
})
export type ResultsMessage = z.infer<typeof resultsMessageSchema>

/** Writer → coordinator: tasks whose results (of these generations) are in its store. */
export const writtenMessageSchema = z.strictObject({
  type: z.literal('written'),
  tasks: z
    .array(z.strictObject({ task: taskId, generation: z.number().int().min(1).max(1_000_000) }))
    .min(1)
    .max(256),
})
export type WrittenMessage = z.infer<typeof writtenMessageSchema>

const decode = <T>(schema: z.ZodType<T>, data: Uint8Array): T => {
  if (data.length > meshDefaults.maxGossipBytes)
    throw new MessageTooLargeError(data.length, meshDefaults.maxGossipBytes)
  return parseControl(schema, data)
}

/** A results message as it travels: sealed. */
const sealedSchema = z.strictObject({
  type: z.literal('sealed-results'),
  iv: z.string().regex(/^[A-Za-z0-9_-]{16}$/),
  data: z.string().max(2 * meshDefaults.maxGossipBytes),
})

/** The key results are sealed with: from the operator link's token, for this event. */
export function resultsKey(operatorToken: string, event: string): Buffer {
  return Buffer.from(hkdfSync('sha256', operatorToken, event, 'crowdmesh results 1', 32))
}

/** Seals a results message for the writers. */
export function sealResults(message: ResultsMessage, key: Buffer): Uint8Array {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const data = Buffer.concat([
    cipher.update(JSON.stringify(message), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ])
  return new TextEncoder().encode(
    JSON.stringify({
      type: 'sealed-results',
      iv: iv.toString('base64url'),
      data: data.toString('base64url'),
    }),
  )
}

/** Opens and parses a sealed results message; throws for anything else (a wrong key included). */
export function parseResultsMessage(bytes: Uint8Array, key: Buffer): ResultsMessage {
  const sealed = decode(sealedSchema, bytes)
  const data = Buffer.from(sealed.data, 'base64url')
  if (data.length < 16) throw new InvalidMessageError('data', 'too short to be sealed')
  let plain: Buffer
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'))
    decipher.setAuthTag(data.subarray(data.length - 16))
    plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()])
  } catch {
    throw new InvalidMessageError('data', 'not sealed with this event’s results key')
  }
  return decode(resultsMessageSchema, plain)
}
export const parseWrittenMessage = (data: Uint8Array): WrittenMessage => decode(writtenMessageSchema, data)

/** The publisher's defaults. */
export const resultsGossipDefaults = {
  /** How often the outbox is read, ms. */
  intervalMs: 500,
  /** A result not acknowledged this long after it went out is published again, ms. */
  resendMs: 5_000,
  /** Outputs read from the outbox per pass. */
  perPass: 256,
} as const

/** What the publisher did. */
export interface ResultsGossipStats {
  published: number
  acknowledged: number
  /** Results too large for one gossip message: kept in the outbox, reported. */
  oversized: number
}

/** Options of the coordinator's result publisher. */
export interface ResultsPublisherInit {
  node: GossipNode
  event: string
  pool: TaskPool
  /** Whether a peer may acknowledge results (admitted on the operator's link). */
  isWriter: (peer: PeerId) => boolean
  /** The key results are sealed with (`resultsKey`). */
  key: Buffer
  clock: Clock
  log: Logger
}

/** The coordinator's side: the outbox on gossip, acknowledgements back into the pool. */
export class ResultsPublisher {
  readonly stats: ResultsGossipStats = { published: 0, acknowledged: 0, oversized: 0 }
  private readonly init: ResultsPublisherInit
  private readonly topics: ReturnType<typeof resultTopics>
  /** When each result went out last. */
  private readonly sent = new Map<string, number>()
  /** Results too large for a message, counted once each. */
  private readonly tooLarge = new Set<string>()
  private timer: unknown
  private readonly onMessage = (event: CustomEvent<Message>) => {
    if (event.detail.topic !== this.topics.written) return
    try {
      const { tasks } = parseWrittenMessage(event.detail.data)
      this.stats.acknowledged += this.init.pool.acknowledge(tasks)
      for (const { task, generation } of tasks) this.sent.delete(`${task}#${generation}`)
    } catch (error) {
      this.init.log(`dropped an acknowledgement: ${(error as Error).message}`)
    }
  }

  constructor(init: ResultsPublisherInit) {
    this.init = init
    this.topics = resultTopics(init.event)
  }

  start(): void {
    const gossip = this.init.node.services.gossip
    const { isWriter } = this.init
    // Only the coordinator publishes results; only writers acknowledge, signed, well formed.
    gossip.topicValidators.set(this.topics.results, () => TopicValidatorResult.Reject)
    gossip.topicValidators.set(this.topics.written, (peer, message) => {
      try {
        return isWriter(peer) &&
          message.type === 'signed' &&
          isWriter(message.from) &&
          parseWrittenMessage(message.data) !== undefined
          ? TopicValidatorResult.Accept
          : TopicValidatorResult.Reject
      } catch {
        return TopicValidatorResult.Reject
      }
    })
    gossip.subscribe(this.topics.results)
    gossip.subscribe(this.topics.written)
    gossip.addEventListener('message', this.onMessage)
    const tick = () => {
      this.publish()
      this.timer = this.init.clock.setTimer(tick, resultsGossipDefaults.intervalMs)
    }
    tick()
  }

  stop(): void {
    if (this.timer !== undefined) this.init.clock.clearTimer(this.timer)
    this.timer = undefined
    const gossip = this.init.node.services.gossip
    gossip.removeEventListener('message', this.onMessage)
    gossip.topicValidators.delete(this.topics.results)
    gossip.topicValidators.delete(this.topics.written)
  }

  /** One pass: results not out (or out too long without acknowledgement) go out, in messages of at most the gossip limit. */
  private publish(): void {
    const now = this.init.clock.now()
    // Sealing adds a third (base64) and a few bytes.
    const room = Math.floor((meshDefaults.maxGossipBytes - 1024) * 0.74)
    let batch: ResultsMessage['results'] = []
    let bytes = 0
    const flush = () => {
      if (batch.length === 0) return
      const message: ResultsMessage = { type: 'results', results: batch }
      const tasks = batch.map((r) => `${r.task}#${r.generation}`)
      batch = []
      bytes = 0
      for (const task of tasks) this.sent.set(task, now)
      this.init.node.services.gossip
        .publish(this.topics.results, sealResults(message, this.init.key))
        .then(() => {
          this.stats.published += tasks.length
        })
        .catch((error: unknown) => {
          // No writer yet (or none reachable): they go out again on a later pass.
          for (const task of tasks) this.sent.delete(task)
          this.init.log(`results not published: ${(error as Error).message}`)
        })
    }
    for (const output of this.init.pool.outputs(resultsGossipDefaults.perPass)) {
      const key = `${output.task}#${output.generation}`
      const at = this.sent.get(key)
      if (at !== undefined && now - at < resultsGossipDefaults.resendMs) continue
      const body = JSON.parse(output.body) as MatchOutput | { withdrawn: true }
      const size = output.body.length + output.task.length + output.run.length + 96
      if (size > room) {
        // Read again on every pass while it waits in the outbox: counted once.
        this.tooLarge.add(key)
        this.stats.oversized = this.tooLarge.size
        continue
      }
      if (bytes + size > room || batch.length === 256) flush()
      const { task, run, generation } = output
      batch.push(
        'withdrawn' in body
          ? { task, run, generation, withdrawn: true, matches: [] }
          : { task, run, generation, matches: body.matches },
      )
      bytes += size
    }
    flush()
  }
}

/** The publisher of an event run on this machine: writers are its operator link's peers. */
export function eventResultsPublisher(
  event: Pick<RunningEvent, 'node' | 'event' | 'isOperator' | 'joinLinks'>,
  pool: TaskPool,
  log: Logger,
): ResultsPublisher {
  return new ResultsPublisher({
    node: event.node,
    event: event.event,
    pool,
    isWriter: (peer) => event.isOperator(peer),
    key: resultsKey(parseJoinLink(event.joinLinks.operator!).token, event.event),
    clock: systemClock,
    log,
  })
}

/** A results message as a writer stores it. */
export function toTaskResults(message: ResultsMessage): TaskResult[] {
  return message.results.map((r) => ({
    task: r.task,
    run: r.run,
    generation: r.generation,
    ...(r.withdrawn === true && { withdrawn: true }),
    matches: r.matches,
  }))
}
