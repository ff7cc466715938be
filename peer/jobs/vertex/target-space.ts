/**
 * The target space: the stage volume as an axis-aligned box cut into a grid of vertices.
 * Each vertex is the centre of a small box-shaped volume (a voxel) and has a stable id,
 * `id = ix + nx * (iy + ny * iz)`, so a range of ids is a run of x-rows and a block can be
 * described by its first id and its length alone.
 */

/** Axis-aligned box in the data set's coordinates. */
export interface BoundingBox {
  readonly min: readonly [number, number, number]
  readonly max: readonly [number, number, number]
}

/** The grid of vertices over a bounding box. The resolution is a setting: it follows the compute available. */
export interface TargetSpace {
  readonly box: BoundingBox
  /** Vertices along x, y and z. */
  readonly resolution: readonly [number, number, number]
}

/** Number of vertices in the grid. */
export function vertexCount(space: TargetSpace): number {
  const [nx, ny, nz] = space.resolution
  return nx * ny * nz
}

/** Edge lengths of one vertex's volume. */
export function voxelSize(space: TargetSpace): [number, number, number] {
  const { min, max } = space.box
  const [nx, ny, nz] = space.resolution
  return [(max[0] - min[0]) / nx, (max[1] - min[1]) / ny, (max[2] - min[2]) / nz]
}

/** Longest edge of one vertex's volume: the size used for its projected area. */
export function voxelEdge(space: TargetSpace): number {
  return Math.max(...voxelSize(space))
}

/** A cubic-index grid (N per axis) over a box. */
export function targetSpace(box: BoundingBox, n: number): TargetSpace {
  return { box, resolution: [n, n, n] }
}

/** Writes the centre of vertex `id` into `out` (no allocation in hot loops). */
export function vertexCentre(space: TargetSpace, id: number, out: Float64Array | number[]): void {
  const [nx, ny] = space.resolution
  const ix = id % nx
  const rest = (id - ix) / nx
  const iy = rest % ny
  const iz = (rest - iy) / ny
  const [sx, sy, sz] = voxelSize(space)
  out[0] = space.box.min[0] + (ix + 0.5) * sx
  out[1] = space.box.min[1] + (iy + 0.5) * sy
  out[2] = space.box.min[2] + (iz + 0.5) * sz
}

/** The grid indices (ix, iy, iz) of vertex `id`. */
export function vertexIndices(space: TargetSpace, id: number): [number, number, number] {
  const [nx, ny] = space.resolution
  const ix = id % nx
  const rest = (id - ix) / nx
  const iy = rest % ny
  return [ix, iy, (rest - iy) / ny]
}

/** The target space at grid level `level`: each axis's resolution divided by 2^level, rounded up. */
export function levelSpace(space: TargetSpace, level = 0): TargetSpace {
  if (level === 0) return space
  const f = 2 ** level
  const [nx, ny, nz] = space.resolution
  return { box: space.box, resolution: [Math.ceil(nx / f), Math.ceil(ny / f), Math.ceil(nz / f)] }
}
