import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import type { Coordinator } from '../coordinator/coordinator.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { parseToCoordinator, type ToParticipant } from './thread-messages.ts'

/** Options of a mesh of participant threads. */
export interface ThreadMeshInit {
  /** Participant threads (default: one per core). */
  participants?: number
}

/** A running mesh of in-process participants, one worker thread each. */
export interface ThreadMesh {
  readonly participants: number
  /** Ids of the participant threads still running. */
  readonly participantIds: readonly string[]
  /** Ends one participant thread, as a participant leaving mid-job: its leases go back to the queue. */
  disconnect(id: string): Promise<void>
  /** Terminates every thread and removes every listener. Safe to call twice. */
  stop(): Promise<void>
}

/**
 * Starts participant threads that pull leases from `coordinator`: the in-process transport. It
 * validates each message, decodes binary block results and hands them to the coordinator's
 * `handle*` methods; a thread that dies has its leases re-queued.
 */
export async function threadMesh(
  coordinator: Coordinator,
  init: ThreadMeshInit = {},
  components: { logger?: Logger } = {},
): Promise<ThreadMesh> {
  const log = components.logger ?? makeLogger('crowdmesh:local')
  const count = init.participants ?? availableParallelism()
  const waiting = new Set<Worker>()
  const workers: Worker[] = []
  const byId = new Map<string, Worker>()
  const onWorkQueued = () => {
    for (const worker of waiting) post(worker, { type: 'work-available' })
    waiting.clear()
  }
  coordinator.on('workQueued', onWorkQueued)
  // At a frame's tail, idle threads may take backup copies of the slowest blocks.
  coordinator.on('backupsWanted', onWorkQueued)

  const ready: Promise<void>[] = []
  for (let i = 0; i < count; i++) {
    const id = `thread-${i}`
    const worker = new Worker(new URL('./participant-thread.ts', import.meta.url))
    workers.push(worker)
    byId.set(id, worker)
    ready.push(
      new Promise((resolve, reject) => {
        worker.once('error', reject)
        worker.on('message', (raw: unknown) => {
          try {
            handle(worker, id, raw, resolve)
          } catch (error) {
            if (!(error instanceof CrowdmeshError)) throw error
            log.error(`${id}: ${error.message}`)
          }
        })
      }),
    )
    worker.on('exit', () => {
      waiting.delete(worker)
      byId.delete(id)
      coordinator.handleParticipantGone(id)
    })
  }
  await Promise.all(ready)
  for (const worker of workers) post(worker, { type: 'jobs', jobs: coordinator.jobs })

  function handle(worker: Worker, id: string, raw: unknown, onReady: () => void): void {
    const message = parseToCoordinator(raw)
    switch (message.type) {
      case 'ready':
        onReady()
        return
      case 'lease-request': {
        const lease = coordinator.handleLeaseRequest(id, message.capability)
        if (lease === undefined) waiting.add(worker)
        post(worker, { type: 'lease', requestId: message.requestId, lease: (lease ?? null) as never })
        return
      }
      case 'result': {
        try {
          // Decoded by the kind of the lease it answers (a result for an unknown lease is refused as it is).
          const lease = coordinator.leaseOf(message.leaseId)
          const result: unknown =
            lease === undefined ? message.bytes : lease.kind.result.decode(message.bytes, lease.task)
          coordinator.handleBlockResult(id, message.leaseId, result)
        } catch (error) {
          coordinator.handleBlockFailed(id, message.leaseId)
          throw error
        } finally {
          post(worker, { type: 'ack', requestId: message.requestId })
        }
        return
      }
      case 'failed':
        log(`${id} failed lease ${message.leaseId}: ${message.reason}`)
        coordinator.handleBlockFailed(id, message.leaseId, message.reason)
        post(worker, { type: 'ack', requestId: message.requestId })
        return
    }
  }

  let stopped = false
  return {
    participants: count,
    get participantIds() {
      return [...byId.keys()]
    },
    async disconnect(id) {
      await byId.get(id)?.terminate()
    },
    async stop() {
      if (stopped) return
      stopped = true
      coordinator.off('workQueued', onWorkQueued)
      coordinator.off('backupsWanted', onWorkQueued)
      await Promise.all(workers.map((w) => w.terminate()))
    },
  }
}

function post(worker: Worker, message: ToParticipant): void {
  worker.postMessage(message)
}
