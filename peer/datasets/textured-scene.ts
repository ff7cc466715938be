import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { encodePng } from '../participant/png.ts'
import { type Camera, cameraCentre, projectionMatrix } from '../jobs/vertex/camera.ts'
import type { BoundingBox } from '../jobs/vertex/target-space.ts'
import { archesShape, potsShape } from './textured-variants.ts'
import {
  add,
  blocked,
  type Bounds,
  cross,
  dot,
  firstHit,
  insideShape,
  normalise,
  scale,
  type Shape,
  sub,
  type Texture,
  type Vec3,
} from './ray-geometry.ts'

// A photo-like synthetic multi-view set: textured solids with concavities, lit by fixed world lights,
// ray cast with supersampling and sensor noise, written in the Middlebury format. Unlike
// `synthetic.ts` (flat colours), its images look like the real temple set, so the voxel colouring
// meets texture, shading, soft silhouettes and noise while its geometry stays known exactly.
// The solids and their ray casting live in `ray-geometry.ts`, the materials in
// `procedural-textures.ts`, the two scenes in `textured-variants.ts`; this module lights, renders and writes.

export type { Leaf, Shape, Texture } from './ray-geometry.ts'

/** The scenes this module builds. */
export type TexturedVariant = 'arches' | 'pots'

/** A textured scene and its ring of cameras: ground truth is the shape. */
export interface TexturedScene {
  readonly name: string
  readonly variant: TexturedVariant
  readonly shape: Shape
  /** Encloses the object with a few per cent of margin (the README box). */
  readonly box: BoundingBox
  readonly cameras: readonly Camera[]
  readonly seed: number
  /** Samples per pixel along each axis (2: 2×2). */
  readonly supersample: number
  /** Standard deviation of the sensor noise in 8-bit levels. */
  readonly noise: number
}

/** Options of `texturedScene`. */
export interface TexturedSceneInit {
  /** Data set name, the prefix of its files (default `archesRing` or `potsRing`). */
  name?: string
  /** Cameras on the ring (default 16). */
  views?: number
  width?: number
  height?: number
  /** Elevation of the ring above the object centre, in degrees (default 28). */
  elevationDeg?: number
  /** Seeds the textures and the sensor noise (default 1). */
  seed?: number
  variant?: TexturedVariant
  /** Samples per pixel along each axis (default 2). */
  supersample?: number
  /** Sensor noise σ in 8-bit levels (default 2). */
  noise?: number
}

/**
 * Builds a variant: 'arches', a small open temple (stepped plinth, two colonnades with lintels, end
 * walls pierced by round arches, an altar in the court) or 'pots', a granite plate carrying a two-handled
 * amphora, a glazed bowl and a wooden block with a slot. Cameras sit evenly on one ring, all looking at
 * the box centre, with a focal length that makes the object span half the image height in the view
 * where it looks tallest.
 */
export function texturedScene(init: TexturedSceneInit = {}): TexturedScene {
  const variant = init.variant ?? 'arches'
  const seed = init.seed ?? 1
  const shape = variant === 'arches' ? archesShape(seed) : potsShape(seed)
  const box = marginBox(shape.bounds, 0.03)
  const cameras = ringCameras(shape, box, {
    views: init.views ?? 16,
    width: init.width ?? 640,
    height: init.height ?? 480,
    elevation: ((init.elevationDeg ?? 28) * Math.PI) / 180,
    prefix: init.name ?? `${variant}Ring`,
  })
  return {
    name: init.name ?? `${variant}Ring`,
    variant,
    shape,
    box,
    cameras,
    seed,
    supersample: init.supersample ?? 2,
    noise: init.noise ?? 2,
  }
}

function marginBox(bounds: Bounds, share: number): BoundingBox {
  const size = sub(bounds.max, bounds.min)
  if (size.some((s) => !Number.isFinite(s))) throw new RangeError('the shape is unbounded')
  const pad = (a: number) => Math.round(share * size[a]! * 1e4) / 1e4
  const round = (v: number) => Math.round(v * 1e4) / 1e4
  return {
    min: [0, 1, 2].map((a) => round(bounds.min[a]! - pad(a))) as Vec3,
    max: [0, 1, 2].map((a) => round(bounds.max[a]! + pad(a))) as Vec3,
  }
}

