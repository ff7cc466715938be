import { type Camera, focalLength, projectionMatrix } from '../jobs/vertex/camera.ts'
import { surfacePoint } from '../jobs/vertex/surface-refinement.ts'
import { type TargetSpace, voxelEdge } from '../jobs/vertex/target-space.ts'

/** A rendering of coloured vertices into one camera. */
export interface SplatRendering {
  readonly width: number
  readonly height: number
  /** RGBA; alpha 255 where a splat covers the pixel. */
  readonly rgba: Uint8Array
  /** Depth of the nearest splat per pixel (Infinity where none). */
  readonly depth: Float64Array
}

/** How splats are drawn. */
export interface SplatStyle {
  /**
   * Splat half-size: `footprint` is the vertex volume's projected footprint rounded to whole pixels
   * (at least 1), a number is a fixed radius in pixels (the reference method uses 1).
   */
  radius: 'footprint' | number
  /**
   * Blend the splats of the front surface: a pixel takes the Gaussian-weighted mean of every splat whose
   * depth lies within `blendDepthVoxels` voxel edges of the nearest one, as surface splatting does,
   * instead of the single nearest splat's colour. 0 keeps the hard z-buffer.
   */
  blendDepthVoxels: number
}

/** The style the eval uses: footprint splats blended over 1.5 voxel edges of depth. */
export const defaultSplatStyle: SplatStyle = { radius: 'footprint', blendDepthVoxels: 1.5 }

/**
 * Renders coloured vertices into a camera as z-buffered square splats: each vertex covers the pixels
 * within its radius of its projected pixel; the nearest vertex decides the pixel's depth and, unless
 * blending, its colour. A vertex is drawn at its surface point (`offset`, a model's) where given, at its
 * centre otherwise.
 */
export function renderSplats(
  space: TargetSpace,
  camera: Camera,
  ids: Uint32Array,
  rgb: Uint8Array,
  style: SplatStyle = defaultSplatStyle,
  offset?: Int8Array,
): SplatRendering {
  const { width, height } = camera
  const p = projectionMatrix(camera)
  const edge = voxelEdge(space)
  const half = (focalLength(camera) * edge) / 2
  const rgba = new Uint8Array(width * height * 4)
  const depth = new Float64Array(width * height).fill(Number.POSITIVE_INFINITY)
  const count = ids.length
  const fu = new Float64Array(count)
  const fv = new Float64Array(count)
  const fw = new Float64Array(count)
  const c = new Float64Array(3)
  for (let k = 0; k < count; k++) {
    surfacePoint(space, ids[k]!, offset, k, c)
    const x = c[0]!
    const y = c[1]!
    const z = c[2]!
    const w = p[8]! * x + p[9]! * y + p[10]! * z + p[11]!
    fw[k] = w
    fu[k] = (p[0]! * x + p[1]! * y + p[2]! * z + p[3]!) / w
    fv[k] = (p[4]! * x + p[5]! * y + p[6]! * z + p[7]!) / w
  }
  const radiusOf = (w: number) =>
    style.radius === 'footprint' ? Math.max(1, Math.round(half / w)) : style.radius
  const forEachPixel = (k: number, visit: (o: number, u: number, t: number) => void) => {
    const w = fw[k]!
    if (!(w > 0)) return
    const u = Math.floor(fu[k]! + 0.5)
    const t = Math.floor(fv[k]! + 0.5)
    const r = radiusOf(w)
    for (let yy = Math.max(0, t - r); yy <= Math.min(height - 1, t + r); yy++) {
      for (let xx = Math.max(0, u - r); xx <= Math.min(width - 1, u + r); xx++) visit(yy * width + xx, xx, yy)
    }
  }
  for (let k = 0; k < count; k++) {
    const w = fw[k]!
    forEachPixel(k, (o) => {
      if (w >= depth[o]!) return
      depth[o] = w
      rgba.set(rgb.subarray(k * 3, k * 3 + 3), o * 4)
      rgba[o * 4 + 3] = 255
    })
  }
  if (style.blendDepthVoxels > 0) blend(style.blendDepthVoxels * edge)
  return { width, height, rgba, depth }

  function blend(tolerance: number): void {
    const sum = new Float64Array(width * height * 3)
    const weight = new Float64Array(width * height)
    for (let k = 0; k < count; k++) {
      const w = fw[k]!
      const sigma = Math.max(0.5, half / w)
      const inv = 1 / (2 * sigma * sigma)
      forEachPixel(k, (o, u, t) => {
        if (w > depth[o]! + tolerance) return
        const du = u - fu[k]!
        const dv = t - fv[k]!
        const g = Math.exp(-(du * du + dv * dv) * inv)
        sum[o * 3]! += g * rgb[k * 3]!
        sum[o * 3 + 1]! += g * rgb[k * 3 + 1]!
        sum[o * 3 + 2]! += g * rgb[k * 3 + 2]!
        weight[o]! += g
      })
    }
    for (let o = 0; o < width * height; o++) {
      const g = weight[o]!
      if (g <= 0) continue
      rgba[o * 4] = Math.round(sum[o * 3]! / g)
      rgba[o * 4 + 1] = Math.round(sum[o * 3 + 1]! / g)
      rgba[o * 4 + 2] = Math.round(sum[o * 3 + 2]! / g)
    }
  }
}
