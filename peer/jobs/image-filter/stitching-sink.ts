import type { AddOutcome, JobSpec, RoundSink } from '../kind.ts'
import { BlockMismatchError, InvalidMessageError } from '../../protocol/errors.ts'
import type { FilteredImage, ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'
import { type ImageRoundPlan, tileKey } from './tiling.ts'

/*
 * Where a round's tiles meet: each result's rectangle is copied into the output image, and a coverage
 * byte per pixel says which pixels are counted. A result is checked against the round first and only
 * then copied, so a refused one changes nothing. The image and the mask are allocated with the first
 * result (the round's image size is known by then): 5 bytes per pixel, 320 MiB at the 64 Mpx limit.
 */

/** Stitches the results of one image's round into the filtered image. */
export class StitchingSink implements RoundSink<ImageTask, ImageTaskResult, FilteredImage> {
  private readonly jobId: string
  private readonly plan: ImageRoundPlan
  private readonly counted = new Set<string>()
  private rgba: Uint8Array | undefined
  private covered: Uint8Array | undefined
  private pixels = 0

  constructor(job: JobSpec<ImageFilterJob>, plan: ImageRoundPlan) {
    this.jobId = job.jobId
    this.plan = plan
  }

  get complete(): boolean {
    const image = this.plan.image
    return image !== undefined && this.pixels === image.width * image.height
  }

  add(task: ImageTask, result: ImageTaskResult): AddOutcome {
    const { width, height } = this.check(task, result)
    if (this.counted.has(tileKey(task))) return 'duplicate'
    this.rgba ??= new Uint8Array(width * height * 4)
    this.covered ??= new Uint8Array(width * height)
    const { x, y, w, h } = task
    for (let j = 0; j < h; j++) {
      const start = (y + j) * width + x
      if (this.covered.subarray(start, start + w).some((c) => c !== 0)) {
        throw new BlockMismatchError(`rectangle ${tileKey(task)} overlaps pixels already counted`)
      }
    }
    for (let j = 0; j < h; j++) {
      const start = (y + j) * width + x
      this.covered.fill(1, start, start + w)
      this.rgba.set(result.rgba.subarray(j * w * 4, (j + 1) * w * 4), start * 4)
    }
    this.counted.add(tileKey(task))
    this.pixels += w * h
    return 'added'
  }

  withdraw(task: ImageTask): void {
    const image = this.plan.image
    if (image === undefined || this.covered === undefined || !this.counted.delete(tileKey(task))) return
    const { x, y, w, h } = task
    for (let j = 0; j < h; j++) {
      const start = (y + j) * image.width + x
      this.covered.fill(0, start, start + w)
    }
    this.pixels -= w * h
  }

  finish(): FilteredImage {
    const image = this.plan.image
    if (image === undefined || this.rgba === undefined || !this.complete) {
      throw new BlockMismatchError(`round ${this.plan.frameIndex} is not complete: it has no outcome yet`)
    }
    return { frameIndex: this.plan.frameIndex, width: image.width, height: image.height, rgba: this.rgba }
  }

  /** The task belongs to this round and lies in its image; the result is the task's. */
  private check(task: ImageTask, result: ImageTaskResult): { width: number; height: number } {
    const image = this.plan.image
    if (image === undefined) throw new BlockMismatchError('the round has no image yet')
    if (task.jobId !== this.jobId)
      throw new BlockMismatchError(`task of job ${task.jobId}, not ${this.jobId}`)
    if (task.frameIndex !== this.plan.frameIndex) {
      throw new BlockMismatchError(`task of round ${task.frameIndex}, not ${this.plan.frameIndex}`)
    }
    if (task.imageUrl !== image.imageUrl || task.width !== image.width || task.height !== image.height) {
      throw new BlockMismatchError('the task names another image than the round’s')
    }
    const { x, y, w, h } = task
    const whole = Number.isInteger(x) && Number.isInteger(y) && Number.isInteger(w) && Number.isInteger(h)
    if (!(whole && w >= 1 && h >= 1 && x >= 0 && y >= 0 && x + w <= image.width && y + h <= image.height)) {
      throw new BlockMismatchError(
        `rectangle ${tileKey(task)} is not in the ${image.width}×${image.height} image`,
      )
    }
    for (const field of ['jobId', 'frameIndex', 'x', 'y', 'w', 'h'] as const) {
      if (result[field] !== task[field]) throw new InvalidMessageError(field, 'the result is not the task’s')
    }
    if (result.rgba.length !== w * h * 4) {
      throw new InvalidMessageError('rgba', `${result.rgba.length} bytes do not fit ${w}×${h}`)
    }
    return image
  }
}
