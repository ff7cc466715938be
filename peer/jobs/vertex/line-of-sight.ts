import { type Camera, focalLength, projectionMatrix } from './camera.ts'
import type { FrameAggregation } from './aggregator.ts'
import type { CameraRunner } from './camera-work.ts'
import { type TargetSpace, voxelEdge, voxelSize } from './target-space.ts'

/** Voting cameras per vertex as bit masks, `words` Uint32 per vertex. */
export interface VoterMasks {
  readonly words: number
  readonly masks: Uint32Array
  /** Vertices that have a mask worth reading (the others are interior or outside the hull). */
  readonly candidates: Uint32Array
}

/**
 * What the line-of-sight test of a camera reads and writes: plain arrays and numbers, so another
 * thread can take it as it is (its arrays over shared memory). The cameras are independent, like the
 * depth sweep's, and the decision runs the test before the sweep, before the vote and after the
 * peel: at 128³ each run is about 0.4 s in one thread.
 */
export interface SightInput {
  readonly kind: 'sight'
  readonly cameraCount: number
  /** Per camera: its 3×4 projection matrix, row-major. */
  readonly projections: readonly (readonly number[])[]
  /** Per camera: half a voxel's footprint in pixels at unit depth. */
  readonly halves: readonly number[]
  readonly widths: readonly number[]
  readonly heights: readonly number[]
  /** How far behind the nearest surface on its pixel a vertex may lie and still be seen. */
  readonly tolerance: number
  /** The hull's surface vertices' centres, x, y, z each. */
  readonly points: Float64Array
  /**
   * Written: per camera (camera-major), one byte per surface vertex, 1 where the vertex projects into
   * the image and lies within the tolerance of the nearest surface on its pixel.
   */
  readonly front: Uint8Array
  /** Who computes what, as in the depth sweep (`controlState`). */
  readonly control: Int32Array
}

/** Hull vertices with a 6-neighbour outside the hull (or on the grid's edge). */
export function hullSurface(space: TargetSpace, hull: Uint8Array): Uint32Array {
  const [nx, ny, nz] = space.resolution
  const out: number[] = []
  const sxy = nx * ny
  for (let z = 0, v = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, v++) {
        if (hull[v] !== 1) continue
        if (
          x === 0 ||
          x === nx - 1 ||
          y === 0 ||
          y === ny - 1 ||
          z === 0 ||
          z === nz - 1 ||
          hull[v - 1] === 0 ||
          hull[v + 1] === 0 ||
          hull[v - nx] === 0 ||
          hull[v + nx] === 0 ||
          hull[v - sxy] === 0 ||
          hull[v + sxy] === 0
        ) {
          out.push(v)
        }
      }
    }
  }
  return Uint32Array.from(out)
}

/**
 * Line of sight: the hull surface is splatted into each camera's depth buffer (each vertex covering
 * its projected footprint, rounded up so neighbouring splats leave no gaps); a vertex is visible in
 * a camera that sees it when its depth is within the tolerance of the nearest surface on its pixel.
 * The cameras run on `runner` (spread over threads with `SweepThreads`); the masks are the same
 * whoever computes them.
 */
export function visibleCameras(
  a: Pick<FrameAggregation, 'planes'>,
  space: TargetSpace,
  cameras: readonly Camera[],
  hull: Uint8Array,
  depthVoxels: number,
  runner: CameraRunner,
): VoterMasks {
  const surface = hullSurface(space, hull)
  const count = surface.length
  const cameraCount = cameras.length
  const words = Math.ceil(cameraCount / 32)
  const masks = new Uint32Array(hull.length * words)
  const edge = voxelEdge(space)
  const [nx, ny] = space.resolution
  const [sx, sy, sz] = voxelSize(space)
  const [x0, y0, z0] = space.box.min
  const points = new Float64Array(runner.allocate(count * 3 * 8))
  for (let i = 0; i < count; i++) {
    const v = surface[i]!
    const ix = v % nx
    const rest = (v - ix) / nx
    const iy = rest % ny
    const iz = (rest - iy) / ny
    points[i * 3] = x0 + (ix + 0.5) * sx
    points[i * 3 + 1] = y0 + (iy + 0.5) * sy
    points[i * 3 + 2] = z0 + (iz + 0.5) * sz
  }
  const input: SightInput = {
    kind: 'sight',
    cameraCount,
    projections: cameras.map((camera) => Array.from(projectionMatrix(camera))),
    halves: cameras.map((camera) => (focalLength(camera) * edge) / 2),
    widths: cameras.map((camera) => camera.width),
    heights: cameras.map((camera) => camera.height),
    tolerance: depthVoxels * edge,
    points,
    front: new Uint8Array(runner.allocate(cameraCount * count)),
    control: new Int32Array(runner.allocate(4 * (2 + cameraCount))),
  }
  runner.run(input)
  const { front } = input
  for (let slot = 0; slot < cameraCount; slot++) {
    const plane = a.planes[slot]!
    const word = slot >> 5
    const bit = 1 << (slot & 31)
    const base = slot * count
    for (let i = 0; i < count; i++) {
      const v = surface[i]!
      if (front[base + i] === 1 && plane[v * 4 + 3]! >= 2) masks[v * words + word]! |= bit
    }
  }
  return { words, masks, candidates: surface }
}

/** The line-of-sight test of one camera at a time, with its scratch buffers (one per thread). */
export function sightComputer(input: SightInput): (slot: number) => void {
  const { points, front, tolerance } = input
  const count = points.length / 3
  const px = new Int32Array(count)
  const py = new Int32Array(count)
  const depth = new Float64Array(count)
  let zbuf = new Float64Array(0)
  return (slot) => {
    const p = input.projections[slot]!
    const half = input.halves[slot]!
    const width = input.widths[slot]!
    const height = input.heights[slot]!
    if (zbuf.length !== width * height) zbuf = new Float64Array(width * height)
    zbuf.fill(Number.POSITIVE_INFINITY)
    for (let i = 0; i < count; i++) {
      const x = points[i * 3]!
      const y = points[i * 3 + 1]!
      const z = points[i * 3 + 2]!
      const w = p[8]! * x + p[9]! * y + p[10]! * z + p[11]!
      depth[i] = w
      if (w <= 0) {
        px[i] = -1
        continue
      }
      const u = Math.floor((p[0]! * x + p[1]! * y + p[2]! * z + p[3]!) / w + 0.5)
      const t = Math.floor((p[4]! * x + p[5]! * y + p[6]! * z + p[7]!) / w + 0.5)
      px[i] = u
      py[i] = t
      const rad = Math.ceil(half / w)
      for (let yy = Math.max(0, t - rad); yy <= Math.min(height - 1, t + rad); yy++) {
        for (let xx = Math.max(0, u - rad); xx <= Math.min(width - 1, u + rad); xx++) {
          const o = yy * width + xx
          if (w < zbuf[o]!) zbuf[o] = w
        }
      }
    }
    const base = slot * count
    for (let i = 0; i < count; i++) {
      const u = px[i]!
      const t = py[i]!
      const seen =
        u >= 0 && u < width && t >= 0 && t < height && depth[i]! <= zbuf[t * width + u]! + tolerance
      front[base + i] = seen ? 1 : 0
    }
  }
}
