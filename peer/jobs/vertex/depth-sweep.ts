import { popcount32 } from '../bits.ts'
import { type Camera, cameraCentre } from './camera.ts'
import type { CameraRunner } from './camera-work.ts'
import type { FrameAggregation } from './aggregator.ts'
import type { VoterMasks } from './line-of-sight.ts'
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
  /**
   * The surface's error counts only the neighbours in which the surface vertex is the nearest hull
   * surface (space carving's visibility, Kutulakos and Seitz): a neighbour that sees another part of
   * the object in front of it disagrees for no fault of the surface. Without it the sweep carved into
   * occluded true surfaces (the synthetic scene: 229 of 5,014 surface vertices, against 61 with it).
   */
  visibleSurface: boolean
  /**
   * With `visibleSurface`, the fewest neighbours that must see the surface vertex for its error to
   * count; when fewer than `agreeing` do, the error is the mean over all of them. The hull's phantoms
   * that matter most (a roof over a court, the space in front of a colonnade) are often the nearest
   * surface in only 2 or 3 of a camera's neighbours: with 4 required they were never doubted.
   */
  surfaceViews: number
  /**
   * Cross-checked carving, as depth-map fusion trusts a depth that several views confirm: a depth
   * that agrees this much better than the surface (for one vertex, and for the patch,
   * `confirmedPatchRatio`) but not as much as `ratio` and `patchRatio` ask still carves the
   * vertices in front of it where the rays of at least `confirmingCameras` cameras carve them (and
   * no ray chose them as a depth). One camera's looser match is often chance on a textured
   * photograph; two cameras' rarely.
   */
  confirmedRatio: number
  confirmedPatchRatio: number
  confirmingCameras: number
}

/**
 * What a camera's sweep reads and writes: plain arrays and numbers, so another thread can take it as
 * it is (its arrays over shared memory).
 */
export interface SweepInput {
  readonly kind: 'sweep'
  readonly rule: DepthSweepRule
  readonly resolution: readonly [number, number, number]
  readonly origin: readonly [number, number, number]
  readonly voxel: readonly [number, number, number]
  /** Steps a ray takes at most, one `step` (the shortest voxel side) each. */
  readonly steps: number
  readonly step: number
  readonly cameraCount: number
  readonly centres: readonly (readonly [number, number, number])[]
  /** For each camera, the slots of its neighbouring cameras. */
  readonly neighbours: readonly (readonly number[])[]
  /** 1 for a vertex of the hull. */
  readonly hull: Uint8Array
  /**
   * The shell's index of a vertex (the hull and its 6-neighbours: all a ray and a patch read), −1
   * outside it; hull vertices come first.
   */
  readonly compact: Int32Array
  /** The cameras' RGBA of each shell vertex side by side (shell-major). */
  readonly packed: Uint8Array
  /** Visibility: voting cameras per vertex as bit masks, `words` per vertex, for `candidates`. */
  readonly words: number
  readonly masks: Uint32Array
  readonly candidates: Uint32Array
  /** Written by the sweep: 1 in front of a better depth, and 1 at a depth some ray chose. */
  readonly free: Uint8Array
  readonly kept: Uint8Array
  /**
   * Written by the sweep, for the looser agreement (`confirmedRatio`): per vertex, the cameras whose
   * rays carve it as bit masks, `words` per vertex; and 1 at a depth such a ray chose.
   */
  readonly confirmed: Uint32Array
  readonly confirmedKept: Uint8Array
  /** Who computes what (`controlState` in camera-work.ts). */
  readonly control: Int32Array
}

/**
 * One pass of the depth sweep: plane-sweep stereo on the grid. For each camera and each hull surface
 * vertex it sees, the camera's colour there (its pixel) is compared with what the neighbouring
 * cameras see at each grid vertex further along the same ray, inside the hull. Where the surface
 * itself is clearly inconsistent and a deeper vertex agrees far better, the vertices in front of
 * that depth are voted free space: the hull has phantoms there (a ring of cameras at one elevation
 * cannot carve the space between columns, under a lintel, in a court). Carving stops at a depth that
 * agrees, never at the surface's own disagreement, so a textured true surface cannot run away as the
 * seed's standard-deviation rule does. A looser agreement carves only where two cameras' rays
 * confirm it (`confirmingCameras`). Returns the vertices carved (already taken out of `hull`).
 */
