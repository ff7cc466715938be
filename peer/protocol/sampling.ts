/**
 * The exact sampling rule of a data thread. Every worker (CPU now, WebGL later) must produce the
 * same colours, within ±1 per channel, so the rule is written down here once:
 *
 * 1. The vertex centre X is projected with P = K·[R|t]: (x, y, w) = P·[X 1]. If w ≤ 0 the camera does
 *    not see the vertex.
 * 2. Pixel (i, j) covers [i − ½, i + ½) × [j − ½, j + ½): the vertex falls on pixel
 *    px = floor(x/w + ½), py = floor(y/w + ½). Outside 0 ≤ px < width, 0 ≤ py < height: not seen.
 * 3. The area is the square of (2r+1)² pixels centred on (px, py), r = min(maxAreaRadius,
 *    floor(f·e / (2w))), where f = (fx+fy)/2 and e is the vertex volume's longest edge: the area
 *    approximates the vertex volume's projected footprint. It is clipped to the image; n pixels remain.
 * 4. Each channel is the integer mean of the n pixels, rounded half up: floor((Σ + floor(n/2)) / n).
 * 5. The thread result is RGBA with A = 255 when seen; (0, 0, 0, 0) when not seen.
 */

/** Pixel index of a projected coordinate (rule 2). */
export function pixelIndex(coordinate: number): number {
  return Math.floor(coordinate + 0.5)
}

/** Area radius of a vertex at depth `w` (rule 3). */
export function areaRadius(focal: number, voxelEdge: number, w: number, maxAreaRadius: number): number {
  return Math.min(maxAreaRadius, Math.floor((focal * voxelEdge) / (2 * w)))
}

/** Integer mean rounded half up (rule 4). */
export function roundedMean(sum: number, n: number): number {
  return Math.floor((sum + Math.floor(n / 2)) / n)
}
