import { describe, expect, it } from 'vitest'
import { offsetUnits, refineSurface, surfacePoint } from '../../peer/jobs/vertex/surface-refinement.ts'
import { targetSpace } from '../../peer/jobs/vertex/target-space.ts'
import { decodePly, encodePly } from '../../peer/quality/ply.ts'

/*
 * A textured floor seen by four oblique cameras (parallel rays, 35° off vertical, from four sides),
 * on a 12³ grid of unit voxels. The floor lies at height `floor`; the vertices whose centres lie below
 * it are the solid. Each camera's thread result at a vertex is the floor's texture where that camera's
 * ray through the vertex meets the floor, as a real camera's pixel would be. The cameras agree only
 * at the floor itself, so the refinement should find it within the surface vertex's voxel.
 */
const n = 12
const space = targetSpace({ min: [0, 0, 0], max: [n, n, n] }, n)
const texture = (x: number, y: number) => [
  128 + 90 * Math.sin(x * 0.9) * Math.cos(y * 0.7),
  128 + 60 * Math.cos(x * 0.5 + y * 0.8),
  100,
]
const tilt = Math.tan((35 * Math.PI) / 180)
const directions = [
  [tilt, 0],
  [-tilt, 0],
  [0, tilt],
  [0, -tilt],
] as const

/**
 * `excess`: the solid reaches this many voxels above the floor, as a visual hull does over a flat face.
 * `glare`: above the surface vertices every camera sees black or white by turns, as a view past the
 * silhouette sees the backdrop.
 */
function scene(floor: number, { excess = 0, glare = false } = {}) {
  const planes = directions.map(([dx, dy]) => {
    const plane = new Uint8Array(n ** 3 * 4)
    for (let z = 0, v = 0; z < n; z++)
      for (let y = 0; y < n; y++)
        for (let x = 0; x < n; x++, v++) {
          // The ray through the vertex's centre, followed to the floor (up or down).
          const h = floor - (z + 0.5)
          const [r, g, b] = texture(x + 0.5 + dx * h, y + 0.5 + dy * h)
          plane.set([Math.round(r!), Math.round(g!), Math.round(b!), 255], v * 4)
          if (glare && z + 0.5 > floor + excess) plane.fill(dx + dy > 0 ? 255 : 0, v * 4, v * 4 + 3)
        }
    return plane
  })
  const solid = new Uint8Array(n ** 3)
  const surface: number[] = []
  for (let z = 0, v = 0; z < n; z++)
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++, v++) {
        if (z + 0.5 > floor + excess) continue
        solid[v] = 1
        if (z + 1.5 > floor + excess && x > 1 && y > 1 && x < n - 2 && y < n - 2) surface.push(v)
      }
  // Every camera colours every surface vertex.
  const masks = new Uint32Array(n ** 3).fill(0b1111)
  const out = { colour: new Uint8Array(n ** 3 * 3), offset: new Int8Array(n ** 3 * 3) }
  const deeper = { silhouetteRatio: 3, vertices: [] as number[] }
  const moved = refineSurface(
    { cameraIds: [0, 1, 2, 3], planes },
    space,
    solid,
    { words: 1, masks },
    Uint32Array.from(surface),
    out,
    deeper,
  )
  return { surface, out, moved, deeper: deeper.vertices }
}

describe('sub-voxel surface refinement', () => {
  it('moves each surface vertex along its normal to the depth where its cameras agree, and colours it there', () => {
    // The surface vertices (z = 5, centres at 5.5) lie a quarter voxel below the floor.
    const { surface, out, moved } = scene(5.75)
    expect(moved).toBe(surface.length)
    for (const v of surface) {
      expect(Array.from(out.offset.subarray(v * 3, v * 3 + 3))).toEqual([0, 0, offsetUnits / 4])
      const x = (v % n) + 0.5
      const y = (Math.floor(v / n) % n) + 0.5
      const [r, g] = texture(x, y)
      // Interpolating a camera's results between vertices is close to its pixel at the point.
      expect(Math.abs(out.colour[v * 3]! - r!)).toBeLessThanOrEqual(6)
      expect(Math.abs(out.colour[v * 3 + 1]! - g!)).toBeLessThanOrEqual(6)
    }
  })

  it('leaves a vertex whose cameras agree best at its centre where it is, with its colour untouched', () => {
    const { out, moved } = scene(5.5)
    expect(moved).toBe(0)
    expect(out.offset.every((o) => o === 0)).toBe(true)
    expect(out.colour.every((c) => c === 0)).toBe(true)
  })

  it('lists the vertices whose surface lies deeper than their voxel reaches, for the peel', () => {
    // Inside its voxel (a quarter voxel out): not listed.
    expect(scene(5.75).deeper).toEqual([])
    // A hull a voxel too fat: the floor lies 0.75 voxel below the surface vertices' centres, so their
    // cameras agree best at the innermost depth tried, and each is listed.
    const { surface, out, moved, deeper } = scene(4.75, { excess: 1 })
    expect(moved).toBe(surface.length)
    expect(deeper).toEqual(surface)
    for (const v of surface) expect(out.offset[v * 3 + 2]).toBe(-offsetUnits / 2)
  })

  it('does not list a vertex whose outer samples reach the backdrop (a silhouette, not a fat hull)', () => {
    const { surface, moved, deeper } = scene(4.75, { excess: 1, glare: true })
    expect(moved).toBe(surface.length)
    expect(deeper).toEqual([])
  })

  it('writes the surface point to the PLY model', () => {
    const ids = Uint32Array.of(5 + 5 * n + 5 * n * n)
    const offset = Int8Array.of(-32, 0, 16)
    const point = [0, 0, 0]
    surfacePoint(space, ids[0]!, offset, 0, point)
    expect(point).toEqual([5, 5.5, 5.75])
    const { xyz } = decodePly(encodePly(space, ids, Uint8Array.of(1, 2, 3), offset))
    expect(Array.from(xyz)).toEqual([5, 5.5, 5.75])
    const centre = decodePly(encodePly(space, ids, Uint8Array.of(1, 2, 3)))
    expect(Array.from(centre.xyz)).toEqual([5.5, 5.5, 5.5])
  })
})
