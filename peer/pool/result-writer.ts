import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Message } from '@libp2p/gossipsub'
import { peerIdFromString } from '@libp2p/peer-id'
import { joinEvent, type ParticipantEvent } from '../mesh/join.ts'
import type { MeshNode } from '../mesh/node.ts'
import { releaseWebRTC } from '../mesh/node-webrtc.ts'
import { sleep } from '../protocol/clock.ts'
import { CrowdmeshError, InvalidOptionError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { parseJoinLink } from '../mesh/bootstrap.ts'
import {
  parseResultsMessage,
  resultsKey,
  resultTopics,
  toTaskResults,
  type WrittenMessage,
} from './results-gossip.ts'
import { ResultsStore, type TaskResult } from './results-store.ts'

/*
 * A result writer (issue 15): a peer of the event's mesh, admitted on the operator's link, that
 * takes the coordinator's signed results off gossip, writes them in batches into a results store
 * (one transaction a batch: a writer killed mid-batch leaves none of it), and acknowledges each
 * batch once it is committed. Results it never acknowledged are published again; results it
 * receives twice are written once (the store's key is the task).
 */

/** The writer's defaults. */
export const resultWriterDefaults = {
  /** A batch is written at most this long after its first result arrived, ms. */
  batchMs: 200,
  /** Most tasks in one batch. */
  maxBatch: 64,
  /** Most results waiting to be written: more are dropped (they come again, unacknowledged). */
  maxPending: 10_000,
} as const

/** What a writer reports. */
export type WriterEvent = ParticipantEvent | { type: 'batch'; tasks: number; added: number; pending: number }

/** Options of a result writer. */
export interface ResultWriterInit {
  /** The event's operator link. */
  link: string
  /** The results store's file. */
  store: string
  signal: AbortSignal
  onEvent?: (event: WriterEvent) => void
}

/** What a writer did. */
export interface WriterTotals {
  batches: number
  /** Results received and written (or found written). */
  tasks: number
  /** Results that were new to the store. */
  added: number
}

/** Runs a result writer until `signal` aborts or the event ends. */
export async function runResultWriter(
  init: ResultWriterInit,
  components: { logger?: Logger } = {},
): Promise<WriterTotals> {
  const log = components.logger ?? makeLogger('crowdmesh:result-writer')
  const emit = init.onEvent ?? (() => {})
  const store = new ResultsStore(init.store)
  const totals: WriterTotals = { batches: 0, tasks: 0, added: 0 }
  const pending: TaskResult[] = []
  let topics: ReturnType<typeof resultTopics> | undefined
  let coordinator: string | undefined
  let key: Buffer | undefined
  let node: MeshNode | undefined

  const onMessage = (event: CustomEvent<Message>) => {
    if (event.detail.topic !== topics?.results) return
    try {
      const results = toTaskResults(parseResultsMessage(event.detail.data, key!))
      for (const result of results) {
        if (pending.length >= resultWriterDefaults.maxPending) break
        pending.push(result)
      }
    } catch (error) {
      log(`dropped a results message: ${(error as Error).message}`)
    }
  }
  const install = (mesh: MeshNode) => {
    node = mesh
    if (topics === undefined || coordinator === undefined || key === undefined)
      throw new CrowdmeshError('no bootstrap before the node')
    const sealedWith = key
    const from = peerIdFromString(coordinator)
    const gossip = mesh.services.gossip
    // Results count only signed by the coordinator and forwarded by it; this peer forwards to nobody else.
    gossip.topicValidators.set(topics.results, (peer, message) => {
      try {
        return peer.equals(from) &&
          message.type === 'signed' &&
          message.from.equals(from) &&
          parseResultsMessage(message.data, sealedWith) !== undefined
          ? TopicValidatorResult.Accept
          : TopicValidatorResult.Reject
      } catch {
        return TopicValidatorResult.Reject
      }
    })
    gossip.addEventListener('message', onMessage)
    gossip.subscribe(topics.results)
  }

  // The writing loop ends with the join (the event ended) as well as with the caller's signal.
  const joined = new AbortController()
  const signal = AbortSignal.any([init.signal, joined.signal])
  const writing = (async () => {
    while (!signal.aborted) {
      await sleep(resultWriterDefaults.batchMs, signal).catch(() => {})
      while (pending.length > 0 && node !== undefined && topics !== undefined) {
        const batch = pending.splice(0, resultWriterDefaults.maxBatch)
        const added = store.writeBatch(batch)
        totals.batches++
        totals.tasks += batch.length
        totals.added += added
        emit({ type: 'batch', tasks: batch.length, added, pending: pending.length })
        const written = new Map(batch.map((r) => [`${r.task}#${r.generation ?? 1}`, r]))
        const ack: WrittenMessage = {
          type: 'written',
          tasks: [...written.values()].map((r) => ({ task: r.task, generation: r.generation ?? 1 })),
        }
        // Unacknowledged results come again: a lost acknowledgement costs a second (skipped) write.
        await node.services.gossip
          .publish(topics.written, new TextEncoder().encode(JSON.stringify(ack)))
          .catch((error: unknown) => log(`acknowledgement not sent: ${(error as Error).message}`))
      }
    }
  })()

  try {
    await joinEvent({
      link: init.link,
      cores: 1,
      // It computes nothing: no kinds, so it is never leased a task.
      kinds: new Map(),
      workers: () => Promise.reject(new InvalidOptionError('a result writer runs no task')),
      agent: 'crowdmesh-result-writer',
      signal: init.signal,
      onEvent: (event) => {
        if (event.type === 'bootstrap') {
          if (event.role !== 'operator')
            throw new InvalidOptionError('a result writer needs the operator link')
          topics = resultTopics(event.event)
          coordinator = event.coordinatorPeerId
          key = resultsKey(parseJoinLink(init.link).token, event.event)
        }
        emit(event)
      },
      onNode: install,
    })
  } finally {
    joined.abort()
    node?.services.gossip.removeEventListener('message', onMessage)
    await writing.catch(() => {})
    store.close()
  }
  return totals
}

/*
 * Run as a script, `node peer/pool/result-writer.ts LINK '{"store":"results.db"}'`: one JSON line
 * per event, then `done` (what `ParticipantProcess` reads). SIGINT and SIGTERM stop it.
 */
if (process.argv[1] === import.meta.filename) {
  const [link, options] = process.argv.slice(2)
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    const { store } = JSON.parse(options ?? '{}') as { store?: string }
    if (store === undefined) throw new InvalidOptionError('a result writer needs {"store": FILE}')
    const totals = await runResultWriter({
      link: link ?? '',
      store,
      signal: controller.signal,
      onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
    })
    process.stdout.write(`${JSON.stringify({ type: 'done', ...totals })}\n`)
  } catch (error) {
    if (!(error instanceof CrowdmeshError)) throw error
    process.stderr.write(`crowdmesh result-writer: ${error.message}\n`)
    process.exitCode = 1
  } finally {
    await releaseWebRTC()
  }
}
