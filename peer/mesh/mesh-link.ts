import type { CoordinatorLink } from '../participant/participant.ts'
import type { Capability } from '../protocol/capability.ts'
import { sleep } from '../protocol/clock.ts'
import { AbortError, PeerGoneError, ProtocolError } from '../protocol/errors.ts'
import { type FrameKey, importFrameKey, keyedUrl } from '../protocol/frame-keys.ts'
import type { JobSpec, TaskBase } from '../jobs/kind.ts'
import type { Lease } from '../protocol/job.ts'
import { type Frame, FrameKind, type FramedStream } from './framing.ts'
import {
  encodeResultFrame,
  parseControl,
  type ToCoordinator,
  type ToParticipant,
  toParticipantSchema,
} from './work-protocol.ts'

type Answer = Extract<ToParticipant, { type: 'lease' | 'ack' | 'error' }>

/** What a participant's link reports besides answers. */
export interface MeshLinkHandlers {
  /** The latest frame outcome, sent once after welcome to a participant who joins late. */
  onOutcome?: (bytes: Uint8Array) => void
  /** The coordinator no longer wants a lease (another copy won, or its frame ended). */
  onLeaseCancelled?: (leaseId: number) => void
  /** The event added a job while this participant is connected. */
  onJobAdded?: (job: JobSpec) => void
  /** A job ended. */
  onJobEnded?: (jobId: string) => void
  /**
   * The stream ended; called before pending requests are rejected, so the owner can stop its loop
   * first and read those rejections as "session over" rather than as errors.
   */
  onClosed?: (reason: Error) => void
}

/**
 * The participant's end of the work protocol: `CoordinatorLink` over one framed stream to the
 * coordinator. Requests carry ids and are answered in any order; when the stream ends every pending
 * request is rejected with `PeerGoneError`, so the participant loop stops instead of hanging.
 */
export class MeshLink implements CoordinatorLink {
  private readonly framed: FramedStream
  private readonly handlers: MeshLinkHandlers
  private readonly pending = new Map<number, { resolve: (a: Answer) => void; reject: (e: Error) => void }>()
  private nextRequest = 1
  private wake: { resolve: () => void; reject: (e: Error) => void } | undefined
  /** `work-available` came while nobody waited: the next wait returns at once. */
  private workSignalled = false
  /** Frame keys of the keyed leases in hand, by lease id. */
  private readonly leaseKeys = new Map<number, FrameKey>()
  private closedWith: Error | undefined
  private welcome: ((job: Extract<ToParticipant, { type: 'welcome' }>) => void) | undefined
  private fatal: ((error: Error) => void) | undefined
  /** Leases the coordinator took back, by id (see `isCancelled`). */
  private readonly cancelled = new Set<number>()
  /** Results the coordinator counted. */
  accepted = 0

  constructor(framed: FramedStream, handlers: MeshLinkHandlers = {}) {
    this.framed = framed
    this.handlers = handlers
  }

