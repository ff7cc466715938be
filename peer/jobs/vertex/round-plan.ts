import type { JobSpec, RoundPlan } from '../kind.ts'
import { BlockMismatchError } from '../../protocol/errors.ts'
import type { Block, Frame, VertexJob } from './block.ts'
import { levelSpace, vertexCount } from './target-space.ts'

/**
 * One moment of a vertex job: each camera's frame is an input, and brings the grid's vertices seen
 * from that camera as units. Blocks are cut in camera order, each a run of vertex ids, at the size
 * asked (the order and sizes the coordinator had before job kinds).
 */
export class VertexRoundPlan implements RoundPlan<Block> {
  readonly frameIndex: number
  readonly level: number
  /** Vertices of the round's grid: the units each camera frame brings. */
  readonly verticesPerCamera: number
  /** One range per camera frame added; `next` is the first vertex not yet cut into a block. */
  readonly ranges: { frame: Frame; next: number }[] = []
  private readonly jobId: string
  private readonly cameras: ReadonlySet<number>
  private left = 0

  constructor(job: JobSpec<VertexJob>, frameIndex: number, level: number) {
    this.jobId = job.jobId
    this.frameIndex = frameIndex
    this.level = level
    this.verticesPerCamera = vertexCount(levelSpace(job.description.space, level))
    this.cameras = new Set(job.description.cameras.map((c) => c.id))
  }

  get totalUnits(): number {
    return this.verticesPerCamera * this.cameras.size
  }

  get inputsComplete(): boolean {
    return this.ranges.length === this.cameras.size
  }

  unitsLeft(): number {
    return this.left
  }

  addInput(input: unknown): boolean {
    const frame = input as Frame
    if (!this.cameras.has(frame.cameraId))
      throw new BlockMismatchError(`frame names camera ${frame.cameraId}, not in job ${this.jobId}`)
    if (this.ranges.some((r) => r.frame.cameraId === frame.cameraId)) return false
    this.ranges.push({ frame, next: 0 })
    this.left += this.verticesPerCamera
    return true
  }

  cut(maxUnits: number): Block | undefined {
    for (const range of this.ranges) {
      if (range.next >= this.verticesPerCamera) continue
      const count = Math.min(maxUnits, this.verticesPerCamera - range.next)
      const block: Block = {
        jobId: this.jobId,
        frameIndex: this.frameIndex,
        cameraId: range.frame.cameraId,
        imageUrl: range.frame.imageUrl,
        firstVertex: range.next,
        vertexCount: count,
        ...(this.level > 0 && { level: this.level }),
      }
      range.next += count
      this.left -= count
      return block
    }
    return undefined
  }
}
