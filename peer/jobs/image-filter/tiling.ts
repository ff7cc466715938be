import type { JobSpec, RoundPlan, TaskSpan } from '../kind.ts'
import { parseMessage } from '../../protocol/schemas.ts'
import { type ImageFilterJob, type ImageTask, type RoundImage, roundImageSchema } from './schemas.ts'

/*
 * How a round's image is cut into tasks. The image is divided into tiles of `tile`×`tile` pixels
 * (narrower in the last column, shorter in the last band); tiles are handed out in row-major order,
 * and each tile top to bottom: whole rows of the tile while the asker can take at least one, else a
 * piece of the current row. So a task always lies in one tile and is contiguous in the tile's own
 * row-major order, which is what makes its span a single range.
 *
 * Spans. Lane = the tile band (`floor(y / tile)`); within a band, pixels are numbered tile by tile
 * from the left, each tile row-major: pixel (px, py) of the tile at (tx, band top by) is
 * `tx·bandHeight + (py−by)·tileWidth + (px−tx)`. That numbering is a bijection between the band's
 * pixels and `0 .. width·bandHeight−1`, so the tasks of a round cover every lane exactly once and two
 * tasks overlap in spans exactly when they overlap in pixels.
 */

/** A task's place in its round's tile numbering (see above); needs only the task. */
export function tileSpan(task: ImageTask): TaskSpan {
  const { tile, x, y } = task
  const tileX = x - (x % tile)
  const bandY = y - (y % tile)
  const tileWidth = Math.min(tile, task.width - tileX)
  const bandHeight = Math.min(tile, task.height - bandY)
  return {
    lane: bandY / tile,
    first: tileX * bandHeight + (y - bandY) * tileWidth + (x - tileX),
    count: task.w * task.h,
  }
}

/** A task's key within its job: its round and its rectangle (the rest of a task is the round's). */
export function tileKey(task: ImageTask): string {
  return `${task.frameIndex}/${task.x},${task.y},${task.w}x${task.h}`
}

/**
 * One image's round. Units appear when the image (the round's only input) arrives; `cut` then walks
 * the tiles with a cursor, so a cut costs a few comparisons and one task object.
 */
export class ImageRoundPlan implements RoundPlan<ImageTask> {
  readonly frameIndex: number
  private readonly jobId: string
  private readonly tile: number
  private input: RoundImage | undefined
  private cutUnits = 0
  // The cursor: the current tile's left edge, its band's top, the row within the tile, and the
  // column within that row when a row was split.
  private tileX = 0
  private bandY = 0
  private row = 0
  private column = 0

  constructor(job: JobSpec<ImageFilterJob>, frameIndex: number) {
    this.jobId = job.jobId
    this.tile = job.description.tile
    this.frameIndex = frameIndex
  }

  /** The round's image once it arrived. */
  get image(): RoundImage | undefined {
    return this.input
  }

  get totalUnits(): number {
    return this.input === undefined ? 0 : this.input.width * this.input.height
  }

  get inputsComplete(): boolean {
    return this.input !== undefined
  }

  unitsLeft(): number {
    return this.totalUnits - this.cutUnits
  }

  addInput(input: unknown): boolean {
    const image = parseMessage(roundImageSchema, input)
    if (this.input !== undefined) return false
    this.input = image
    return true
  }

  cut(maxUnits: number): ImageTask | undefined {
    const image = this.input
    if (image === undefined || this.bandY >= image.height) return undefined
    // A task holds at least one unit whatever is asked (a sizer's 0 or NaN would stall the round).
    const most = maxUnits >= 1 ? Math.floor(maxUnits) : 1
    const { tile } = this
    const tileWidth = Math.min(tile, image.width - this.tileX)
    const bandHeight = Math.min(tile, image.height - this.bandY)
    const x = this.tileX + this.column
    const y = this.bandY + this.row
    let w: number
    let h: number
    if (this.column === 0 && most >= tileWidth) {
      w = tileWidth
      h = Math.min(bandHeight - this.row, Math.floor(most / tileWidth))
      this.row += h
    } else {
      w = Math.min(tileWidth - this.column, most)
      h = 1
      this.column += w
      if (this.column === tileWidth) {
        this.column = 0
        this.row++
      }
    }
    if (this.row === bandHeight) {
      this.row = 0
      this.tileX += tile
      if (this.tileX >= image.width) {
        this.tileX = 0
        this.bandY += tile
      }
    }
    this.cutUnits += w * h
    return {
      jobId: this.jobId,
      frameIndex: this.frameIndex,
      imageUrl: image.imageUrl,
      width: image.width,
      height: image.height,
      tile,
      x,
      y,
      w,
      h,
    }
  }
}
