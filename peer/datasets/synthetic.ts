import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodePng } from '../participant/png.ts'
import type { Camera } from '../jobs/vertex/camera.ts'
import type { BoundingBox, TargetSpace } from '../jobs/vertex/target-space.ts'
import { vertexCentre, voxelEdge } from '../jobs/vertex/target-space.ts'

/** A solid in the synthetic scene. Colours are RGB 0–255; `lowerColour` paints the half below `z = centre.z`. */
export type Solid =
  | { kind: 'sphere'; centre: [number, number, number]; radius: number; colour: RGB; lowerColour?: RGB }
  | {
      kind: 'box'
      centre: [number, number, number]
      half: [number, number, number]
      colour: RGB
      lowerColour?: RGB
    }
type RGB = [number, number, number]

/** A scene of coloured solids on a black background, seen by calibrated cameras: ground truth is known. */
export interface SyntheticScene {
  readonly solids: readonly Solid[]
  readonly box: BoundingBox
  readonly cameras: readonly Camera[]
}

/** Options of the default scene. */
export interface SyntheticSceneInit {
  /** Cameras, split over three rings (default 24). */
  cameras?: number
  width?: number
  height?: number
}

/**
 * The default scene: a two-colour sphere, a box, and two more spheres of distinct colours, well apart,
 * in the box [−1, 1]³, seen by cameras on three rings at distance 4: 35° above, 3° above and 30° below
 * the equator. The near-level ring is what carves the box's top and bottom faces: a ring at elevation e
 * leaves a phantom of height w·tan(e) over a flat face of half-width w in the visual hull.
 */
export function defaultScene(init: SyntheticSceneInit = {}): SyntheticScene {
  const count = init.cameras ?? 24
  const width = init.width ?? 400
  const height = init.height ?? 300
  const solids: Solid[] = [
    {
      kind: 'sphere',
      centre: [-0.5, -0.35, 0.05],
      radius: 0.38,
      colour: [230, 60, 50],
      lowerColour: [240, 240, 240],
    },
    { kind: 'box', centre: [0.45, 0.25, -0.2], half: [0.28, 0.3, 0.4], colour: [60, 200, 80] },
    { kind: 'sphere', centre: [-0.25, 0.6, 0.5], radius: 0.27, colour: [70, 110, 240] },
    { kind: 'sphere', centre: [0.35, -0.55, -0.45], radius: 0.22, colour: [240, 210, 60] },
  ]
  const cameras: Camera[] = []
  for (let i = 0; i < count; i++) {
    const ring = i % 3
    const azimuth = (2 * Math.PI * i) / count
    const elevation = ([35, 3, -30][ring]! * Math.PI) / 180
    cameras.push(
      lookAtCamera(i, `synth${String(i + 1).padStart(4, '0')}`, azimuth, elevation, 4, width, height),
    )
  }
  return { solids, box: { min: [-1, -1, -1], max: [1, 1, 1] }, cameras }
}

/** A camera at `distance` from the origin, looking at it, z up; focal length fits the scene box in view. */
function lookAtCamera(
  id: number,
  name: string,
  azimuth: number,
  elevation: number,
  distance: number,
  width: number,
  height: number,
): Camera {
  const c: RGB = [
    distance * Math.cos(elevation) * Math.cos(azimuth),
    distance * Math.cos(elevation) * Math.sin(azimuth),
    distance * Math.sin(elevation),
  ]
  const forward = normalise([-c[0], -c[1], -c[2]])
  const right = normalise(cross(forward, [0, 0, 1]))
  const down = cross(forward, right)
  // Rows of R are the camera axes x (right), y (down), z (forward); t = −R·C.
  const r = [...right, ...down, ...forward]
  const t = [-dot(right, c), -dot(down, c), -dot(forward, c)]
  const f = 0.9 * Math.min(width, height) * 1.2
  return { id, name, k: [f, 0, width / 2, 0, f, height / 2, 0, 0, 1], r, t, width, height }
}

/** Renders what `camera` sees: the nearest solid's colour per pixel (its centre ray), black elsewhere. */
export function renderView(scene: SyntheticScene, camera: Camera): Uint8Array {
  const { width, height, k, r, t } = camera
  const rgba = new Uint8Array(width * height * 4)
  const centre: RGB = [
    -(r[0]! * t[0]! + r[3]! * t[1]! + r[6]! * t[2]!),
    -(r[1]! * t[0]! + r[4]! * t[1]! + r[7]! * t[2]!),
    -(r[2]! * t[0]! + r[5]! * t[1]! + r[8]! * t[2]!),
  ]
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      // Camera-frame direction K⁻¹ [px py 1] (K has no skew), then to world: Rᵀ d.
      const dx = (px - k[2]!) / k[0]!
      const dy = (py - k[5]!) / k[4]!
      const dir = normalise([
        r[0]! * dx + r[3]! * dy + r[6]!,
        r[1]! * dx + r[4]! * dy + r[7]!,
        r[2]! * dx + r[5]! * dy + r[8]!,
      ])
      let nearest = Number.POSITIVE_INFINITY
      let colour: RGB | undefined
      for (const solid of scene.solids) {
        const hit = intersect(solid, centre, dir)
        if (hit === undefined || hit >= nearest) continue
        nearest = hit
        colour = surfaceColour(solid, centre[2] + dir[2] * hit)
      }
      if (colour === undefined) continue
      const o = (py * width + px) * 4
      rgba[o] = colour[0]
      rgba[o + 1] = colour[1]
      rgba[o + 2] = colour[2]
      rgba[o + 3] = 255
    }
  }
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255
  return rgba
}

