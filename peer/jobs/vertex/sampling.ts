import { samplingDefaults } from './defaults.ts'

/**
 * The exact sampling rule of a data thread. Every worker (CPU now, WebGL later) must produce the
 * same results, within ±1 per channel, so the rule is written down here once:
 *
 * 1. The vertex centre X is projected with P = K·[R|t]: (x, y, w) = P·[X 1]. If w ≤ 0 the camera does
 *    not see the vertex.
 * 2. Pixel (i, j) covers [i − ½, i + ½) × [j − ½, j + ½): the vertex falls on pixel
 *    px = floor(x/w + ½), py = floor(y/w + ½). Outside 0 ≤ px < width, 0 ≤ py < height: not seen.
 * 3. The area is the square of (2r+1)² pixels centred on (px, py), r = min(maxAreaRadius,
 *    floor(f·e / (2w))), where f = (fx+fy)/2 and e is the vertex volume's longest edge: the area
 *    approximates the vertex volume's projected footprint. It is clipped to the image; n pixels remain.
 *    The colour's area is the same square with radius rc = min(maxAreaRadius, max(r,
 *    `minColourRadius`)), clipped alike: at least 3×3 pixels, since one pixel is a point sample.
 * 4. A pixel is foreground when R+G+B > the job's `backgroundSum`; m of the n area pixels are, and
 *    mc of the colour area's.
 * 5. Each colour channel is the integer mean over the mc foreground pixels of the colour area,
 *    rounded half up: floor((Σ + floor(mc/2)) / mc); (0, 0, 0) when m = 0. The background never
 *    tints a colour.
 * 6. Alpha is the foreground coverage: 1 + floor((254·m + floor(n/2)) / n), from 1 (all background)
 *    to 255 (all foreground). A thread that is not seen is (0, 0, 0, 0).
 */

/** Pixel index of a projected coordinate (rule 2). */
export function pixelIndex(coordinate: number): number {
  return Math.floor(coordinate + 0.5)
}

/** Area radius of a vertex at depth `w` (rule 3). */
export function areaRadius(focal: number, voxelEdge: number, w: number, maxAreaRadius: number): number {
  return Math.min(maxAreaRadius, Math.floor((focal * voxelEdge) / (2 * w)))
}

/** Radius of the colour's area for an area of radius `r` (rule 3). */
export function colourRadius(r: number, maxAreaRadius: number): number {
  return Math.min(maxAreaRadius, Math.max(r, samplingDefaults.minColourRadius))
}

/** Integer mean rounded half up (rule 5). */
export function roundedMean(sum: number, n: number): number {
  return Math.floor((sum + Math.floor(n / 2)) / n)
}

/** Coverage alpha of m foreground pixels among n (rule 6). */
export function coverageAlpha(m: number, n: number): number {
  return 1 + Math.floor((254 * m + Math.floor(n / 2)) / n)
}

/** The smallest alpha of a thread whose area is at least `share` foreground. */
export function alphaForCoverage(share: number): number {
  return 1 + Math.round(254 * share)
}
