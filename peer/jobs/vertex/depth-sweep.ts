import { type Camera, cameraCentre } from './camera.ts'
import type { FrameAggregation } from './aggregator.ts'
import { type TargetSpace, voxelEdge, voxelSize } from './target-space.ts'

/** How the depth sweep carves the visual hull's phantoms (see `sweepCarve`). */
export interface DepthSweepRule {
  /** Neighbouring cameras (by viewing direction) each camera's depths are checked against. */
  neighbours: number
  /** Of those that see a candidate, the best this many errors count (the others may be occluded). */
  agreeing: number
  /** How deep behind the hull surface a ray is searched, in voxel edges. */
  maxDepthVoxels: number
  /** A deeper candidate must have at most this share of the surface's error. */
  ratio: number
  /** The hull surface must disagree at least this much (mean squared RGB difference) to be doubted. */
  minError: number
  /**
   * The deeper candidate's patch (it and its 6-neighbours) must have at most this share of the surface
   * patch's error: one vertex's colour matches somewhere along 40 voxels by chance, a patch seldom.
   */
  patchRatio: number
}

/** Per-vertex voting cameras as bit masks (what `visibleCameras` in outcome.ts returns). */
export interface SweepVisibility {
  readonly words: number
  readonly masks: Uint32Array
  readonly candidates: Uint32Array
}

/**
 * One pass of the depth sweep: plane-sweep stereo on the grid. For each camera and each hull surface
 * vertex it sees, the camera's colour there (its pixel) is compared with what the neighbouring
 * cameras see at each grid vertex further along the same ray, inside the hull. Where the surface
 * itself is clearly inconsistent and a deeper vertex agrees far better, the vertices in front of
 * that depth are voted free space: the hull has phantoms there (a ring of cameras at one elevation
 * cannot carve the space between columns, under a lintel, in a court). Carving stops at a depth that
 * agrees, never at the surface's own disagreement, so a textured true surface cannot run away as the
 * seed's standard-deviation rule does. Returns the vertices carved (already taken out of `hull`).
 */
