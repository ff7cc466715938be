import { EventEmitter } from 'node:events'
import type { Clock } from '../protocol/clock.ts'
import { outcomeDefaults, partitionDefaults } from '../protocol/defaults.ts'
import { BlockMismatchError, CrowdmeshError } from '../protocol/errors.ts'
import type { Block, BlockResult, Frame, Lease, VertexJob } from '../protocol/job.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { alphaForCoverage } from '../protocol/sampling.ts'
import { vertexCount } from '../protocol/target-space.ts'
import { FrameAggregation } from './aggregator.ts'
import { decideFrame, type FrameOutcome, type OutcomeRule } from './outcome.ts'
import { partitionFrame } from './partitioner.ts'

/** Options of a coordinator; each defaults from `protocol/defaults.ts`. */
export interface CoordinatorInit {
  job: VertexJob
  /** Vertices per block (default `partitionDefaults.blockVertices`). */
  blockVertices?: number
  /** How long a participant may hold a lease before it goes back to the queue, ms (default 30 s). */
  leaseTimeoutMs?: number
  /** Least foreground share of a vertex's area for a camera to count it occupied (default `outcomeDefaults.minCoverage`). */
  minCoverage?: number
  /** Decision rule of frame outcomes. */
  outcomeRule?: Partial<OutcomeRule>
}

/** Injected dependencies. */
export interface CoordinatorComponents {
  clock: Clock
  logger?: Logger
}

/** A lease refused or a result dropped: why, for statistics and logs. */
export interface RejectedResult {
  participantId: string
  leaseId: number
  error: CrowdmeshError
}

/** Control events of a coordinator. */
export interface CoordinatorEvents {
  /** Every thread of a frame has a result and its outcome is decided. */
  frameComplete: [FrameOutcome]
  /** A block's result was accepted (counts once). */
  blockDone: [{ block: Block; participantId: string; threads: number }]
  /** A lease expired or its participant left: the block is back in the queue. */
  leaseRequeued: [Lease]
  /** A result was refused (bad bytes, wrong lease, lying participant). The coordinator keeps serving. */
  resultRejected: [RejectedResult]
  /** Blocks joined the queue: participants on standby may ask again. */
  workQueued: []
}

interface FrameState {
  readonly aggregation: FrameAggregation
  readonly cameras: Set<number>
  complete: boolean
}

interface ActiveLease {
  readonly lease: Lease
  readonly participantId: string
  readonly timer: unknown
}

/**
 * The coordinator core: partitions frames into blocks, leases them to participants that ask,
 * aggregates their results and decides each frame once complete. Transport-agnostic: a transport
 * calls the `handle*` methods and forwards what they return; the clock is injected.
 *
 * Queue order is earlier frame first; a block that comes back from an expired or abandoned lease
 * goes to the front, ahead of every later frame.
 */
export class Coordinator extends EventEmitter<CoordinatorEvents> {
  readonly job: VertexJob
  private readonly clock: Clock
  private readonly log: Logger
  private readonly blockVertices: number
  private readonly leaseTimeoutMs: number
  private readonly minCoverageAlpha: number
  private readonly outcomeRule: Partial<OutcomeRule>
  private readonly totalVertices: number
  private readonly queue: Block[] = []
  private readonly frames = new Map<number, FrameState>()
  private readonly leases = new Map<number, ActiveLease>()
  private nextLeaseId = 1
  private stopped = false

  constructor(init: CoordinatorInit, components: CoordinatorComponents) {
    super()
    this.job = init.job
    this.clock = components.clock
    this.log = components.logger ?? makeLogger('crowdmesh:coordinator')
    this.blockVertices = init.blockVertices ?? partitionDefaults.blockVertices
    this.leaseTimeoutMs = init.leaseTimeoutMs ?? 30_000
    this.minCoverageAlpha = alphaForCoverage(init.minCoverage ?? outcomeDefaults.minCoverage)
    this.outcomeRule = init.outcomeRule ?? {}
    this.totalVertices = vertexCount(init.job.space)
  }

  /** Blocks waiting for a participant. */
  get queuedBlocks(): number {
    return this.queue.length
  }

  /** Leases outstanding. */
  get activeLeases(): number {
    return this.leases.size
  }

  /** Adds a camera frame: its blocks join the queue in frame order. */
  addFrame(frame: Frame): void {
    if (this.stopped) throw new CrowdmeshError('the coordinator is stopped')
    if (!this.job.cameras.some((c) => c.id === frame.cameraId)) {
      throw new BlockMismatchError(`frame names camera ${frame.cameraId}, not in job ${this.job.jobId}`)
    }
    const state = this.frameState(frame.index)
    if (state.cameras.has(frame.cameraId)) {
      this.log(`frame ${frame.index} of camera ${frame.cameraId} already added`)
      return
    }
    state.cameras.add(frame.cameraId)
    const blocks = partitionFrame(this.job.jobId, frame, this.totalVertices, this.blockVertices)
    // Frames arrive roughly in order; insert after the last block of an earlier or equal frame.
    let at = this.queue.length
    while (at > 0 && this.queue[at - 1]!.frameIndex > frame.index) at--
    this.queue.splice(at, 0, ...blocks)
    this.emit('workQueued')
  }

