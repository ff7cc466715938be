import { type FrameOutcome, modelVertices, type OutcomeRule } from '../jobs/vertex/outcome.ts'
import type { MultiViewDataset } from '../datasets/middlebury.ts'
import { runLocalJob } from '../jobs/vertex/run-job.ts'
import { frameSource } from '../participant/frame-source.ts'
import type { Camera } from '../jobs/vertex/camera.ts'
import { InvalidOptionError } from '../protocol/errors.ts'
import type { VertexJob } from '../jobs/vertex/block.ts'
import { scoreRendering } from './image-metrics.ts'
import { defaultSplatStyle, renderSplats, type SplatStyle } from './splat-render.ts'

/**
 * The contract renderer (the foundation issue's): z-buffered splats of one pixel's radius, no
 * blending. Every method is scored with it (`psnr`, `iou`), so two methods meet on one harness.
 */
export const contractSplat: SplatStyle = { radius: 1, blendDepthVoxels: 0 }

/**
 * The footprint renderer: each vertex's voxel footprint, blended over 1.5 voxels of depth. It smooths
 * colour and fills the gaps between 1-pixel splats: reported beside the contract figure
 * (`footprint`), for every method alike, never in its place.
 */
export const footprintSplat: SplatStyle = defaultSplatStyle

/** Object threshold of the photographs: mean brightness share, as the Middlebury authors suggest. */
export const photoObjectBrightness = 0.19

/** Options of a leave-one-out evaluation. */
export interface HoldoutInit {
  grid: number
  participants?: number
  outcomeRule?: Partial<OutcomeRule>
  backgroundBrightness?: number
  minCoverage?: number
  signal?: AbortSignal
  onProgress?: (done: number, total: number) => void
}

/** The score of one held-out view. */
export interface HoldoutScore {
  view: string
  index: number
  /** The contract figures: rendered with `contractSplat`. */
  psnr: number
  iou: number
  /** The same outcome rendered with `footprintSplat`. */
  footprint: { psnr: number; iou: number }
  colouredVertices: number
  /** Vertices of the model rendered: the coloured surface and the interior it colours. */
  modelVertices: number
  totalVertices: number
  seconds: number
  job: VertexJob
  outcome: FrameOutcome
  /** The rendering and the photograph side by side, RGBA, 2·width × height. */
  sideBySide: { width: number; height: number; rgba: Uint8Array }
}

/**
 * The naive reference method of the foundation issue, for comparison on the same harness: keep the
 * vertices whose area is mostly foreground (brightness > 0.19) in every view, and colour each with
 * the mean over all views that see it. It is rendered and scored as every method is.
 */
export const naiveMethod: Pick<HoldoutInit, 'outcomeRule' | 'backgroundBrightness' | 'minCoverage'> = {
  outcomeRule: { occlusionAware: false, refineSurface: false },
  backgroundBrightness: photoObjectBrightness,
  minCoverage: 0.5,
}

/** Resolves `--holdout`: an image name (with or without .png) or a 0-based index in the `_par.txt` order. */
export function resolveHoldout(dataset: MultiViewDataset, holdout: string): Camera {
  const byName = dataset.cameras.find((c) => c.name === holdout || `${c.name}.png` === holdout)
  if (byName !== undefined) return byName
  if (/^\d+$/.test(holdout)) {
    const camera = dataset.cameras[Number(holdout)]
    if (camera !== undefined) return camera
  }
  throw new InvalidOptionError(
    `--holdout ${holdout}: no such view; use a name (${dataset.cameras[0]?.name}…) or an index 0..${dataset.cameras.length - 1}`,
  )
}

/**
 * Colours the grid from every view but `holdout` (through the real coordinator and participant
 * threads), renders the model (`modelVertices`) into the held-out camera with z-buffered splats and
 * compares with its photograph: silhouette IoU and PSNR where both show the object. Every method is
 * rendered by both renderers: the contract's (`psnr`, `iou`) and the footprint's (`footprint`).
 */
export async function evaluateHoldout(
  dataset: MultiViewDataset,
  holdout: Camera,
  init: HoldoutInit,
): Promise<HoldoutScore> {
  const run = await runLocalJob({
    dataset,
    grid: init.grid,
    excludeCameras: [holdout.id],
    ...(init.participants !== undefined && { participants: init.participants }),
    ...(init.outcomeRule !== undefined && { outcomeRule: init.outcomeRule }),
    ...(init.backgroundBrightness !== undefined && { backgroundBrightness: init.backgroundBrightness }),
    ...(init.minCoverage !== undefined && { minCoverage: init.minCoverage }),
    ...(init.signal !== undefined && { signal: init.signal }),
    ...(init.onProgress !== undefined && { onProgress: init.onProgress }),
  })
  const { ids, rgb, offset } = modelVertices(run.outcome)
  const rendering = renderSplats(run.job.space, holdout, ids, rgb, contractSplat, offset)
  const footprint = renderSplats(run.job.space, holdout, ids, rgb, footprintSplat, offset)
  const frame = dataset.frames.find((f) => f.cameraId === holdout.id)!
  const photo = await frameSource({ maxFrames: 1 }).get(frame.imageUrl, init.signal)
  const score = scoreRendering(rendering.rgba, photo.rgba, photoObjectBrightness)
  const footprintScore = scoreRendering(footprint.rgba, photo.rgba, photoObjectBrightness)
  return {
    view: holdout.name,
    index: dataset.cameras.indexOf(holdout),
    psnr: score.psnr,
    iou: score.iou,
    footprint: { psnr: footprintScore.psnr, iou: footprintScore.iou },
    colouredVertices: run.outcome.coloured,
    modelVertices: ids.length,
    totalVertices: run.outcome.totalVertices,
    seconds: run.seconds,
    job: run.job,
    outcome: run.outcome,
    sideBySide: sideBySide(holdout.width, holdout.height, rendering.rgba, photo.rgba),
  }
}

/** Two RGBA images of one size, left and right, opaque. */
export function sideBySide(width: number, height: number, left: Uint8Array, right: Uint8Array) {
  const rgba = new Uint8Array(width * 2 * height * 4)
  for (let y = 0; y < height; y++) {
    rgba.set(left.subarray(y * width * 4, (y + 1) * width * 4), y * width * 8)
    rgba.set(right.subarray(y * width * 4, (y + 1) * width * 4), y * width * 8 + width * 4)
  }
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255
  return { width: width * 2, height, rgba }
}
