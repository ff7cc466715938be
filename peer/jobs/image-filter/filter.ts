import type { FrameImage } from '../../participant/frame-image.ts'
import { BlockMismatchError } from '../../protocol/errors.ts'
import type { BilateralFilter, ImageFilter, SeparableFilter } from './schemas.ts'

/*
 * The filters in integer arithmetic: the CPU worker's code, and the weights the WebGL worker uploads.
 * Every weight is an integer worked out once in JavaScript, every sum is an exact integer, and each
 * output channel is rounded once (half up), so a GPU that adds the same integers in float32 gets the
 * same bytes. Pixels outside the image take the value of the nearest edge pixel (clamp to edge).
 *
 * Separable filters (Gaussian, box): per-axis taps with sum S; the horizontal pass keeps its sums
 * unrounded (≤ 255·S), the vertical pass sums taps × those (≤ 255·S²), and the channel is
 * round(total / S²). For the Gaussian S = 256, so every partial sum stays ≤ 255·2^16 < 2^24: exact in
 * float32. For the box S = 2r+1, and S² is odd, so total / S² never lies half-way and float division
 * rounds the same way.
 */

/** A Gaussian's taps on each axis sum to this: the largest power of two that keeps sums below 2^24. */
export const gaussianTapSum = 256

/** Per-axis integer taps of a separable filter: `taps[k]` weighs the pixel at offset `k − radius`. */
export interface SeparableTaps {
  readonly radius: number
  readonly taps: Int32Array
  /** Sum of the taps (the 2D weights sum to its square). */
  readonly sum: number
}

/** The taps of a Gaussian (rounded from the exact curve, the centre absorbing the rounding) or a box. */
export function separableTaps(filter: SeparableFilter): SeparableTaps {
  const { radius } = filter
  const n = 2 * radius + 1
  if (filter.type === 'box') return { radius, taps: new Int32Array(n).fill(1), sum: n }
  const curve = Array.from({ length: n }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * filter.sigma ** 2)))
  const area = curve.reduce((a, b) => a + b, 0)
  const taps = Int32Array.from(curve, (g) => Math.round((gaussianTapSum * g) / area))
  // Rounding leaves the sum off by at most n/2; the centre is the largest tap (≥ 256/17), so it
  // takes the difference and stays positive.
  taps[radius]! += gaussianTapSum - taps.reduce((a, b) => a + b, 0)
  return { radius, taps, sum: gaussianTapSum }
}

/** Largest bilateral weight factor: each factor fits a byte, so the WebGL worker uploads them as one. */
export const bilateralWeightMax = 255

/**
 * The bilateral filter's weight tables: a pixel at offset (dx, dy) whose channel differs from the
 * centre's by d weighs `space[dx² + dy²] · range[d]` (an integer ≤ 255²). The centre weighs 255² in
 * every channel, so no weight sum is zero.
 */
export interface BilateralTables {
  readonly radius: number
  /** By squared distance, 0 .. 2·radius². */
  readonly space: Uint8Array
  /** By absolute channel difference, 0 .. 255. */
  readonly range: Uint8Array
}

/** The weight tables of a bilateral filter. */
export function bilateralTables(filter: BilateralFilter): BilateralTables {
  const { radius, sigmaSpace, sigmaRange } = filter
  const factor = (d2: number, sigma: number) =>
    Math.round(bilateralWeightMax * Math.exp(-d2 / (2 * sigma * sigma)))
  return {
    radius,
    space: Uint8Array.from({ length: 2 * radius * radius + 1 }, (_, d2) => factor(d2, sigmaSpace)),
    range: Uint8Array.from({ length: 256 }, (_, d) => factor(d * d, sigmaRange)),
  }
}

/** An output rectangle of an image. */
export interface PixelRect {
  readonly x: number
  readonly y: number
  readonly w: number
  readonly h: number
}

/** Checks that a task's image decoded to the size the round announced, as every worker must. */
export function checkTaskImage(
  task: { imageUrl: string; width: number; height: number },
  image: { width: number; height: number },
): void {
  if (image.width !== task.width || image.height !== task.height) {
    throw new BlockMismatchError(
      `the image is ${image.width}×${image.height} but the task's round announced ${task.width}×${task.height}`,
    )
  }
}