export function sweepCarve(
  a: FrameAggregation,
  space: TargetSpace,
  cameras: readonly Camera[],
  hull: Uint8Array,
  visibility: VoterMasks,
  rule: DepthSweepRule,
  runner: CameraRunner,
): Uint32Array {
  const input = prepareSweep(a, space, cameras, hull, visibility, rule, runner)
  runner.run(input)
  const { free, kept, confirmed, confirmedKept, words } = input
  const carved: number[] = []
  for (let v = 0; v < hull.length; v++) {
    if (hull[v] !== 1 || kept[v] === 1) continue
    let cameras = 0
    if (free[v] === 0 && confirmedKept[v] === 0)
      for (let w = 0; w < words; w++) cameras += popcount32(confirmed[v * words + w]!)
    if (free[v] === 1 || cameras >= rule.confirmingCameras) {
      hull[v] = 0
      carved.push(v)
    }
  }
  return Uint32Array.from(carved)
}

/** The arrays of a sweep, in the runner's memory. */
function prepareSweep(
  a: FrameAggregation,
  space: TargetSpace,
  cameras: readonly Camera[],
  hull: Uint8Array,
  visibility: VoterMasks,
  rule: DepthSweepRule,
  runner: CameraRunner,
): SweepInput {
  const n = hull.length
  const [nx, ny] = space.resolution
  const voxel = voxelSize(space)
  const step = Math.min(...voxel)
  const centres = cameras.map(cameraCentre)
  const cameraCount = cameras.length
  const shared = <A>(make: (buffer: ArrayBufferLike) => A, bytes: number): A => make(runner.allocate(bytes))
  // The shell: hull vertices first, then their 6-neighbours outside the hull (a patch reads those).
  const compact = shared((b) => new Int32Array(b), 4 * n).fill(-1)
  let count = 0
  for (let v = 0; v < n; v++) if (hull[v] === 1) compact[v] = count++
  // The neighbours a patch reads are index offsets (a row's last vertex neighbours the next row's
  // first), so the shell holds exactly those.
  const offsets = patchOffsets(nx, ny)
  for (let v = 0; v < n; v++) {
    if (hull[v] !== 1) continue
    for (const offset of offsets) {
      const u = v + offset
      if (u >= 0 && u < n && compact[u] === -1) compact[u] = count++
    }
  }
  const shell = new Uint32Array(count)
  for (let v = 0; v < n; v++) if (compact[v]! >= 0) shell[compact[v]!] = v
  // The cameras' colours of each shell vertex side by side (vertex-major): a step along a ray reads
  // one cache line instead of one line in each of the neighbours' planes (the sweep is memory-bound).
  const packed = shared((b) => new Uint8Array(b), count * cameraCount * 4)
  a.planes.forEach((plane, slot) => {
    for (let c = 0; c < count; c++) {
      const o = (c * cameraCount + slot) * 4
      const p = shell[c]! * 4
      packed[o] = plane[p]!
      packed[o + 1] = plane[p + 1]!
      packed[o + 2] = plane[p + 2]!
      packed[o + 3] = plane[p + 3]!
    }
  })
  const copy = <A extends Uint8Array | Uint32Array>(from: A, make: (b: ArrayBufferLike) => A): A => {
    const to = make(runner.allocate(from.byteLength))
    to.set(from)
    return to
  }
  return {
    kind: 'sweep',
    rule,
    resolution: space.resolution,
    origin: space.box.min,
    voxel,
    steps: Math.ceil((rule.maxDepthVoxels * voxelEdge(space)) / step),
    step,
    cameraCount,
    centres,
    neighbours: neighbourSlots(space, centres, rule.neighbours),
    hull: copy(hull, (b) => new Uint8Array(b)),
    compact,
    packed,
    words: visibility.words,
    masks: copy(visibility.masks, (b) => new Uint32Array(b)),
    candidates: copy(visibility.candidates, (b) => new Uint32Array(b)),
    free: shared((b) => new Uint8Array(b), n),
    kept: shared((b) => new Uint8Array(b), n),
    confirmed: shared((b) => new Uint32Array(b), 4 * n * visibility.words),
    confirmedKept: shared((b) => new Uint8Array(b), n),
    control: shared((b) => new Int32Array(b), 4 * (2 + cameraCount)),
  }
}

/** The rays of one camera at a time, with its scratch buffers (one per thread). */
export function sweepComputer(input: SweepInput): (slot: number) => void {
  const path = new Int32Array(input.steps + 1)
  const errors = new Float64Array(input.rule.neighbours)
  return (slot) => sweepCamera(input, slot, path, errors)
}