/** The first surface the ray meets at t > `near`, with its point and outward normal. */
export function traceTexturedRay(
  scene: TexturedScene,
  origin: Vec3,
  direction: Vec3,
  near = 1e-6,
): { t: number; point: Vec3; normal: Vec3; texture: Texture } | undefined {
  return firstHit(scene.shape, origin, direction, near)
}

/** Ground truth: whether a point lies inside the object. */
export function texturedInside(scene: TexturedScene, x: number, y: number, z: number): boolean {
  return insideShape(scene.shape, [x, y, z])
}

// ---------------------------------------------------------------------------------------------------
// Lighting and rendering

/**
 * Fixed world lights, so a surface point has one radiance whatever the camera (the Lambertian
 * assumption of voxel colouring): a key light high on one side that casts shadows, a weaker fill from
 * the other side without shadows, and sky light that brightens faces looking up.
 */
const keyLight = { direction: normalise([-0.45, -0.75, 0.9]), intensity: 0.95 }
const fillLight = { direction: normalise([0.7, 0.45, 0.35]), intensity: 0.32 }
function skyLight(n: Vec3): number {
  return 0.22 + 0.08 * n[2]
}

/** Linear radiance (0–1 per channel) leaving a surface point towards any camera. */
function radiance(scene: TexturedScene, point: Vec3, normal: Vec3, texture: Texture): Vec3 {
  let irradiance = skyLight(normal) + fillLight.intensity * Math.max(0, dot(normal, fillLight.direction))
  const facing = dot(normal, keyLight.direction)
  // The shadow ray starts a hair off the surface so it does not hit the surface it leaves.
  if (facing > 0 && !blocked(scene.shape, add(point, scale(normal, 1e-4)), keyLight.direction, 0)) {
    irradiance += keyLight.intensity * facing
  }
  const c = texture(point, normal)
  return [toLinear(c[0]) * irradiance, toLinear(c[1]) * irradiance, toLinear(c[2]) * irradiance]
}

function toLinear(srgb: number): number {
  return Math.pow(Math.min(255, Math.max(0, srgb)) / 255, 2.2)
}
function toSrgb(linear: number): number {
  if (linear <= 0) return 0 // most of the image: skip the power
  return 255 * Math.pow(Math.min(1, Math.max(0, linear)), 1 / 2.2)
}

/**
 * Renders what `camera` sees as RGBA: per pixel the mean linear radiance of `supersample`² rays
 * spread over the pixel (pixel (i, j) covers [i − ½, i + ½) × [j − ½, j + ½), the convention of
 * `projectionMatrix` and the samplers), black where a ray misses, then gamma-encoded and jittered by
 * seeded Gaussian sensor noise.
 */
export function renderTexturedView(scene: TexturedScene, camera: Camera): Uint8Array {
  const { width, height } = camera
  const rgba = new Uint8Array(width * height * 4)
  const gauss = gaussian(scene.seed * 7919 + camera.id + 1)
  const rect = footprint(scene.shape.bounds, camera)
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      // Outside the projected bounds every ray misses: only the sensor noise is left.
      const inside = px >= rect.x0 && px <= rect.x1 && py >= rect.y0 && py <= rect.y1
      const linear = inside ? pixelRadiance(scene, camera, px, py) : ([0, 0, 0] as Vec3)
      const o = (py * width + px) * 4
      for (let c = 0; c < 3; c++) {
        const value = toSrgb(linear[c]!) + scene.noise * gauss()
        rgba[o + c] = Math.min(255, Math.max(0, Math.round(value)))
      }
      rgba[o + 3] = 255
    }
  }
  return rgba
}

