import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { type FrameImage, frameImage } from '../../peer/participant/frame-image.ts'
import { focalLength, projectionMatrix } from '../../peer/jobs/vertex/camera.ts'
import type { Block, VertexJob } from '../../peer/jobs/vertex/block.ts'
import { vertexCentre, voxelEdge } from '../../peer/jobs/vertex/target-space.ts'
import { testCamera, testJob } from '../support/fixtures.ts'

/** The sampling rule of `peer/jobs/vertex/sampling.ts`, written out pixel by pixel with no summed-area table. */
function referenceThread(job: VertexJob, image: FrameImage, vertex: number): number[] {
  const camera = job.cameras[0]!
  const p = projectionMatrix(camera)
  const c = new Float64Array(3)
  vertexCentre(job.space, vertex, c)
  const [x, y, z] = [c[0]!, c[1]!, c[2]!]
  const w = p[8]! * x + p[9]! * y + p[10]! * z + p[11]!
  if (w <= 0) return [0, 0, 0, 0]
  const px = Math.floor((p[0]! * x + p[1]! * y + p[2]! * z + p[3]!) / w + 0.5)
  const py = Math.floor((p[4]! * x + p[5]! * y + p[6]! * z + p[7]!) / w + 0.5)
  if (px < 0 || py < 0 || px >= image.width || py >= image.height) return [0, 0, 0, 0]
  const r = Math.min(job.maxAreaRadius, Math.floor((focalLength(camera) * voxelEdge(job.space)) / (2 * w)))
  // The colour's area: at least 3×3 pixels, at most the largest area.
  const rc = Math.min(job.maxAreaRadius, Math.max(r, 1))
  let n = 0
  let m = 0
  let mc = 0
  const sum = [0, 0, 0]
  for (let yy = py - rc; yy <= py + rc; yy++) {
    for (let xx = px - rc; xx <= px + rc; xx++) {
      if (xx < 0 || yy < 0 || xx >= image.width || yy >= image.height) continue
      const inArea = Math.abs(xx - px) <= r && Math.abs(yy - py) <= r
      if (inArea) n++
      const o = (yy * image.width + xx) * 4
      const rgb = [image.rgba[o]!, image.rgba[o + 1]!, image.rgba[o + 2]!]
      if (rgb[0]! + rgb[1]! + rgb[2]! <= job.backgroundSum) continue
      if (inArea) m++
      mc++
      for (let k = 0; k < 3; k++) sum[k]! += rgb[k]!
    }
  }
  const colour = m === 0 ? [0, 0, 0] : sum.map((s) => Math.floor((s + Math.floor(mc / 2)) / mc))
  return [...colour, 1 + Math.floor((254 * m + Math.floor(n / 2)) / n)]
}

function randomImage(width: number, height: number, seed: number): FrameImage {
  const rgba = new Uint8Array(width * height * 4)
  let s = seed
  for (let i = 0; i < rgba.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0
    rgba[i] = s >>> 24
  }
  return frameImage(width, height, rgba)
}

describe('CPU reference worker', () => {
  it('follows the written sampling rule exactly, thread by thread', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 24 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        fc.integer({ min: 0, max: 600 }),
        fc.double({ min: -0.4, max: 0.4, noNaN: true }),
        fc.double({ min: 1.2, max: 4, noNaN: true }),
        (n, seed, backgroundSum, shift, distance) => {
          const camera = { ...testCamera(), t: [shift, -shift / 2, distance] }
          const job = testJob(n, [camera], backgroundSum)
          const image = randomImage(camera.width, camera.height, seed)
          const total = n ** 3
          const block: Block = {
            jobId: job.jobId,
            frameIndex: 0,
            cameraId: 0,
            imageUrl: 'file:///unused.png',
            firstVertex: 0,
            vertexCount: total,
          }
          const result = colourBlock(job, block, image)
          for (let v = 0; v < total; v++) {
            expect([...result.colours.subarray(v * 4, v * 4 + 4)]).toEqual(referenceThread(job, image, v))
          }
        },
      ),
      { numRuns: 40 },
    )
  })

  it('marks vertices behind the camera or outside the image as unseen', () => {
    const behind = { ...testCamera(), t: [0, 0, -2] }
    const job = testJob(4, [behind])
    const image = randomImage(64, 48, 1)
    const result = colourBlock(
      job,
      {
        jobId: 'test',
        frameIndex: 0,
        cameraId: 0,
        imageUrl: 'file:///x.png',
        firstVertex: 0,
        vertexCount: 64,
      },
      image,
    )
    expect(result.colours.every((b) => b === 0)).toBe(true)
  })

  it('colours a uniform foreground exactly and reports full coverage', () => {
    const job = testJob(6)
    const rgba = new Uint8Array(64 * 48 * 4)
    for (let i = 0; i < rgba.length; i += 4) rgba.set([200, 100, 50, 255], i)
    const result = colourBlock(
      job,
      {
        jobId: 'test',
        frameIndex: 0,
        cameraId: 0,
        imageUrl: 'file:///x.png',
        firstVertex: 10,
        vertexCount: 100,
      },
      frameImage(64, 48, rgba),
    )
    for (let v = 0; v < 100; v++)
      expect([...result.colours.subarray(v * 4, v * 4 + 4)]).toEqual([200, 100, 50, 255])
  })

  it('refuses a frame whose size does not match the camera, and a block past the grid', () => {
    const job = testJob(4)
    const block = {
      jobId: 'test',
      frameIndex: 0,
      cameraId: 0,
      imageUrl: 'file:///x.png',
      firstVertex: 0,
      vertexCount: 8,
    }
    expect(() => colourBlock(job, block, randomImage(32, 48, 1))).toThrow(
      expect.objectContaining({ name: 'BlockMismatchError' }),
    )
    expect(() => colourBlock(job, { ...block, firstVertex: 60 }, randomImage(64, 48, 1))).toThrow(
      expect.objectContaining({ name: 'BlockMismatchError' }),
    )
  })
})
