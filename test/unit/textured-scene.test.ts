import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import {
  renderTexturedView,
  texturedInside,
  texturedScene,
  traceTexturedRay,
  writeTexturedDataset,
  type TexturedScene,
} from '../../peer/datasets/textured-scene.ts'
import { type Camera, cameraCentre, projectionMatrix } from '../../peer/jobs/vertex/camera.ts'
import { decodePng } from '../../peer/participant/png.ts'

type Vec3 = [number, number, number]

/** Object threshold of the evaluation: mean brightness above 0.19 of full scale. */
const objectSum = 0.19 * 765

function project(camera: Camera, p: readonly number[]): { u: number; v: number; w: number } {
  const m = projectionMatrix(camera)
  const w = m[8]! * p[0]! + m[9]! * p[1]! + m[10]! * p[2]! + m[11]!
  return {
    u: (m[0]! * p[0]! + m[1]! * p[1]! + m[2]! * p[2]! + m[3]!) / w,
    v: (m[4]! * p[0]! + m[5]! * p[1]! + m[6]! * p[2]! + m[7]!) / w,
    w,
  }
}

/** R+G+B of the pixel a point projects to, by the samplers' rounding (pixel i covers [i − ½, i + ½)). */
function sumAt(rgba: Uint8Array, camera: Camera, p: readonly number[]): number {
  const { u, v } = project(camera, p)
  const o = (Math.floor(v + 0.5) * camera.width + Math.floor(u + 0.5)) * 4
  return rgba[o]! + rgba[o + 1]! + rgba[o + 2]!
}

/** Centres of an n³ grid over the scene box that lie inside the object. */
function insidePoints(scene: TexturedScene, n: number): Vec3[] {
  const { min, max } = scene.box
  const points: Vec3[] = []
  for (let i = 0; i < n * n * n; i++) {
    const cell = [i % n, Math.floor(i / n) % n, Math.floor(i / (n * n))]
    const p = [0, 1, 2].map((a) => min[a]! + ((cell[a]! + 0.5) / n) * (max[a]! - min[a]!)) as Vec3
    if (texturedInside(scene, ...p)) points.push(p)
  }
  return points
}

/**
 * Silhouette pixels that blend object and background: beside a background pixel (R+G+B ≤ 20), not
 * background themselves, and under 3/4 of their brightest neighbour. With one ray per pixel an edge
 * pixel is as bright as the object next to it, so only texture and shading edges count.
 */
function edgeBlends(rgba: Uint8Array, width: number, height: number): number {
  const sum = (x: number, y: number) => {
    const o = (y * width + x) * 4
    return rgba[o]! + rgba[o + 1]! + rgba[o + 2]!
  }
  let count = 0
  for (let y = 1; y < height - 1; y++) {
    for (let x = 1; x < width - 1; x++) {
      const s = sum(x, y)
      if (s <= 20) continue
      const sides = [sum(x - 1, y), sum(x + 1, y), sum(x, y - 1), sum(x, y + 1)]
      const corners = [sum(x - 1, y - 1), sum(x + 1, y - 1), sum(x - 1, y + 1), sum(x + 1, y + 1)]
      if (Math.min(...sides) <= 20 && s < 0.75 * Math.max(...sides, ...corners)) count++
    }
  }
  return count
}