  /** A participant asks for work: a lease on the next block, or undefined when there is none (standby). */
  handleLeaseRequest(participantId: string): Lease | undefined {
    if (this.stopped) return undefined
    const block = this.queue.shift()
    if (block === undefined) return undefined
    const leaseId = this.nextLeaseId++
    const lease: Lease = { leaseId, block, deadline: this.clock.now() + this.leaseTimeoutMs }
    const timer = this.clock.setTimer(() => this.expire(leaseId), this.leaseTimeoutMs)
    this.leases.set(leaseId, { lease, participantId, timer })
    return lease
  }

  /**
   * A participant returns a block result for a lease. Returns whether it was accepted; a refused
   * result is reported through `resultRejected` and never changes the outcome.
   */
  handleBlockResult(participantId: string, leaseId: number, result: BlockResult): boolean {
    const active = this.leases.get(leaseId)
    try {
      if (active === undefined) throw new BlockMismatchError(`lease ${leaseId} is not active`)
      if (active.participantId !== participantId) {
        throw new BlockMismatchError(`lease ${leaseId} belongs to another participant`)
      }
      const { block } = active.lease
      if (
        result.jobId !== block.jobId ||
        result.frameIndex !== block.frameIndex ||
        result.cameraId !== block.cameraId ||
        result.firstVertex !== block.firstVertex ||
        result.vertexCount !== block.vertexCount
      ) {
        throw new BlockMismatchError(`result does not describe the block of lease ${leaseId}`)
      }
      const state = this.frames.get(block.frameIndex)
      if (state === undefined) throw new BlockMismatchError(`frame ${block.frameIndex} is already complete`)
      const added = state.aggregation.add(result)
      this.release(leaseId)
      if (added === 'added') {
        this.emit('blockDone', { block, participantId, threads: block.vertexCount })
        this.maybeComplete(block.frameIndex, state)
      }
      return true
    } catch (error) {
      if (!(error instanceof CrowdmeshError)) throw error
      // A refused result returns its block to the queue unless another copy already counted.
      if (active !== undefined && active.participantId === participantId) this.requeue(leaseId)
      this.emit('resultRejected', { participantId, leaseId, error })
      return false
    }
  }

  /** A participant failed a block (it says so) or left: its leases go back to the front of the queue. */
  handleParticipantGone(participantId: string): void {
    for (const [leaseId, active] of this.leases)
      if (active.participantId === participantId) this.requeue(leaseId)
  }

  /** A participant reports it could not compute a lease's block. */
  handleBlockFailed(participantId: string, leaseId: number): void {
    const active = this.leases.get(leaseId)
    if (active?.participantId === participantId) this.requeue(leaseId)
  }

  /** True when every added frame is complete and nothing is queued or leased. */
  get idle(): boolean {
    return this.queue.length === 0 && this.leases.size === 0
  }

  /** Cancels every lease timer. Safe to call twice. */
  stop(): void {
    if (this.stopped) return
    this.stopped = true
    for (const active of this.leases.values()) this.clock.clearTimer(active.timer)
    this.leases.clear()
    this.queue.length = 0
  }

  private frameState(index: number): FrameState {
    let state = this.frames.get(index)
    if (state === undefined) {
      state = {
        aggregation: new FrameAggregation({
          jobId: this.job.jobId,
          frameIndex: index,
          cameraIds: this.job.cameras.map((c) => c.id),
          totalVertices: this.totalVertices,
          minCoverageAlpha: this.minCoverageAlpha,
        }),
        cameras: new Set(),
        complete: false,
      }
      this.frames.set(index, state)
    }
    return state
  }

  private maybeComplete(index: number, state: FrameState): void {
    if (state.complete || !state.aggregation.complete) return
    state.complete = true
    const outcome = decideFrame(state.aggregation, this.job.space, this.job.cameras, this.outcomeRule)
    // The planes are large; the outcome holds all that is needed from here on.
    this.frames.delete(index)
    this.emit('frameComplete', outcome)
  }

  private release(leaseId: number): void {
    const active = this.leases.get(leaseId)
    if (active === undefined) return
    this.clock.clearTimer(active.timer)
    this.leases.delete(leaseId)
  }

  private requeue(leaseId: number): void {
    const active = this.leases.get(leaseId)
    if (active === undefined) return
    this.release(leaseId)
    const { block } = active.lease
    let at = 0
    while (at < this.queue.length && this.queue[at]!.frameIndex < block.frameIndex) at++
    this.queue.splice(at, 0, block)
    this.emit('leaseRequeued', active.lease)
    this.emit('workQueued')
  }

  private expire(leaseId: number): void {
    this.log(`lease ${leaseId} expired`)
    this.requeue(leaseId)
  }
}