/** The rays of one camera (see `sweepCarve`): sets `free` in front of a better depth, `kept` there. */
function sweepCamera(input: SweepInput, slot: number, path: Int32Array, errors: Float64Array): void {
  const { rule, hull, compact, packed, cameraCount, words, masks, candidates, free, kept, steps } = input
  const { confirmed, confirmedKept } = input
  // The looser agreement is searched for whenever it is looser; the strict one decides first.
  const ratio = Math.max(rule.ratio, rule.confirmedRatio)
  const patchRatio = Math.max(rule.patchRatio, rule.confirmedPatchRatio)
  const [nx, ny, nz] = input.resolution
  const [sx, sy, sz] = input.voxel
  const [x0, y0, z0] = input.origin
  const { step } = input
  const ix0 = 1 / sx
  const iy0 = 1 / sy
  const iz0 = 1 / sz
  const [cx, cy, cz] = input.centres[slot]!
  const around = Int32Array.from(input.neighbours[slot]!)
  const word = slot >> 5
  const bit = 1 << (slot & 31)
  const n = hull.length
  // The error at one hull vertex: how far the neighbours that see it are from the reference colour
  // (with `visible`, only those in which it is the nearest surface: the others see what hides it).
  const errorAt = (v: number, r: number, g: number, b: number, visible = false): number => {
    let k = 0
    const base = compact[v]! * cameraCount
    for (let i = 0; i < around.length; i++) {
      const other = around[i]!
      if (visible && (masks[v * words + (other >> 5)]! & (1 << (other & 31))) === 0) continue
      const o = (base + other) * 4
      if (packed[o + 3]! < 2) continue
      const dr = packed[o]! - r
      const dg = packed[o + 1]! - g
      const db = packed[o + 2]! - b
      errors[k++] = dr * dr + dg * dg + db * db
    }
    const least = visible ? rule.surfaceViews : Math.min(rule.agreeing, around.length)
    return meanOfBest(errors, k, rule.agreeing, least) / 3
  }
  const offsets = patchOffsets(nx, ny)
  // The error of a patch (a vertex and its 6-neighbours, in the hull or not): the camera's own
  // colours against its neighbours'.
  const patchErrorAt = (v: number): number => {
    let k = 0
    for (let i = 0; i < around.length; i++) {
      const other = around[i]!
      let sum = 0
      let m = 0
      for (const offset of offsets) {
        const u = v + offset
        if (u < 0 || u >= n) continue
        const c = compact[u]!
        if (c < 0) continue
        const po = (c * cameraCount + other) * 4
        const qo = (c * cameraCount + slot) * 4
        if (packed[po + 3]! < 2 || packed[qo + 3]! < 2) continue
        const dr = packed[po]! - packed[qo]!
        const dg = packed[po + 1]! - packed[qo + 1]!
        const db = packed[po + 2]! - packed[qo + 2]!
        sum += dr * dr + dg * dg + db * db
        m++
      }
      if (m >= 4) errors[k++] = sum / m
    }
    return meanOfBest(errors, k, rule.agreeing, Math.min(rule.agreeing, around.length)) / 3
  }
  for (const v of candidates) {
    if ((masks[v * words + word]! & bit) === 0) continue
    const own = (compact[v]! * cameraCount + slot) * 4
    const r = packed[own]!
    const g = packed[own + 1]!
    const b = packed[own + 2]!
    const surfaceError = errorAt(v, r, g, b, rule.visibleSurface)
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
      const e = errorAt(u, r, g, b)
      if (e < bestError) {
        bestError = e
        bestAt = length
      }
      length++
    }
    if (bestAt === 0 || bestError > ratio * surfaceError) continue
    const deep = patchErrorAt(path[bestAt]!)
    const shallow = patchErrorAt(v)
    if (!(deep <= patchRatio * shallow)) continue
    if (bestError <= rule.ratio * surfaceError && deep <= rule.patchRatio * shallow) {
      kept[path[bestAt]!] = 1
      // Threads may set the same byte at once: every write is a 1, so none is lost that matters.
      for (let i = 0; i < bestAt; i++) free[path[i]!] = 1
    } else {
      confirmedKept[path[bestAt]!] = 1
      // Other threads set other cameras' bits in the same words: an atomic or loses none.
      for (let i = 0; i < bestAt; i++) Atomics.or(confirmed, path[i]! * words + word, bit)
    }
  }
}

/** A patch: a vertex and its 6-neighbours, as index offsets. */
const patchOffsets = (nx: number, ny: number): number[] => [0, -1, 1, -nx, nx, -nx * ny, nx * ny]

/**
 * The mean of the `agreeing` smallest of `errors[0..k)` (reordered in place; all k when there are
 * fewer), or NaN when fewer than `least` cameras saw the vertex.
 */
function meanOfBest(errors: Float64Array, k: number, agreeing: number, least: number): number {
  const n = Math.min(agreeing, k)
  if (k < least) return Number.NaN
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
