import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ImageFilterJob, imageFilterKind, type ImageTask } from '../../peer/jobs/image-filter/index.ts'
import type { ImageFilter } from '../../peer/jobs/image-filter/schemas.ts'
import type { ImageFilterTestBackend } from '../../peer/jobs/image-filter/test-page.ts'
import type { JobSpec } from '../../peer/jobs/kind.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { type ImageFilterPage, openImageFilterPage } from '../support/image-filter-page.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * The image-filter kind's browser workers against Node's CPU worker, on every tile of real temple
 * images: Node (pngjs decoding) is the reference; headless Chromium (SwiftShader here) computes the
 * same tiles with the kind's CPU worker (browser decoding), its WebGL worker (WebGL 2, loaded by
 * `import()`), and the WebGL worker held to WebGL 1. The tiles include the image's corners and edges,
 * where the halo is clamped, and pieces of rows cut for small asks.
 */

const kind = imageFilterKind
const files = readdirSync(templeDir)
  .filter((f) => f.endsWith('.png'))
  .sort()
let page: ImageFilterPage

interface Case {
  filter: ImageFilter
  tile: number
  /** The task sizes asked for in turn (small ones cut rows into pieces). */
  sizes: number[]
  file: string
  backends: ImageFilterTestBackend[]
}

const cases: Case[] = [
  {
    filter: { type: 'gaussian', radius: 3, sigma: 1.5 },
    tile: 128,
    sizes: [128 * 128],
    file: files[0]!,
    backends: ['cpu', 'webgl', 'webgl1'],
  },
  {
    filter: { type: 'gaussian', radius: 8, sigma: 4 },
    tile: 256,
    sizes: [256 * 256, 3000, 100],
    file: files[5]!,
    backends: ['webgl'],
  },
  {
    filter: { type: 'box', radius: 2 },
    tile: 64,
    sizes: [64 * 64, 500],
    file: files[10]!,
    backends: ['webgl', 'webgl1'],
  },
  {
    filter: { type: 'bilateral', radius: 3, sigmaSpace: 2, sigmaRange: 20 },
    tile: 128,
    sizes: [128 * 128],
    file: files[0]!,
    backends: ['cpu', 'webgl', 'webgl1'],
  },
]

/** Every task of one image's round, cut with `sizes` in turn. */
function roundTasks(
  job: JobSpec<ImageFilterJob>,
  imageUrl: string,
  width: number,
  height: number,
  sizes: number[],
) {
  const plan = kind.openRound(job, 0, 0)
  plan.addInput({ imageUrl, width, height })
  const tasks: ImageTask[] = []
  for (
    let task = plan.cut(sizes[0]!);
    task !== undefined;
    task = plan.cut(sizes[tasks.length % sizes.length]!)
  ) {
    tasks.push(task)
  }
  return tasks
}

beforeAll(async () => {
  page = await openImageFilterPage(templeDir)
}, 120_000)

afterAll(async () => {
  await page?.close()
})

describe('the image-filter workers in headless Chromium', () => {
  for (const c of cases) {
    const name = `${c.filter.type} r${c.filter.radius}, tile ${c.tile}, on ${c.file}`
    it(`${c.backends.join(', ')} equal Node’s CPU worker within ±1 per channel (${name})`, async () => {
      const nodeUrl = pathToFileURL(join(templeDir, c.file)).href
      const image = await frameSource().get(nodeUrl)
      const job: JobSpec<ImageFilterJob> = {
        jobId: 'filter',
        kind: kind.name,
        version: kind.version,
        description: { filter: c.filter, tile: c.tile },
      }
      const tasks = roundTasks(job, nodeUrl, image.width, image.height, c.sizes)
      const nodeWorker = await kind.workers.cpu({ frames: frameSource() })
      const expected = await Promise.all(tasks.map(async (t) => (await nodeWorker.run(job, t)).rgba))
      const browserTasks = tasks.map((t) => ({ ...t, imageUrl: page.imageUrl(c.file) }))
      // Corners and edges are in the round: its first task starts at the top-left, its last ends at
      // the bottom-right.
      expect(tasks[0]).toMatchObject({ x: 0, y: 0 })
      const last = tasks.at(-1)!
      expect([last.x + last.w, last.y + last.h]).toEqual([image.width, image.height])

      for (const backend of c.backends) {
        const report = await page.run({ backend, job, tasks: browserTasks })
        expect(report.error).toBeUndefined()
        expect(report.rgba).toHaveLength(tasks.length)
        if (backend === 'webgl') expect(report.backend).toBe('webgl2')
        if (backend === 'webgl1') expect(report.backend).toBe('webgl1')
        let maxDiff = 0
        let exact = 0
        let channels = 0
        report.rgba.forEach((base64, i) => {
          const got = new Uint8Array(Buffer.from(base64, 'base64'))
          const want = expected[i]!
          expect(got.length, `task ${i}`).toBe(want.length)
          for (let k = 0; k < want.length; k++) {
            const diff = Math.abs(got[k]! - want[k]!)
            maxDiff = Math.max(maxDiff, diff)
            if (diff === 0) exact++
          }
          channels += want.length
        })
        console.log(
          `${name}: ${report.backend} on ${report.renderer}: ${tasks.length} tasks, ${channels / 4} pixels, ` +
            `max channel difference ${maxDiff}, ${((exact / channels) * 100).toFixed(4)} % exact`,
        )
        expect(maxDiff, report.backend).toBeLessThanOrEqual(1)
        // The browser decodes the PNG to the same bytes as pngjs and runs the same code: identical.
        if (backend === 'cpu') expect(exact).toBe(channels)
        // The separable sums stay exact in float32; bilateral sums round, but rarely near a boundary.
        expect(exact / channels, report.backend).toBeGreaterThan(
          c.filter.type === 'bilateral' ? 0.99 : 0.9999,
        )
      }
      expect(page.pageErrors).toEqual([])
    })
  }
})