/** The filtered RGBA pixels of `rect` (which must lie in the image), row-major. */
export function filterRect(image: FrameImage, filter: ImageFilter, rect: PixelRect): Uint8Array {
  if (rect.x < 0 || rect.y < 0 || rect.x + rect.w > image.width || rect.y + rect.h > image.height) {
    throw new BlockMismatchError(
      `rectangle ${rect.w}×${rect.h} at ${rect.x},${rect.y} is not in the ${image.width}×${image.height} image`,
    )
  }
  return filter.type === 'bilateral'
    ? filterBilateral(image, bilateralTables(filter), rect)
    : filterSeparable(image, separableTaps(filter), rect)
}

/** Byte offsets of the columns `x − r .. x + w − 1 + r`, clamped to the image. */
function clampedColumns(image: FrameImage, x: number, w: number, r: number): Int32Array {
  return Int32Array.from(
    { length: w + 2 * r },
    (_, i) => Math.min(image.width - 1, Math.max(0, x - r + i)) * 4,
  )
}

/** Byte offset of the row `y`, clamped to the image. */
function clampedRow(image: FrameImage, y: number): number {
  return Math.min(image.height - 1, Math.max(0, y)) * image.width * 4
}

function filterSeparable(image: FrameImage, t: SeparableTaps, rect: PixelRect): Uint8Array {
  const { rgba } = image
  const { x, y, w, h } = rect
  const { radius: r, taps } = t
  const n = taps.length
  const columns = clampedColumns(image, x, w, r)
  // The horizontal pass over the halo's rows: unrounded sums, ≤ 255·S each.
  const rows = h + 2 * r
  const across = new Uint32Array(rows * w * 4)
  for (let j = 0, o = 0; j < rows; j++) {
    const row = clampedRow(image, y - r + j)
    for (let i = 0; i < w; i++, o += 4) {
      let s0 = 0
      let s1 = 0
      let s2 = 0
      let s3 = 0
      for (let k = 0; k < n; k++) {
        const p = row + columns[i + k]!
        const tap = taps[k]!
        s0 += tap * rgba[p]!
        s1 += tap * rgba[p + 1]!
        s2 += tap * rgba[p + 2]!
        s3 += tap * rgba[p + 3]!
      }
      across[o] = s0
      across[o + 1] = s1
      across[o + 2] = s2
      across[o + 3] = s3
    }
  }
  // The vertical pass, rounded once: round(total / S²) half up, i.e. floor((2·total + S²) / (2·S²)).
  const twiceNorm = 2 * t.sum * t.sum
  const out = new Uint8Array(w * h * 4)
  const stride = w * 4
  for (let j = 0, o = 0; j < h; j++) {
    for (let c = 0; c < stride; c++, o++) {
      let total = 0
      for (let k = 0, q = j * stride + c; k < n; k++, q += stride) total += taps[k]! * across[q]!
      out[o] = Math.floor((2 * total + t.sum * t.sum) / twiceNorm)
    }
  }
  return out
}

function filterBilateral(image: FrameImage, t: BilateralTables, rect: PixelRect): Uint8Array {
  const { rgba } = image
  const { x, y, w, h } = rect
  const { radius: r, space, range } = t
  const columns = clampedColumns(image, x, w, r)
  const out = new Uint8Array(w * h * 4)
  for (let j = 0, o = 0; j < h; j++) {
    const centreRow = clampedRow(image, y + j)
    for (let i = 0; i < w; i++) {
      const centre = centreRow + columns[i + r]!
      for (let c = 0; c < 4; c++, o++) {
        const value = rgba[centre + c]!
        // Sums reach 255·289·255² ≈ 4.8e9: beyond int32, exact in a double.
        let total = 0
        let weights = 0
        for (let dy = -r; dy <= r; dy++) {
          const row = clampedRow(image, y + j + dy)
          for (let dx = -r; dx <= r; dx++) {
            const v = rgba[row + columns[i + r + dx]! + c]!
            const weight = space[dx * dx + dy * dy]! * range[Math.abs(v - value)]!
            total += weight * v
            weights += weight
          }
        }
        out[o] = Math.floor((2 * total + weights) / (2 * weights))
      }
    }
  }
  return out
}
