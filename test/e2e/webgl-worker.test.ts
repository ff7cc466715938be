import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { focalLength, projectionMatrix } from '../../peer/jobs/vertex/camera.ts'
import { areaRadius } from '../../peer/jobs/vertex/sampling.ts'
import { vertexCentre, voxelEdge } from '../../peer/jobs/vertex/target-space.ts'
import type { FrameImage } from '../../peer/participant/frame-image.ts'
import { decodePng } from '../../peer/participant/png.ts'
import type { Block, VertexJob } from '../../peer/jobs/vertex/block.ts'
import { headlessChromiumFlags } from '../../scripts/chromium.ts'
import { type BenchPage, openBenchPage, spreadBlocks } from '../../scripts/bench/browser.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * The WebGL worker against the CPU reference, on the same blocks of the templeSparseRing job: Node's
 * colourBlock (pngjs decoding) is the reference; the bench page in headless Chromium (SwiftShader here)
 * computes the blocks with its CPU worker (browser decoding), WebGL 2 and the WebGL 1 fallback.
 */

const grid = 48
let dataset: MultiViewDataset
let job: VertexJob
let bench: BenchPage
let blocks: Block[]
let expected: Uint8Array[]
const images = new Map<number, FrameImage>()

/** Node's reference colours of a block (frames decoded by pngjs). */
function reference(block: Block): Promise<Uint8Array> {
  return referenceOf(job, block)
}

async function referenceOf(of: VertexJob, block: Block): Promise<Uint8Array> {
  let image = images.get(block.cameraId)
  if (image === undefined) {
    const frame = dataset.frames.find((f) => f.cameraId === block.cameraId)!
    image = decodePng(await readFile(fileURLToPath(frame.imageUrl)))
    images.set(block.cameraId, image)
  }
  return colourBlock(of, block, image).colours
}

/** Largest channel difference and the share of vertices that match exactly. */
function compare(got: Uint8Array, want: Uint8Array): { maxDiff: number; exact: number; vertices: number } {
  expect(got.length).toBe(want.length)
  let maxDiff = 0
  let exact = 0
  for (let v = 0; v < want.length; v += 4) {
    let diff = 0
    for (let k = v; k < v + 4; k++) diff = Math.max(diff, Math.abs(got[k]! - want[k]!))
    maxDiff = Math.max(maxDiff, diff)
    if (diff === 0) exact++
  }
  return { maxDiff, exact, vertices: want.length / 4 }
}

function decode(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, 'base64'))
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  job = datasetJob(dataset, grid)
  bench = await openBenchPage({ dataset })
  // Seven blocks of 6,000 vertices over seven cameras: the grid's first vertices, its last, and between.
  blocks = spreadBlocks(job, bench.frames, 7, 6000)
  expected = await Promise.all(blocks.map(reference))
}, 120_000)

afterAll(async () => {
  await bench?.close()
})