  /** Says hello with the join token and resolves with the event's jobs once welcomed (or rejects with the refusal). */
  hello(
    token: string,
    capability: Capability,
    agent: string,
    signal: AbortSignal,
  ): Promise<{ participantId: string; jobs: JobSpec[] }> {
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(new AbortError())
      signal.addEventListener('abort', onAbort, { once: true })
      this.welcome = (message) => {
        signal.removeEventListener('abort', onAbort)
        resolve({ participantId: message.participantId, jobs: message.jobs })
      }
      this.fatal = (error) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      }
      this.send({ type: 'hello', token, capability, agent }).catch(this.fatal)
    })
  }

  /** Reads the coordinator's frames until the stream ends; resolves with why it ended. */
  async read(): Promise<Error> {
    let ended: Error = new PeerGoneError('the coordinator closed the stream')
    try {
      for await (const frame of this.framed.frames()) {
        const error = this.receive(frame)
        if (error !== undefined) ended = error
      }
    } catch (error) {
      ended = error instanceof Error ? error : new PeerGoneError(String(error))
    }
    this.close(ended)
    return ended
  }

  async requestLease(signal: AbortSignal, capability: Capability): Promise<Lease<TaskBase> | undefined> {
    for (;;) {
      if (signal.aborted) throw new AbortError()
      // A request supersedes an earlier wake-up: the answer tells the current state.
      this.workSignalled = false
      const answer = await this.request((requestId) => ({ type: 'lease-request', requestId, capability }))
      if (answer.type === 'lease') {
        if (answer.lease === null) return undefined
        if (answer.frameKey === undefined) return answer.lease
        // A keyed lease: the frame source finds the key in the image URL (the field a task fetches
        // its image by, whatever its kind), the result is sealed with it.
        const key = await importFrameKey(answer.frameKey)
        this.leaseKeys.set(answer.lease.leaseId, key)
        const { imageUrl } = answer.lease.block
        if (typeof imageUrl !== 'string') return answer.lease
        const block = { ...answer.lease.block, imageUrl: keyedUrl(imageUrl, key) }
        return { ...answer.lease, block }
      }
      if (answer.type === 'error' && answer.code === 'rate-limited') {
        await sleep(1000, signal)
        continue
      }
      throw new ProtocolError('protocol', `unexpected answer ${answer.type} to a lease request`)
    }
  }

  isCancelled(leaseId: number): boolean {
    return this.cancelled.delete(leaseId)
  }

  async sendResult(leaseId: number, result: Uint8Array): Promise<void> {
    const key = this.leaseKeys.get(leaseId)
    this.leaseKeys.delete(leaseId)
    for (;;) {
      const requestId = this.nextRequest++
      const frame = await encodeResultFrame(requestId, leaseId, result, key)
      const answer = this.await(requestId)
      await this.framed.send(FrameKind.binary, frame)
      const ack = await answer
      // Ahead of the coordinator's rate limit (many small blocks): the result waits and goes again.
      if (ack.type === 'error' && ack.code === 'rate-limited') {
        // One second at most; a link closed meanwhile rejects the next attempt's answer at once.
        await new Promise((resolve) => setTimeout(resolve, 1000))
        continue
      }
      // A refused result (a late copy, a cancelled lease) is the coordinator's business: nothing to redo.
      if (ack.type === 'ack' && ack.accepted) this.accepted++
      return
    }
  }

  async reportFailure(leaseId: number, reason: string): Promise<void> {
    this.leaseKeys.delete(leaseId)
    await this.request((requestId) => ({
      type: 'failed',
      requestId,
      leaseId,
      reason: reason.slice(0, 1000),
    }))
  }

  waitForWork(signal: AbortSignal): Promise<void> {
    if (this.workSignalled) {
      this.workSignalled = false
      return Promise.resolve()
    }
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith)
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.wake = undefined
        reject(new AbortError())
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.wake = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort)
          this.wake = undefined
          resolve()
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort)
          this.wake = undefined
          reject(error)
        },
      }
    })
  }

  private request(build: (requestId: number) => ToCoordinator): Promise<Answer> {
    const requestId = this.nextRequest++
    const answer = this.await(requestId)
    this.send(build(requestId)).catch(() => {})
    return answer
  }

  private await(requestId: number): Promise<Answer> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith)
    return new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject }))
  }

  private send(message: ToCoordinator): Promise<void> {
    return this.framed.sendJson(message)
  }

  /** Handles one frame; returns an error when the coordinator refused us (the stream ends next). */
  private receive(frame: Frame): Error | undefined {
    if (frame.kind === FrameKind.binary) {
      this.handlers.onOutcome?.(frame.payload)
      return undefined
    }
    const message = parseControl(toParticipantSchema, frame.payload)
    switch (message.type) {
      case 'welcome':
        this.welcome?.(message)
        this.welcome = undefined
        return undefined
      case 'work-available':
        if (this.wake !== undefined) this.wake.resolve()
        else this.workSignalled = true
        return undefined
      case 'lease-cancelled':
        this.cancelled.add(message.leaseId)
        // Only leases still in hand matter; the oldest ids are forgotten.
        if (this.cancelled.size > 256) this.cancelled.delete(this.cancelled.values().next().value!)
        this.handlers.onLeaseCancelled?.(message.leaseId)
        return undefined
      case 'job-added':
        this.handlers.onJobAdded?.(message.job)
        return undefined
      case 'job-ended':
        this.handlers.onJobEnded?.(message.jobId)
        return undefined
      case 'error':
        if (message.requestId !== undefined && this.pending.has(message.requestId)) {
          this.settle(message.requestId, message)
          return undefined
        }
        return new ProtocolError(message.code, message.message)
      case 'lease':
      case 'ack':
        this.settle(message.requestId, message)
        return undefined
    }
  }

  private settle(requestId: number, answer: Answer): void {
    const waiter = this.pending.get(requestId)
    this.pending.delete(requestId)
    waiter?.resolve(answer)
  }

  private close(reason: Error): void {
    this.closedWith = reason
    this.handlers.onClosed?.(reason)
    this.fatal?.(reason)
    this.fatal = undefined
    this.wake?.reject(reason)
    for (const waiter of this.pending.values()) waiter.reject(reason)
    this.pending.clear()
  }
}
