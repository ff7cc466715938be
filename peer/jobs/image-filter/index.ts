import type { JobKind } from '../kind.ts'
import { InvalidOptionError } from '../../protocol/errors.ts'
import { imageFilterCpuWorker } from './cpu-worker.ts'
import { decodeImageResult, encodeImageResult, resultBytes, resultMatches } from './result-codec.ts'
import {
  type FilteredImage,
  type ImageFilterJob,
  imageFilterJobSchema,
  type ImageTask,
  imageTaskSchema,
  type ImageTaskResult,
  maxImageSide,
  maxTaskPixels,
} from './schemas.ts'
import { StitchingSink } from './stitching-sink.ts'
import { decodeThumbnail, encodeThumbnail, type FilteredThumbnail } from './thumbnail.ts'
import { ImageRoundPlan, tileKey, tileSpan } from './tiling.ts'
import { imageFilterValidation } from './validation.ts'

/*
 * The image-filter kind: a batch of images, one per round, each filtered (Gaussian, box or bilateral
 * blur) tile by tile on participants' CPUs or GPUs and stitched back together by the coordinator.
 * A unit is one output pixel. The WebGL worker is a separate chunk, loaded only when asked for.
 */

export type { FilteredImage, ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'
export type { FilteredThumbnail } from './thumbnail.ts'

function noLevels(level: number): void {
  // No `levels`: a batch image has no coarser version worth computing, so the core never asks.
  if (level !== 0)
    throw new InvalidOptionError(`the image-filter kind has no coarser rounds (level ${level})`)
}

/** Filters images tile by tile; see the module comment. */
export const imageFilterKind: JobKind<
  ImageFilterJob,
  ImageTask,
  ImageTaskResult,
  FilteredImage,
  FilteredThumbnail
> = {
  name: 'image-filter',
  version: 1,
  schemas: { job: imageFilterJobSchema, task: imageTaskSchema },
  limits: { maxTaskUnits: maxTaskPixels, maxResultBytes: resultBytes },
  openRound(job, frameIndex, level) {
    noLevels(level)
    return new ImageRoundPlan(job, frameIndex)
  },
  taskUnits: (task) => task.w * task.h,
  taskKey: tileKey,
  taskSpan: tileSpan,
  result: { encode: encodeImageResult, decode: decodeImageResult, matches: resultMatches },
  openSink(job, plan, level) {
    noLevels(level)
    if (!(plan instanceof ImageRoundPlan)) {
      throw new InvalidOptionError('an image-filter sink needs the round plan the kind opened')
    }
    return new StitchingSink(job, plan)
  },
  outcome: {
    encode: (outcome, _job, maxBytes) => encodeThumbnail(outcome, maxBytes),
    decode: decodeThumbnail,
    // The units the round computed (pixels of the filtered image), not the thumbnail's pixels.
    summary: (thumbnail) => ({
      frameIndex: thumbnail.frameIndex,
      items: thumbnail.imageWidth * thumbnail.imageHeight,
    }),
    picture: ({ width, height, rgba }) => ({ width, height, rgba }),
  },
  workers: {
    cpu: (env) => Promise.resolve(imageFilterCpuWorker(env)),
    async webgl(env) {
      const { createImageFilterWebglWorker } = await import('./webgl-worker.ts')
      return createImageFilterWebglWorker({
        frames: env.frames,
        ...(env.canvas !== undefined ? { canvas: env.canvas } : {}),
      })
    },
  },
  validation: imageFilterValidation,
  /*
   * Per unit (output pixel) against one vertex view (a projection and sixteen summed-area reads,
   * about twenty operations). A separable filter of radius r costs 2·(2r+1) multiply-adds per
   * channel, four channels; the kind's cost is one number for all its jobs, so it is the estimate
   * for the simulator's job (Gaussian, r = 2): 2·5·4/20 = 2. Radius 8 costs about 3.4 times that,
   * a bilateral filter (2r+1)²·4 lookups and products, far more; the scheduler sizes tasks from
   * each participant's measured units per second, so the estimate only seeds its first guess.
   * Images are fetched once per participant and cached by URL, so a unit brings no input bytes.
   */
  cost: {
    relativeCost: 2,
    inputBytesPerUnit: 0,
    resultBytesPerUnit: 4,
    minTaskUnits: 16,
    maxTaskUnits: maxTaskPixels,
    calibrationUnits: 256,
  },
  simulation: {
    job: () => ({ filter: { type: 'gaussian', radius: 2, sigma: 1 }, tile: 256 }),
    // The image size is a round's input, not the job's: a square of about the units asked.
    inputs(_job, frameIndex, unitsPerRound) {
      const side = Math.min(maxImageSide, Math.max(1, Math.round(Math.sqrt(unitsPerRound))))
      return [{ imageUrl: `sim:image/${frameIndex}`, width: side, height: side }]
    },
    fakeResult: ({ jobId, frameIndex, x, y, w, h }) => ({
      jobId,
      frameIndex,
      x,
      y,
      w,
      h,
      rgba: new Uint8Array(w * h * 4),
    }),
  },
}