/** Mean linear radiance of `supersample`² rays spread evenly over pixel (px, py). */
function pixelRadiance(scene: TexturedScene, camera: Camera, px: number, py: number): Vec3 {
  const { k, r } = camera
  const n = scene.supersample
  const centre = cameraCentre(camera)
  const sum: Vec3 = [0, 0, 0]
  for (let sy = 0; sy < n; sy++) {
    for (let sx = 0; sx < n; sx++) {
      // Camera-frame direction K⁻¹ [u v 1] (K has no skew), then to world: Rᵀ d.
      const dx = (px + (sx + 0.5) / n - 0.5 - k[2]!) / k[0]!
      const dy = (py + (sy + 0.5) / n - 0.5 - k[5]!) / k[4]!
      const dir: Vec3 = [
        r[0]! * dx + r[3]! * dy + r[6]!,
        r[1]! * dx + r[4]! * dy + r[7]!,
        r[2]! * dx + r[5]! * dy + r[8]!,
      ]
      const hit = traceTexturedRay(scene, centre, dir)
      if (hit === undefined) continue
      const value = radiance(scene, hit.point, hit.normal, hit.texture)
      sum[0] += value[0]
      sum[1] += value[1]
      sum[2] += value[2]
    }
  }
  return scale(sum, 1 / (n * n))
}

/** The pixel rectangle (with a pixel to spare) that the bounds' corners project into. */
function footprint(bounds: Bounds, camera: Camera): { x0: number; x1: number; y0: number; y1: number } {
  const p = projectionMatrix(camera)
  let x0 = Infinity
  let x1 = -Infinity
  let y0 = Infinity
  let y1 = -Infinity
  for (let corner = 0; corner < 8; corner++) {
    const [x, y, z] = [0, 1, 2].map((a) => ((corner >> a) & 1 ? bounds.max[a]! : bounds.min[a]!)) as Vec3
    const w = p[8]! * x + p[9]! * y + p[10]! * z + p[11]!
    // A corner behind the camera: no rectangle holds the projection, so render everything.
    if (!(w > 0)) return { x0: -Infinity, x1: Infinity, y0: -Infinity, y1: Infinity }
    const u = (p[0]! * x + p[1]! * y + p[2]! * z + p[3]!) / w
    const v = (p[4]! * x + p[5]! * y + p[6]! * z + p[7]!) / w
    x0 = Math.min(x0, u - 1)
    x1 = Math.max(x1, u + 1)
    y0 = Math.min(y0, v - 1)
    y1 = Math.max(y1, v + 1)
  }
  return { x0, x1, y0, y1 }
}

/** A seeded standard normal generator (mulberry32, Box–Muller using both values of each pair). */
function gaussian(seed: number): () => number {
  let state = seed >>> 0
  let spare: number | undefined
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = Math.imul(state ^ (state >>> 15), 1 | state)
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x)
    return (((x ^ (x >>> 14)) >>> 0) + 0.5) / 4294967296
  }
  return () => {
    if (spare !== undefined) {
      const value = spare
      spare = undefined
      return value
    }
    const radius = Math.sqrt(-2 * Math.log(uniform()))
    const angle = 2 * Math.PI * uniform()
    spare = radius * Math.sin(angle)
    return radius * Math.cos(angle)
  }
}

// ---------------------------------------------------------------------------------------------------
// Cameras and the data set files

interface RingOptions {
  views: number
  width: number
  height: number
  elevation: number
  prefix: string
}

/**
 * `views` cameras evenly in azimuth at one elevation, at 3.5 box half-diagonals from the box centre,
 * looking at it with z up. One focal length for all, chosen so the object (points of a 24³ grid inside
 * it) spans half the image height in the view where it looks tallest, and at most 85 % of the width.
 */