describe('the WebGL worker in headless Chromium', () => {
  it('the browser CPU worker equals Node’s exactly (so the browser decodes frames to the same bytes as pngjs)', async () => {
    const report = await bench.run({ backend: 'cpu', job, blocks })
    report.colours.forEach((colours, i) => {
      expect(Buffer.compare(decode(colours), expected[i]!), `block ${i}`).toBe(0)
    })
    expect(bench.pageErrors).toEqual([])
  })

  for (const backend of ['webgl2', 'webgl1'] as const) {
    it(`${backend} colours every vertex within ±1 per channel of the CPU, leaving few vertices to the CPU`, async () => {
      expect(await bench.probe(backend)).toMatchObject({ backend })
      const report = await bench.run({ backend, job, blocks })
      let maxDiff = 0
      let exact = 0
      let vertices = 0
      report.colours.forEach((colours, i) => {
        const c = compare(decode(colours), expected[i]!)
        maxDiff = Math.max(maxDiff, c.maxDiff)
        exact += c.exact
        vertices += c.vertices
      })
      const flaggedShare = report.flaggedVertices / report.verticesColoured
      console.log(
        `${backend} on ${report.renderer}: ${vertices} vertices, max channel difference ${maxDiff}, ` +
          `${((exact / vertices) * 100).toFixed(3)} % exact, ${(flaggedShare * 100).toFixed(2)} % flagged for the CPU`,
      )
      expect(report.verticesColoured).toBe(vertices)
      expect(maxDiff).toBeLessThanOrEqual(1)
      // The shader's integer rounding is exact, so beyond the ±1 contract nearly every vertex matches:
      // a rounding slip shows here long before it breaks ±1.
      expect(exact / vertices).toBeGreaterThan(0.999)
      expect(report.flaggedVertices).toBeGreaterThan(0)
      expect(flaggedShare).toBeLessThan(0.03)
      expect(bench.pageErrors).toEqual([])
    })

    it(`${backend} colours a fine grid's small footprints alike: one pixel's coverage, the colour over 3×3`, async () => {
      // At 256³ a temple voxel spans under 2 pixels: most areas are one pixel (r = 0), and the colour
      // is read from the wider square (rule 3 of sampling.ts).
      const fine = datasetJob(dataset, 256)
      const fineBlocks = spreadBlocks(fine, bench.frames, 4, 6000)
      const camera = fine.cameras.find((c) => c.id === fineBlocks[0]!.cameraId)!
      const p = projectionMatrix(camera)
      const centre = new Float64Array(3)
      let onePixel = 0
      for (let v = fineBlocks[0]!.firstVertex; v < fineBlocks[0]!.firstVertex + 6000; v++) {
        vertexCentre(fine.space, v, centre)
        const w = p[8]! * centre[0]! + p[9]! * centre[1]! + p[10]! * centre[2]! + p[11]!
        if (w > 0 && areaRadius(focalLength(camera), voxelEdge(fine.space), w, fine.maxAreaRadius) === 0)
          onePixel++
      }
      expect(onePixel).toBeGreaterThan(3000)
      const want = await Promise.all(fineBlocks.map((b) => referenceOf(fine, b)))
      const report = await bench.run({ backend, job: fine, blocks: fineBlocks })
      report.colours.forEach((colours, i) => {
        const c = compare(decode(colours), want[i]!)
        expect(c.maxDiff, `block ${i}`).toBeLessThanOrEqual(1)
        expect(c.exact / c.vertices, `block ${i}`).toBeGreaterThan(0.999)
      })
      expect(bench.pageErrors).toEqual([])
    })

    it(`${backend}: a lost context fails the block in progress and blocks until restored, then colours correctly again`, async () => {
      const block = { ...blocks[3]!, vertexCount: 20_000 }
      const want = await reference(block)
      const report = await bench.loseContextDuring({ backend, job, block })
      expect(report.duringBlock?.name).toBe('GpuContextLostError')
      expect(report.duringBlock?.message).toMatch(/lost/)
      expect(report.whileLost?.name).toBe('GpuContextLostError')
      const after = compare(decode(report.afterRestore), want)
      expect(after.maxDiff).toBeLessThanOrEqual(1)
      expect(after.exact / after.vertices).toBeGreaterThan(0.999)
      expect(bench.pageErrors).toEqual([])
    })
  }

  it('a browser without WebGL gets GpuUnavailableError with a sentence a participant understands', async () => {
    const blind = await openBenchPage({
      dataset,
      // --disable-webgl alone leaves OffscreenCanvas its WebGL; without a GPU process there is none.
      chromiumFlags: [...headlessChromiumFlags, '--disable-gpu', '--disable-software-rasterizer'],
    })
    try {
      const probe = await blind.probe()
      expect(probe.error?.name).toBe('GpuUnavailableError')
      expect(probe.error?.message).toMatch(/cannot lend its GPU/)
    } finally {
      await blind.close()
    }
  })
})