function surfaceColour(solid: Solid, z: number): RGB {
  return solid.lowerColour !== undefined && z < solid.centre[2] ? solid.lowerColour : solid.colour
}

function intersect(solid: Solid, o: RGB, d: RGB): number | undefined {
  if (solid.kind === 'sphere') {
    const oc: RGB = [o[0] - solid.centre[0], o[1] - solid.centre[1], o[2] - solid.centre[2]]
    const b = dot(oc, d)
    const disc = b * b - (dot(oc, oc) - solid.radius * solid.radius)
    if (disc < 0) return undefined
    const hit = -b - Math.sqrt(disc)
    return hit > 0 ? hit : undefined
  }
  let near = Number.NEGATIVE_INFINITY
  let far = Number.POSITIVE_INFINITY
  for (let a = 0; a < 3; a++) {
    const lo = (solid.centre[a]! - solid.half[a]! - o[a]!) / d[a]!
    const hi = (solid.centre[a]! + solid.half[a]! - o[a]!) / d[a]!
    near = Math.max(near, Math.min(lo, hi))
    far = Math.min(far, Math.max(lo, hi))
  }
  return near <= far && near > 0 ? near : undefined
}

/** Signed distance from a point to a solid's surface (negative inside). */
function signedDistance(solid: Solid, p: RGB): number {
  if (solid.kind === 'sphere') {
    return Math.hypot(p[0] - solid.centre[0], p[1] - solid.centre[1], p[2] - solid.centre[2]) - solid.radius
  }
  const q = [0, 1, 2].map((a) => Math.abs(p[a]! - solid.centre[a]!) - solid.half[a]!) as RGB
  const outside = Math.hypot(Math.max(q[0], 0), Math.max(q[1], 0), Math.max(q[2], 0))
  return outside + Math.min(Math.max(q[0], q[1], q[2]), 0)
}

/** Ground truth of one vertex. */
export const Truth = { freeSpace: 0, surface: 1, interior: 2, band: 3 } as const

/**
 * Classifies every vertex: surface (inside a solid, with a 6-neighbour outside every solid: the
 * solid's outer shell of vertices, with the solid's colour there), interior (inside, all neighbours
 * inside), free space (outside every solid by more than one voxel edge) and the band between (outside
 * by at most one edge), which neither test counts: a grid cannot place a surface more finely.
 */
export function groundTruth(
  scene: SyntheticScene,
  space: TargetSpace,
): { truth: Uint8Array; colour: Uint8Array } {
  const [nx, ny, nz] = space.resolution
  const n = nx * ny * nz
  const edge = voxelEdge(space)
  const distance = new Float64Array(n)
  const owner = new Int32Array(n)
  const p = new Float64Array(3)
  for (let v = 0; v < n; v++) {
    vertexCentre(space, v, p)
    const point: RGB = [p[0]!, p[1]!, p[2]!]
    distance[v] = Number.POSITIVE_INFINITY
    scene.solids.forEach((solid, i) => {
      const d = signedDistance(solid, point)
      if (d < distance[v]!) {
        distance[v] = d
        owner[v] = i
      }
    })
  }
  const truth = new Uint8Array(n)
  const colour = new Uint8Array(n * 3)
  const outside = (x: number, y: number, z: number) =>
    x < 0 || y < 0 || z < 0 || x >= nx || y >= ny || z >= nz || distance[x + nx * (y + ny * z)]! > 0
  for (let z = 0, v = 0; z < nz; z++) {
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++, v++) {
        const d = distance[v]!
        if (d > edge) truth[v] = Truth.freeSpace
        else if (d > 0) truth[v] = Truth.band
        else if (
          outside(x - 1, y, z) ||
          outside(x + 1, y, z) ||
          outside(x, y - 1, z) ||
          outside(x, y + 1, z) ||
          outside(x, y, z - 1) ||
          outside(x, y, z + 1)
        ) {
          truth[v] = Truth.surface
          vertexCentre(space, v, p)
          colour.set(surfaceColour(scene.solids[owner[v]!]!, p[2]!), v * 3)
        } else truth[v] = Truth.interior
      }
    }
  }
  return { truth, colour }
}

/**
 * Renders every camera and writes the scene as a Middlebury-format data set (`synthetic_par.txt`,
 * PNGs, README.txt with the box), so the same loader, job and eval run on it.
 */
export async function writeSyntheticDataset(scene: SyntheticScene, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const lines = [String(scene.cameras.length)]
  for (const camera of scene.cameras) {
    await writeFile(
      join(dir, `${camera.name}.png`),
      encodePng(camera.width, camera.height, renderView(scene, camera)),
    )
    lines.push([`${camera.name}.png`, ...camera.k, ...camera.r, ...camera.t].join(' '))
  }
  await writeFile(join(dir, 'synthetic_par.txt'), `${lines.join('\n')}\n`)
  const { min, max } = scene.box
  await writeFile(
    join(dir, 'README.txt'),
    `Synthetic scene rendered by crowdmesh: coloured solids on black.\n\nThe bounding box is\n(${min.join(' ')})\n(${max.join(' ')})\n`,
  )
}

function dot(a: readonly number[], b: readonly number[]): number {
  return a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!
}
function cross(a: RGB, b: RGB): RGB {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}
function normalise(a: RGB): RGB {
  const l = Math.hypot(a[0], a[1], a[2])
  return [a[0] / l, a[1] / l, a[2] / l]
}