function ringCameras(shape: Shape, box: BoundingBox, options: RingOptions): Camera[] {
  const target = [0, 1, 2].map((a) => (box.min[a]! + box.max[a]!) / 2) as Vec3
  const radius = Math.hypot(...[0, 1, 2].map((a) => (box.max[a]! - box.min[a]!) / 2))
  const poses = Array.from({ length: options.views }, (_, i) =>
    lookAt(target, (2 * Math.PI * i) / options.views, options.elevation, 3.5 * radius),
  )
  const points = gridInside(shape, box, 24)
  let spreadX = 0
  let spreadY = 0
  for (const pose of poses) {
    const xs = points.map(
      (p) => dot(pose.right, sub(p, pose.centre)) / dot(pose.forward, sub(p, pose.centre)),
    )
    const ys = points.map((p) => dot(pose.down, sub(p, pose.centre)) / dot(pose.forward, sub(p, pose.centre)))
    spreadX = Math.max(spreadX, Math.max(...xs.map(Math.abs)))
    spreadY = Math.max(spreadY, Math.max(...ys) - Math.min(...ys))
  }
  const f = Math.min((0.5 * options.height) / spreadY, (0.425 * options.width) / spreadX)
  const { width, height } = options
  return poses.map((pose, id) => {
    const rows = [...pose.right, ...pose.down, ...pose.forward]
    // Rows of R are the camera axes x (right), y (down), z (forward); t = −R·C.
    const t = [-dot(pose.right, pose.centre), -dot(pose.down, pose.centre), -dot(pose.forward, pose.centre)]
    return {
      id,
      name: `${options.prefix}${String(id + 1).padStart(4, '0')}`,
      k: [f, 0, width / 2, 0, f, height / 2, 0, 0, 1],
      r: rows,
      t,
      width,
      height,
    }
  })
}

/** The centres of an n³ grid over the box that lie inside the shape. */
function gridInside(shape: Shape, box: BoundingBox, n: number): Vec3[] {
  const points: Vec3[] = []
  for (let i = 0; i < n * n * n; i++) {
    const cell = [i % n, Math.floor(i / n) % n, Math.floor(i / (n * n))]
    const p = [0, 1, 2].map((a) => box.min[a]! + ((cell[a]! + 0.5) / n) * (box.max[a]! - box.min[a]!)) as Vec3
    if (insideShape(shape, p)) points.push(p)
  }
  return points
}

function lookAt(target: Vec3, azimuth: number, elevation: number, distance: number) {
  const centre = add(target, [
    distance * Math.cos(elevation) * Math.cos(azimuth),
    distance * Math.cos(elevation) * Math.sin(azimuth),
    distance * Math.sin(elevation),
  ])
  const forward = normalise(sub(target, centre))
  const right = normalise(cross(forward, [0, 0, 1]))
  const down = cross(forward, right)
  return { centre, forward, right, down }
}

/**
 * Renders every camera and writes the Middlebury layout `loadMiddlebury` reads: `<name>_par.txt`
 * (count, then per image `file k r t`), `<name>0001.png`…, and README.txt with the two box lines.
 */
export async function writeTexturedDataset(scene: TexturedScene, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const lines = [String(scene.cameras.length)]
  for (const camera of scene.cameras) {
    const png = encodePng(camera.width, camera.height, renderTexturedView(scene, camera))
    await writeFile(join(dir, `${camera.name}.png`), png)
    lines.push([`${camera.name}.png`, ...camera.k, ...camera.r, ...camera.t].join(' '))
  }
  await writeFile(join(dir, `${scene.name}_par.txt`), `${lines.join('\n')}\n`)
  const { min, max } = scene.box
  const readme = [
    `Textured synthetic scene '${scene.variant}' rendered by crowdmesh (seed ${scene.seed}): shaded,`,
    `textured solids on black, ${scene.cameras.length} views on one ring, ${scene.supersample}×${scene.supersample} supersampled,`,
    `sensor noise sigma ${scene.noise}. Camera file format as the Middlebury multi-view sets (P = K[R t]).`,
    '',
    'The bounding box is',
    `(${min.join(' ')})`,
    `(${max.join(' ')})`,
    '',
  ]
  await writeFile(join(dir, 'README.txt'), readme.join('\n'))
}
