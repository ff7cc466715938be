/**
 * Entry of a participant thread: a CPU worker that talks to the coordinator's thread over the
 * worker port. Started by `threadMesh`; the same participant loop runs over libp2p in later issues.
 */
import { nodeWorkerEnv } from '../jobs/node-env.ts'
import { parentPort } from 'node:worker_threads'
import type { JobSpec, TaskBase } from '../jobs/kind.ts'
import { CapabilityMeter } from '../participant/capability-meter.ts'
import { frameSource } from '../participant/frame-source.ts'
import { cpuWorkers, JobDirectory } from '../participant/job-directory.ts'
import { type CoordinatorLink, runParticipant } from '../participant/participant.ts'
import { AbortError } from '../protocol/errors.ts'
import type { Lease } from '../protocol/job.ts'
import { parseToParticipant } from './thread-messages.ts'

const port = parentPort
if (port === null) throw new Error('participant-thread must run in a worker thread')

const pending = new Map<number, (message: { lease?: Lease<TaskBase> | null }) => void>()
let wake: (() => void) | undefined
let nextRequest = 1
const jobs = Promise.withResolvers<JobSpec[]>()

port.on('message', (raw: unknown) => {
  const message = parseToParticipant(raw)
  switch (message.type) {
    case 'jobs':
      jobs.resolve(message.jobs)
      break
    case 'lease':
      pending.get(message.requestId)?.({ lease: message.lease })
      pending.delete(message.requestId)
      break
    case 'ack':
      pending.get(message.requestId)?.({})
      pending.delete(message.requestId)
      break
    case 'work-available':
      wake?.()
      break
  }
})

function call(
  body: Record<string, unknown>,
  transfer: ArrayBuffer[] = [],
): Promise<{ lease?: Lease<TaskBase> | null }> {
  const requestId = nextRequest++
  return new Promise((resolve) => {
    pending.set(requestId, resolve)
    port!.postMessage({ ...body, requestId }, transfer)
  })
}

const link: CoordinatorLink = {
  async requestLease(signal, capability) {
    if (signal.aborted) throw new AbortError()
    const answer = await call({ type: 'lease-request', capability })
    return answer.lease ?? undefined
  },
  async sendResult(leaseId, bytes) {
    await call({ type: 'result', leaseId, bytes }, [bytes.buffer as ArrayBuffer])
  },
  async reportFailure(leaseId, reason) {
    await call({ type: 'failed', leaseId, reason: reason.slice(0, 1000) })
  },
  waitForWork(signal) {
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new AbortError())
      signal.addEventListener('abort', onAbort, { once: true })
      wake = () => {
        signal.removeEventListener('abort', onAbort)
        wake = undefined
        resolve()
      }
    })
  },
}

port.postMessage({ type: 'ready' })
const node = nodeWorkerEnv()
const directory = new JobDirectory({
  workers: cpuWorkers(frameSource(), node.env),
  capabilities: node.capabilities,
})
directory.set(await jobs.promise)
const controller = new AbortController()
port.on('close', () => controller.abort())
// A participant thread runs on the operator's own machine: it lends the whole of its core.
const meter = new CapabilityMeter({ cores: 1, dutyCycle: 1 })
await runParticipant(directory, { link, meter, dutyCycle: 1 }, controller.signal)
