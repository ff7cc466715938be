import { BlockMismatchError, InvalidMessageError } from '../../protocol/errors.ts'
import type { BlockResult } from './block.ts'

/** Options of a frame's aggregation. */
export interface FrameAggregationInit {
  readonly jobId: string
  readonly frameIndex: number
  /** Camera ids that take part in this frame. */
  readonly cameraIds: readonly number[]
  readonly totalVertices: number
  /** A seen thread whose coverage alpha is below this sees background there (see `sampling.ts`). */
  readonly minCoverageAlpha: number
}

/** What `add` did with a block result. */
export type AddOutcome = 'added' | 'duplicate'

/**
 * Incrementally gathers the thread results of one frame (all cameras at one moment), in any order.
 * Per camera it keeps a plane of RGBA thread results; per vertex it keeps the counts that give the
 * first estimate at once (cameras that see the vertex, and those that see background there). Every
 * vote reads the planes. A block counts once: a copy of a block already received is
 * reported as a duplicate and changes nothing; a result that overlaps a received one in part is
 * refused, so no thread is ever counted twice.
 *
 * Plane alpha: 0 not received yet, 1 received and not seen, 2–255 seen with that coverage (a
 * thread's coverage alpha of 1 is stored as 2, so "received" and "seen" stay distinct).
 */
export class FrameAggregation {
  readonly jobId: string
  readonly frameIndex: number
  readonly totalVertices: number
  readonly cameraIds: readonly number[]
  /** RGBA thread results per camera, in the order of `cameraIds`. */
  readonly planes: Uint8Array[]
  /** Cameras that see each vertex. */
  readonly seen: Uint8Array
  /** Cameras that see background at each vertex. */
  readonly background: Uint8Array
  private readonly minCoverageAlpha: number
  private readonly slotOf = new Map<number, number>()
  private receivedThreads = 0
  private duplicateThreads = 0

  constructor(init: FrameAggregationInit) {
    if (init.cameraIds.length > 255) throw new BlockMismatchError('at most 255 cameras per frame')
    this.jobId = init.jobId
    this.frameIndex = init.frameIndex
    this.totalVertices = init.totalVertices
    this.cameraIds = init.cameraIds
    // The plane keeps a coverage alpha of 1 as 2, so a threshold of exactly 2 could not be undone by
    // `withdraw` (was it 1, background, or 2, counted?): it becomes 3, a coverage of 1/127 either way.
    this.minCoverageAlpha = init.minCoverageAlpha === 2 ? 3 : init.minCoverageAlpha
    for (const [slot, id] of init.cameraIds.entries()) this.slotOf.set(id, slot)
    this.planes = init.cameraIds.map(() => new Uint8Array(init.totalVertices * 4))
    this.seen = new Uint8Array(init.totalVertices)
    this.background = new Uint8Array(init.totalVertices)
  }

  /** True once every thread of every camera has a result. */
  get complete(): boolean {
    return this.receivedThreads === this.totalVertices * this.cameraIds.length
  }

  /** Thread results received (each counted once) and threads that arrived again in duplicate blocks. */
  get stats(): { receivedThreads: number; duplicateThreads: number; expectedThreads: number } {
    return {
      receivedThreads: this.receivedThreads,
      duplicateThreads: this.duplicateThreads,
      expectedThreads: this.totalVertices * this.cameraIds.length,
    }
  }

  /** Slot (plane index) of a camera id, or undefined if the camera is not in this frame. */
  slot(cameraId: number): number | undefined {
    return this.slotOf.get(cameraId)
  }

