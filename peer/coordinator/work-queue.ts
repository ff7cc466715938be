import type { Block, Frame } from '../protocol/job.ts'

/** The work of one moment (frame index): the cameras' vertex ranges still to carve, and blocks to redo. */
export interface FrameWork {
  readonly index: number
  /** Grid level: 0 is the job's grid, 1 halves each axis (a downgraded frame), and so on. */
  readonly level: number
  readonly verticesPerCamera: number
  /** When its last camera frame arrived (coordinator clock, ms): latency counts from here. */
  arrivedAt: number
  /** One range per camera frame added; `next` is the first vertex not yet carved into a block. */
  readonly ranges: { frame: Frame; next: number }[]
  /** Blocks whose lease expired or failed, waiting to be granted again (never split: a block keeps its identity). */
  readonly requeued: Block[]
  /** Their keys, in the same order. */
  readonly requeuedKeys: string[]
  /** Keys of blocks whose result counted. */
  readonly done: Set<string>
  threadsDone: number
  reassignments: number
}

/**
 * The coordinator's queue of work, in priority order: earlier frames first; within a frame, blocks
 * to redo before new ones. A block to redo of frame i therefore goes ahead of every block of a later
 * frame. Blocks are carved on demand at the size the scheduler asks for, so each participant's
 * block fits its speed.
 */
export class WorkQueue {
  private readonly frames = new Map<number, FrameWork>()
  /** Frame indices in priority order (ascending). */
  private readonly order: number[] = []

  /** The work of a frame index, if known. */
  frame(index: number): FrameWork | undefined {
    return this.frames.get(index)
  }

  /** Frames in priority order. */
  *inOrder(): Iterable<FrameWork> {
    for (const index of this.order) yield this.frames.get(index)!
  }

  /** Adds a camera frame; creates its frame's work on first use. Returns the frame's work. */
  addCameraFrame(frame: Frame, verticesPerCamera: number, level: number, now: number): FrameWork {
    let work = this.frames.get(frame.index)
    if (work === undefined) {
      work = {
        index: frame.index,
        level,
        verticesPerCamera,
        arrivedAt: now,
        ranges: [],
        requeued: [],
        requeuedKeys: [],
        done: new Set(),
        threadsDone: 0,
        reassignments: 0,
      }
      this.frames.set(frame.index, work)
      let at = this.order.length
      while (at > 0 && this.order[at - 1]! > frame.index) at--
      this.order.splice(at, 0, frame.index)
    }
    work.ranges.push({ frame, next: 0 })
    work.arrivedAt = now
    return work
  }

  /** The next block in priority order, carved to at most `vertices` when new. */
  next(jobId: string, vertices: number): Block | undefined {
    for (const index of this.order) {
      const work = this.frames.get(index)!
      const redo = work.requeued.shift()
      if (redo !== undefined) {
        work.requeuedKeys.shift()
        return redo
      }
      for (const range of work.ranges) {
        if (range.next >= work.verticesPerCamera) continue
        const count = Math.min(vertices, work.verticesPerCamera - range.next)
        const block: Block = {
          jobId,
          frameIndex: work.index,
          cameraId: range.frame.cameraId,
          imageUrl: range.frame.imageUrl,
          firstVertex: range.next,
          vertexCount: count,
          ...(work.level > 0 && { level: work.level }),
        }
        range.next += count
        return block
      }
    }
    return undefined
  }

  /**
   * Puts a task back to be granted again, ahead of new tasks of its round and of all later rounds.
   * `key` is its lease's (worked out once, at grant).
   */
  requeue(block: Block, key: string): void {
    const work = this.frames.get(block.frameIndex)
    if (work === undefined || work.done.has(key)) return
    if (work.requeuedKeys.includes(key)) return
    work.requeued.push(block)
    work.requeuedKeys.push(key)
    work.reassignments++
  }

  /** Withdraws a task from the redo list (its result arrived late after all). */
  withdraw(block: Block, key: string): void {
    const work = this.frames.get(block.frameIndex)
    if (work === undefined || work.requeued.length === 0) return
    const at = work.requeuedKeys.indexOf(key)
    if (at < 0) return
    work.requeued.splice(at, 1)
    work.requeuedKeys.splice(at, 1)
  }

  /** Blocks-worth of vertices waiting (new and to redo), for statistics. */
  get queuedVertices(): number {
    let total = 0
    for (const work of this.frames.values()) {
      for (const b of work.requeued) total += b.vertexCount
      for (const r of work.ranges) total += work.verticesPerCamera - r.next
    }
    return total
  }

  /** Vertices of one frame still waiting to be granted (new and to redo). */
  queuedIn(work: FrameWork): number {
    let total = 0
    for (const b of work.requeued) total += b.vertexCount
    for (const r of work.ranges) total += work.verticesPerCamera - r.next
    return total
  }

  /** The first frame with a block waiting to be granted: the one the next lease must come from. */
  firstWithWork(): number | undefined {
    for (const work of this.inOrder()) if (this.queuedIn(work) > 0) return work.index
    return undefined
  }

  /** Forgets a frame (complete or dropped). */
  remove(index: number): void {
    if (!this.frames.delete(index)) return
    this.order.splice(this.order.indexOf(index), 1)
  }

  /** Number of frames with work or outstanding leases. */
  get size(): number {
    return this.frames.size
  }
}