export function sweepCarve(
  a: FrameAggregation,
  space: TargetSpace,
  cameras: readonly Camera[],
  hull: Uint8Array,
  visibility: SweepVisibility,
  rule: DepthSweepRule,
): Uint32Array {
  const { words, masks, candidates } = visibility
  const [nx, ny, nz] = space.resolution
  const [sx, sy, sz] = voxelSize(space)
  const [x0, y0, z0] = space.box.min
  const edge = voxelEdge(space)
  const step = Math.min(sx, sy, sz)
  const ix0 = 1 / sx
  const iy0 = 1 / sy
  const iz0 = 1 / sz
  const steps = Math.ceil((rule.maxDepthVoxels * edge) / step)
  const centres = cameras.map(cameraCentre)
  const neighbours = neighbourSlots(space, centres, rule.neighbours)
  const free = new Uint8Array(hull.length)
  // Surface evidence: a vertex some camera found as its best depth is never carved by another's ray.
  const kept = new Uint8Array(hull.length)
  const path = new Int32Array(steps + 1)
  const errors = new Float64Array(rule.neighbours)
  // The cameras' colours of each hull vertex side by side (vertex-major): a step along a ray reads one
  // cache line instead of one line in each of the neighbours' planes, which made the sweep memory-bound.
  const cameraCount = cameras.length
  const compact = new Int32Array(hull.length).fill(-1)
  let hullCount = 0
  for (let v = 0; v < hull.length; v++) if (hull[v] === 1) compact[v] = hullCount++
  const inHull = new Uint32Array(hullCount)
  for (let v = 0; v < hull.length; v++) if (hull[v] === 1) inHull[compact[v]!] = v
  const packed = new Uint8Array(hullCount * cameraCount * 4)
  a.planes.forEach((plane, slot) => {
    for (let c = 0; c < hullCount; c++) {
      const o = (c * cameraCount + slot) * 4
      const p = inHull[c]! * 4
      packed[o] = plane[p]!
      packed[o + 1] = plane[p + 1]!
      packed[o + 2] = plane[p + 2]!
      packed[o + 3] = plane[p + 3]!
    }
  })
  // The error at one hull vertex: how far the neighbours that see it are from the reference colour.
  const errorAt = (v: number, around: Int32Array, r: number, g: number, b: number): number => {
    let k = 0
    const base = compact[v]! * cameraCount
    for (let i = 0; i < around.length; i++) {
      const o = (base + around[i]!) * 4
      if (packed[o + 3]! < 2) continue
      const dr = packed[o]! - r
      const dg = packed[o + 1]! - g
      const db = packed[o + 2]! - b
      errors[k++] = dr * dr + dg * dg + db * db
    }
    return meanOfBest(errors, k, rule.agreeing, around.length) / 3
  }
  const offsets = [0, -1, 1, -nx, nx, -nx * ny, nx * ny]
  // The error of a patch (a vertex and its 6-neighbours, in the hull or not): the camera's own
  // colours against its neighbours'. Hull vertices are read packed, the others from the planes.
  const patchErrorAt = (v: number, slot: number, around: Int32Array): number => {
    const own = a.planes[slot]!
    let k = 0
    for (let i = 0; i < around.length; i++) {
      const other = around[i]!
      const plane = a.planes[other]!
      let sum = 0
      let n = 0
      for (const step of offsets) {
        const u = v + step
        if (u < 0 || u >= hull.length) continue
        const c = compact[u]!
        let p: Uint8Array
        let q: Uint8Array
        let po: number
        let qo: number
        if (c >= 0) {
          p = packed
          q = packed
          po = (c * cameraCount + other) * 4
          qo = (c * cameraCount + slot) * 4
        } else {
          p = plane
          q = own
          po = u * 4
          qo = po
        }
        if (p[po + 3]! < 2 || q[qo + 3]! < 2) continue
        const dr = p[po]! - q[qo]!
        const dg = p[po + 1]! - q[qo + 1]!
        const db = p[po + 2]! - q[qo + 2]!
        sum += dr * dr + dg * dg + db * db
        n++
      }
      if (n >= 4) errors[k++] = sum / n
    }
    return meanOfBest(errors, k, rule.agreeing, around.length) / 3
  }
  cameras.forEach((_, slot) => {
    const [cx, cy, cz] = centres[slot]!
    const plane = a.planes[slot]!
    const around = Int32Array.from(neighbours[slot]!)
    const word = slot >> 5
    const bit = 1 << (slot & 31)
    for (const v of candidates) {
      if ((masks[v * words + word]! & bit) === 0) continue
      const r = plane[v * 4]!
      const g = plane[v * 4 + 1]!
      const b = plane[v * 4 + 2]!
      const surfaceError = errorAt(v, around, r, g, b)
      if (!(surfaceError >= rule.minError)) continue
      // March from the surface vertex away from the camera, through the hull.
      const ix = v % nx
      const iy = ((v - ix) / nx) % ny
      const iz = (v - ix - iy * nx) / (nx * ny)
      const px = x0 + (ix + 0.5) * sx
      const py = y0 + (iy + 0.5) * sy
      const pz = z0 + (iz + 0.5) * sz
      let dx = px - cx
      let dy = py - cy
      let dz = pz - cz
      const norm = Math.hypot(dx, dy, dz)
      dx = (dx / norm) * step
      dy = (dy / norm) * step
      dz = (dz / norm) * step
      let bestError = surfaceError
      let bestAt = 0
      let length = 0
      let last = v
      path[length++] = v
      for (let k = 1; k <= steps; k++) {
        const qx = Math.floor((px + k * dx - x0) * ix0)
        const qy = Math.floor((py + k * dy - y0) * iy0)
        const qz = Math.floor((pz + k * dz - z0) * iz0)
        if (qx < 0 || qy < 0 || qz < 0 || qx >= nx || qy >= ny || qz >= nz) break
        const u = qx + nx * (qy + ny * qz)
        if (u === last) continue
        if (hull[u] !== 1) break
        last = u
        path[length] = u
        const e = errorAt(u, around, r, g, b)
        if (e < bestError) {
          bestError = e
          bestAt = length
        }
        length++
      }
      if (bestAt === 0 || bestError > rule.ratio * surfaceError) continue
      const deep = patchErrorAt(path[bestAt]!, slot, around)
      const shallow = patchErrorAt(v, slot, around)
      if (!(deep <= rule.patchRatio * shallow)) continue
      kept[path[bestAt]!] = 1
      for (let i = 0; i < bestAt; i++) free[path[i]!] = 1
    }
  })
  const carved: number[] = []
  for (let v = 0; v < hull.length; v++)
    if (free[v] === 1 && kept[v] === 0 && hull[v] === 1) {
      hull[v] = 0
      carved.push(v)
    }
  return Uint32Array.from(carved)
}

/**
 * The mean of the `agreeing` smallest of `errors[0..k)` (reordered in place), or NaN when
 * fewer than that many of the `neighbours` cameras saw the vertex.
 */
function meanOfBest(errors: Float64Array, k: number, agreeing: number, neighbours: number): number {
  const n = Math.min(agreeing, k)
  if (k < Math.min(agreeing, neighbours)) return Number.NaN
  // The n smallest to the front, each in turn (n and k are a handful: cheaper than sorting all k).
  let sum = 0
  for (let i = 0; i < n; i++) {
    let least = i
    for (let j = i + 1; j < k; j++) if (errors[j]! < errors[least]!) least = j
    const e = errors[least]!
    errors[least] = errors[i]!
    errors[i] = e
    sum += e
  }
  return sum / n
}

/** For each camera, the `count` others whose viewing directions (from the grid's centre) are closest. */
function neighbourSlots(
  space: TargetSpace,
  centres: readonly [number, number, number][],
  count: number,
): number[][] {
  const { min, max } = space.box
  const mid = [0, 1, 2].map((i) => (min[i]! + max[i]!) / 2)
  const dirs = centres.map((c) => {
    const d = c.map((x, i) => x - mid[i]!)
    const n = Math.hypot(d[0]!, d[1]!, d[2]!)
    return d.map((x) => x / n)
  })
  return dirs.map((d, slot) =>
    dirs
      .map((e, other) => ({ other, cos: d[0]! * e[0]! + d[1]! * e[1]! + d[2]! * e[2]! }))
      .filter((x) => x.other !== slot)
      .sort((p, q) => q.cos - p.cos)
      .slice(0, count)
      .map((x) => x.other),
  )
}