  /**
   * Adds a block result. Throws `BlockMismatchError` if it does not belong to this frame or overlaps a
   * received block in part, `InvalidMessageError` if its bytes break the thread-result rules.
   */
  add(result: BlockResult): AddOutcome {
    const slot = this.checkHeader(result)
    const plane = this.planes[slot]!
    const { firstVertex, vertexCount, colours } = result
    const received = countReceived(plane, firstVertex, vertexCount)
    if (received === vertexCount) {
      this.duplicateThreads += vertexCount
      return 'duplicate'
    }
    if (received > 0) {
      throw new BlockMismatchError(
        `block ${firstVertex}+${vertexCount} of camera ${result.cameraId} overlaps ${received} threads already received`,
      )
    }
    checkColours(colours)
    const { seen, background, minCoverageAlpha } = this
    for (let i = 0, v = firstVertex, o = firstVertex * 4; i < vertexCount * 4; i += 4, v++, o += 4) {
      const alpha = colours[i + 3]!
      if (alpha === 0) {
        plane[o + 3] = 1
        continue
      }
      plane[o] = colours[i]!
      plane[o + 1] = colours[i + 1]!
      plane[o + 2] = colours[i + 2]!
      plane[o + 3] = Math.max(alpha, 2)
      seen[v]!++
      if (alpha < minCoverageAlpha) background[v]!++
    }
    this.receivedThreads += vertexCount
    return 'added'
  }

  /**
   * Takes back a block counted earlier (its participant was caught lying): its threads are no longer
   * received, and leave the counts they entered. A block not (wholly) received is ignored.
   */
  withdraw(block: { cameraId: number; firstVertex: number; vertexCount: number }): void {
    const slot = this.slotOf.get(block.cameraId)
    if (slot === undefined) return
    const plane = this.planes[slot]!
    const { firstVertex, vertexCount } = block
    if (firstVertex < 0 || firstVertex + vertexCount > this.totalVertices) return
    if (countReceived(plane, firstVertex, vertexCount) !== vertexCount) return
    const { seen, background, minCoverageAlpha } = this
    for (let v = firstVertex, o = firstVertex * 4; v < firstVertex + vertexCount; v++, o += 4) {
      const alpha = plane[o + 3]!
      if (alpha >= 2) {
        seen[v]!--
        // The plane keeps alpha 1 as 2: both are below any coverage that counts (see `add`).
        if (alpha < minCoverageAlpha) background[v]!--
      }
      plane.fill(0, o, o + 4)
    }
    this.receivedThreads -= vertexCount
  }

  private checkHeader(result: BlockResult): number {
    if (result.jobId !== this.jobId)
      throw new BlockMismatchError(`result for job ${result.jobId}, not ${this.jobId}`)
    if (result.frameIndex !== this.frameIndex) {
      throw new BlockMismatchError(`result for frame ${result.frameIndex}, not ${this.frameIndex}`)
    }
    const slot = this.slotOf.get(result.cameraId)
    if (slot === undefined)
      throw new BlockMismatchError(`camera ${result.cameraId} is not in frame ${this.frameIndex}`)
    const { firstVertex, vertexCount } = result
    if (
      !Number.isInteger(firstVertex) ||
      !Number.isInteger(vertexCount) ||
      firstVertex < 0 ||
      vertexCount < 1
    ) {
      throw new InvalidMessageError('firstVertex', 'vertex range must be non-negative integers')
    }
    if (firstVertex + vertexCount > this.totalVertices) {
      throw new BlockMismatchError(
        `block ends at vertex ${firstVertex + vertexCount}, past ${this.totalVertices}`,
      )
    }
    if (result.colours.length !== vertexCount * 4) {
      throw new InvalidMessageError(
        'colours',
        `expected ${vertexCount * 4} bytes, got ${result.colours.length}`,
      )
    }
    return slot
  }
}

function countReceived(plane: Uint8Array, first: number, count: number): number {
  let received = 0
  for (let o = first * 4 + 3, end = (first + count) * 4; o < end; o += 4) if (plane[o] !== 0) received++
  return received
}

/**
 * An unseen thread (alpha 0) and one with no foreground (alpha 1) have no colour: RGB must be 0.
 * Anything else is a lying or broken worker.
 */
function checkColours(colours: Uint8Array): void {
  for (let i = 3; i < colours.length; i += 4) {
    const a = colours[i]!
    if (a <= 1 && (colours[i - 1] !== 0 || colours[i - 2] !== 0 || colours[i - 3] !== 0)) {
      throw new InvalidMessageError(
        'colours',
        `thread ${(i - 3) / 4} has alpha ${a} but a colour: it must be black`,
      )
    }
  }
}
