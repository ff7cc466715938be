import { afterAll, describe, expect, it } from 'vitest'
import type { Camera } from '../../peer/jobs/vertex/camera.ts'
import { inThread } from '../../peer/jobs/vertex/camera-work.ts'
import { visibleCameras } from '../../peer/jobs/vertex/line-of-sight.ts'
import { SweepThreads } from '../../peer/jobs/vertex/sweep-threads.ts'
import type { TargetSpace } from '../../peer/jobs/vertex/target-space.ts'

/*
 * The line-of-sight test on a scene whose answer is known: two 4-voxel cubes one behind the other
 * along a camera's axis, and a second camera looking at both from the side.
 */

const n = 16
const space: TargetSpace = { box: { min: [0, 0, 0], max: [1, 1, 1] }, resolution: [n, n, n] }
const id = (x: number, y: number, z: number) => x + n * (y + n * z)
const hull = new Uint8Array(n ** 3)
const inCube = (x: number, y: number, z: number, z0: number) =>
  x >= 6 && x <= 9 && y >= 6 && y <= 9 && z >= z0 && z <= z0 + 3
for (let z = 0; z < n; z++)
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++) if (inCube(x, y, z, 2) || inCube(x, y, z, 10)) hull[id(x, y, z)] = 1
const intrinsics = [400, 0, 100, 0, 400, 100, 0, 0, 1]
const cameras: Camera[] = [
  // At (0.5, 0.5, −3), looking along +z: the front cube hides the back one.
  {
    id: 0,
    name: 'front',
    k: intrinsics,
    r: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    t: [-0.5, -0.5, 3],
    width: 200,
    height: 200,
  },
  // At (−3, 0.5, 0.5), looking along +x: both cubes side by side.
  {
    id: 1,
    name: 'side',
    k: intrinsics,
    r: [0, 0, -1, 0, 1, 0, 1, 0, 0],
    t: [0.5, -0.5, 3],
    width: 200,
    height: 200,
  },
]
// Every camera saw foreground everywhere (alpha is the share of a vertex's area that is foreground).
const planes = cameras.map(() => new Uint8Array(n ** 3 * 4).fill(255))
const threads = new SweepThreads(1)
afterAll(() => threads.close())

describe('the line of sight', () => {
  const sight = visibleCameras({ planes }, space, cameras, hull, 1, inThread)
  const sees = (slot: number, v: number) => (sight.masks[v * sight.words]! & (1 << slot)) !== 0
  const face = (z: number) => [6, 7, 8, 9].flatMap((x) => [6, 7, 8, 9].map((y) => id(x, y, z)))
  const side = (z0: number) => [0, 1, 2, 3].flatMap((dz) => [6, 7, 8, 9].map((y) => id(6, y, z0 + dz)))

  it('lists the hull surface alone as candidates', () => {
    // Two 4×4×4 cubes: 64 vertices each, 8 of them inside.
    expect(sight.candidates.length).toBe(2 * 56)
    expect(sight.candidates.includes(id(7, 7, 3))).toBe(false)
  })

  it('sees the nearest surface and not what it hides', () => {
    expect(face(2).every((v) => sees(0, v))).toBe(true)
    // The back cube's face towards the camera lies 5 voxels behind the front cube's back face.
    expect(face(10).some((v) => sees(0, v))).toBe(false)
    expect([...sight.candidates].filter((v) => v >= id(0, 0, 10) && sees(0, v))).toEqual([])
    // From the side, both cubes' faces towards the camera are in view.
    expect(side(2).every((v) => sees(1, v))).toBe(true)
    expect(side(10).every((v) => sees(1, v))).toBe(true)
    // The side camera's far faces are hidden behind the near ones.
    expect(sees(1, id(9, 7, 3))).toBe(false)
  })

  it('does not count a camera that saw background at the vertex', () => {
    const masked = planes.map((p) => p.slice())
    for (const v of face(2)) masked[0]![v * 4 + 3] = 0
    const without = visibleCameras({ planes: masked }, space, cameras, hull, 1, inThread)
    expect(face(2).some((v) => (without.masks[v]! & 1) !== 0)).toBe(false)
    expect(face(2).every((v) => (without.masks[v]! & 2) === (sight.masks[v]! & 2))).toBe(true)
  })

  it('gives the same masks spread over threads', async () => {
    await threads.ready()
    for (let run = 0; run < 5; run++) {
      const spread = visibleCameras({ planes }, space, cameras, hull, 1, threads)
      expect(Buffer.compare(Buffer.from(spread.masks.buffer), Buffer.from(sight.masks.buffer))).toBe(0)
      expect([...spread.candidates]).toEqual([...sight.candidates])
    }
    expect(threads.statistics.cameras).toBe(10)
  })
})