describe('textured synthetic scenes', () => {
  const scene = texturedScene({ variant: 'arches', views: 8, width: 160, height: 120 })
  let dataset: MultiViewDataset
  let images: Uint8Array[]

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-textured-'))
    await writeTexturedDataset(scene, dir)
    dataset = await loadMiddlebury(dir)
    images = await Promise.all(
      dataset.cameras.map(async (c) => decodePng(await readFile(join(dir, `${c.name}.png`))).rgba),
    )
  })

  it('writes a Middlebury set the loader reads back: 8 cameras, their calibration, the box', () => {
    expect(dataset.name).toBe('archesRing')
    expect(dataset.cameras).toHaveLength(8)
    expect(dataset.cameras[7]!.name).toBe('archesRing0008')
    expect(dataset.cameras.every((c) => c.width === 160 && c.height === 120)).toBe(true)
    dataset.cameras.forEach((c, i) => {
      const original = scene.cameras[i]!
      for (const key of ['k', 'r', 't'] as const) {
        c[key].forEach((value, j) => expect(value).toBeCloseTo(original[key][j]!, 9))
      }
    })
    expect(dataset.box).toEqual(scene.box)
  })

  it('encloses the object tightly: inside points reach within 6 % of every face of the box', () => {
    const points = insidePoints(scene, 60)
    const { min, max } = scene.box
    for (let a = 0; a < 3; a++) {
      const size = max[a]! - min[a]!
      const lo = Math.min(...points.map((p) => p[a]!))
      const hi = Math.max(...points.map((p) => p[a]!))
      expect(lo - min[a]!).toBeGreaterThan(0)
      expect(lo - min[a]!).toBeLessThan(0.06 * size)
      expect(max[a]! - hi).toBeGreaterThan(0)
      expect(max[a]! - hi).toBeLessThan(0.06 * size)
    }
  })

  it('shows a known surface point as object and a point above the box as background in every view', () => {
    // The top of the back lintel is the highest surface: nothing hides it from a camera above it.
    let z = scene.box.max[2]
    while (z > scene.box.min[2] && !texturedInside(scene, 0, 0.38, z)) z -= 0.001
    expect(z).toBeCloseTo(1.1, 2)
    const top: Vec3 = [0, 0.38, z]
    const above: Vec3 = [0, 0, scene.box.max[2] + (scene.box.max[2] - scene.box.min[2])]
    dataset.cameras.forEach((camera, i) => {
      expect(project(camera, top).w).toBeGreaterThan(0)
      expect(sumAt(images[i]!, camera, top)).toBeGreaterThan(objectSum)
      expect(sumAt(images[i]!, camera, above)).toBeLessThan(20)
    })
  })

  it('draws every point inside the object on an object pixel where projectionMatrix puts it', () => {
    const exact = texturedScene({
      variant: 'arches',
      views: 3,
      width: 160,
      height: 120,
      supersample: 4,
      noise: 0,
    })
    const points = insidePoints(exact, 50)
    let missed = 0
    let missedShifted = 0
    for (const camera of exact.cameras) {
      const rgba = renderTexturedView(exact, camera)
      // A camera whose principal point is off by half a pixel (the [i, i + 1) convention): the check must notice.
      const shifted = { ...camera, k: camera.k.map((v, j) => (j === 2 || j === 5 ? v - 0.5 : v)) }
      for (const p of points) {
        if (sumAt(rgba, camera, p) === 0) missed++
        if (sumAt(rgba, shifted, p) === 0) missedShifted++
      }
    }
    // Measured: 33480 points, none missed; 121 missed by the shifted camera.
    expect(points.length).toBeGreaterThan(30000)
    expect(missed).toBe(0)
    expect(missedShifted).toBeGreaterThan(50)
  })

  it('gives a surface point the same colour in every view that sees it (fixed lights, no gloss)', () => {
    const camera0 = dataset.cameras[0]!
    const origin = cameraCentre(camera0)
    const pairs: [number[], number[]][] = []
    for (let py = 30; py < 90; py += 6) {
      for (let px = 40; px < 120; px += 6) {
        const hit = traceTexturedRay(scene, origin, rayThrough(camera0, px, py))
        if (hit === undefined) continue
        for (let j = 1; j < dataset.cameras.length; j++) {
          const other = dataset.cameras[j]!
          const centre = cameraCentre(other)
          const toPoint: Vec3 = [hit.point[0] - centre[0], hit.point[1] - centre[1], hit.point[2] - centre[2]]
          const seen = traceTexturedRay(scene, centre, toPoint)
          if (seen === undefined || Math.abs(seen.t - Math.hypot(...toPoint)) > 1e-6) continue
          const { u, v } = project(other, hit.point)
          const b = pixel(images[j]!, other, Math.floor(u + 0.5), Math.floor(v + 0.5))
          pairs.push([pixel(images[0]!, camera0, px, py), b])
        }
      }
    }
    const median = (values: number[]) => values.sort((x, y) => x - y)[Math.floor(values.length / 2)]!
    const difference = (a: number[], b: number[]) =>
      Math.abs(a[0]! - b[0]!) + Math.abs(a[1]! - b[1]!) + Math.abs(a[2]! - b[2]!)
    const matched = median(pairs.map(([a, b]) => difference(a, b)))
    // Control: the same pixels paired with another point's pixel.
    const mismatched = median(pairs.map(([a], i) => difference(a, pairs[(i + 17) % pairs.length]![1])))
    // Measured: 172 pairs, median R+G+B difference 14 (noise, resampling, texture within a pixel).
    expect(pairs.length).toBeGreaterThan(100)
    expect(matched).toBeLessThan(30)
    expect(matched).toBeLessThan(mismatched / 2)
  })

  it('is deterministic for a seed and differs for another', () => {
    const camera = scene.cameras[2]!
    const again = renderTexturedView(
      texturedScene({ variant: 'arches', views: 8, width: 160, height: 120 }),
      camera,
    )
    expect(Buffer.from(again).equals(Buffer.from(images[2]!))).toBe(true)
    const other = texturedScene({ variant: 'arches', views: 8, width: 160, height: 120, seed: 2 })
    expect(Buffer.from(renderTexturedView(other, camera)).equals(Buffer.from(images[2]!))).toBe(false)
  })

  it('is textured: brightness varies within the object, not just between faces', () => {
    const { width, height } = dataset.cameras[0]!
    const rgba = images[0]!
    const sum = (x: number, y: number) =>
      rgba[(y * width + x) * 4]! + rgba[(y * width + x) * 4 + 1]! + rgba[(y * width + x) * 4 + 2]!
    // Standard deviation of R+G+B within 3×3 windows wholly on the object, averaged. Measured 40; sensor
    // noise alone (σ 2 per channel) would give about 3.5, flat colours with shading little more.
    const deviations: number[] = []
    for (let y = 1; y < height - 1; y++) {
      for (let x = 1; x < width - 1; x++) {
        const window = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => sum(x + dx, y + dy)))
        if (window.some((s) => s <= objectSum)) continue
        const mean = window.reduce((a, b) => a + b, 0) / 9
        deviations.push(Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / 9))
      }
    }
    expect(deviations.length).toBeGreaterThan(1000)
    expect(deviations.reduce((a, b) => a + b, 0) / deviations.length).toBeGreaterThan(20)
  })

  it('blends silhouette edges into the background (supersampling), unlike one ray per pixel', () => {
    const sharp = texturedScene({
      variant: 'pots',
      views: 4,
      width: 160,
      height: 120,
      supersample: 1,
      noise: 0,
    })
    const smooth = texturedScene({ variant: 'pots', views: 4, width: 160, height: 120, noise: 0 })
    const camera = sharp.cameras[1]!
    const blendsSharp = edgeBlends(renderTexturedView(sharp, camera), camera.width, camera.height)
    const blendsSmooth = edgeBlends(renderTexturedView(smooth, camera), camera.width, camera.height)
    // Measured: 133 with 2×2 samples, 31 with one.
    expect(blendsSmooth).toBeGreaterThan(80)
    expect(blendsSmooth).toBeGreaterThan(3 * blendsSharp)
  })

  it('builds the pots variant with its own name and a focal length that frames the object', () => {
    const pots = texturedScene({ variant: 'pots' })
    expect(pots.name).toBe('potsRing')
    expect(pots.cameras).toHaveLength(16)
    expect(pots.cameras[0]!.width).toBe(640)
    // The amphora's cavity is empty, its wall is solid: a concavity the visual hull cannot see.
    expect(texturedInside(pots, -0.3, 0.1, 0.5)).toBe(false)
    expect(texturedInside(pots, -0.3 + 0.4, 0.1, 0.5)).toBe(true)
  })
})

function rayThrough(camera: Camera, px: number, py: number): Vec3 {
  const { k, r } = camera
  const dx = (px - k[2]!) / k[0]!
  const dy = (py - k[5]!) / k[4]!
  return [r[0]! * dx + r[3]! * dy + r[6]!, r[1]! * dx + r[4]! * dy + r[7]!, r[2]! * dx + r[5]! * dy + r[8]!]
}

function pixel(rgba: Uint8Array, camera: Camera, x: number, y: number): [number, number, number] {
  const o = (y * camera.width + x) * 4
  return [rgba[o]!, rgba[o + 1]!, rgba[o + 2]!]
}
