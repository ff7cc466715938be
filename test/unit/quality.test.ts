import { describe, expect, it } from 'vitest'
import { vertexCentre } from '../../peer/protocol/target-space.ts'
import { scoreRendering } from '../../peer/quality/image-metrics.ts'
import { decodePly, encodePly } from '../../peer/quality/ply.ts'
import { renderSplats } from '../../peer/quality/splat-render.ts'
import { testCamera, testJob } from '../support/fixtures.ts'

describe('image metrics', () => {
  const photo = (values: number[][]) => new Uint8Array(values.flatMap((v) => [...v, 255]))

  it('computes IoU over object pixels and PSNR where both show the object', () => {
    // Photo: pixels 0 and 1 object (bright), pixel 2 background. Rendering covers pixels 1 and 2.
    const p = photo([
      [200, 200, 200],
      [100, 100, 100],
      [0, 0, 0],
    ])
    const r = new Uint8Array([0, 0, 0, 0, 110, 100, 90, 255, 50, 50, 50, 255])
    const score = scoreRendering(r, p, 0.19)
    expect(score.iou).toBeCloseTo(1 / 3)
    expect(score.overlapPixels).toBe(1)
    // MSE = (100 + 0 + 100) / 3.
    expect(score.psnr).toBeCloseTo(10 * Math.log10((255 * 255) / (200 / 3)))
  })

  it('reports NaN PSNR when nothing overlaps and refuses images of different sizes', () => {
    const p = photo([[255, 255, 255]])
    expect(scoreRendering(new Uint8Array(4), p, 0.19).psnr).toBeNaN()
    expect(() => scoreRendering(new Uint8Array(8), p, 0.19)).toThrow(RangeError)
  })
})

describe('PLY', () => {
  it('round-trips coloured vertices at their centres', () => {
    const { space } = testJob(4)
    const ids = new Uint32Array([0, 5, 63])
    const rgb = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])
    const bytes = encodePly(space, ids, rgb)
    expect(bytes.toString('ascii', 0, 3)).toBe('ply')
    const { xyz, rgb: back } = decodePly(bytes)
    expect([...back]).toEqual([...rgb])
    const c = new Float64Array(3)
    vertexCentre(space, 63, c)
    expect(xyz[6]).toBeCloseTo(c[0]!, 5)
    expect(xyz[8]).toBeCloseTo(c[2]!, 5)
  })
})

describe('splat renderer', () => {
  it('draws a vertex where it projects, and the nearer of two on the same pixel', () => {
    const { space } = testJob(4)
    const camera = testCamera()
    // Vertices 21 (z index 1) and 37 (z index 2) share x, y: the camera looks down +z, so 21 is nearer.
    const ids = new Uint32Array([37, 21])
    const rgb = new Uint8Array([0, 0, 255, 255, 0, 0])
    const hard = renderSplats(space, camera, ids, rgb, { radius: 1, blendDepthVoxels: 0 })
    const c = new Float64Array(3)
    vertexCentre(space, 21, c)
    const u = Math.floor((40 * c[0]!) / (c[2]! + 2) + 32 + 0.5)
    const v = Math.floor((40 * c[1]!) / (c[2]! + 2) + 24 + 0.5)
    const o = (v * camera.width + u) * 4
    expect([...hard.rgba.subarray(o, o + 4)]).toEqual([255, 0, 0, 255])
    expect(hard.rgba.filter((_, i) => i % 4 === 3 && hard.rgba[i] === 255).length).toBeGreaterThanOrEqual(9)
    expect(hard.rgba[3]).toBe(0)
  })
})
