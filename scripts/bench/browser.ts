import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import type {
  BenchRunReport,
  BenchRunRequest,
  FrameTimesReport,
  FrameTimesRequest,
  LoseContextReport,
  LoseContextRequest,
  ProbeReport,
} from '../../peer/browser/bench-api.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { type FrameStore, startFrameStore } from '../../peer/mesh/frame-store.ts'
import { partitionDefaults } from '../../peer/jobs/vertex/defaults.ts'
import { schedulingDefaults } from '../../peer/protocol/defaults.ts'
import { DatasetError } from '../../peer/protocol/errors.ts'
import type { Block, Frame, VertexJob } from '../../peer/jobs/vertex/block.ts'
import { vertexCount } from '../../peer/jobs/vertex/target-space.ts'
import { type SignalingServer, startSignaling } from '../../signaling/server.ts'
import { buildWebApp, webAppDir as builtWebAppDir } from '../../signaling/web-app.ts'
import { headlessChromiumFlags, launchChromium } from '../chromium.ts'
import { defaultDataset } from '../options.ts'

/** Options of the bench page. */
export interface BenchPageInit {
  /** The data set whose frames the page fetches (from a local frame store, over http). */
  dataset: MultiViewDataset
  /** Chromium's flags (default `headlessChromiumFlags`: SwiftShader; a machine with a GPU passes its own). */
  chromiumFlags?: readonly string[]
  /** The built web app (default dist/web). */
  webAppDir?: string
  /** Build the web app first (default: only when its bench.html is missing). */
  build?: boolean
}

/** web/bench.html open in headless Chromium, served as participants get it, with typed calls into its API. */
export interface BenchPage {
  readonly page: Page
  /** The data set's frames with the http: URLs the page fetches them by. */
  readonly frames: readonly Frame[]
  /** Uncaught errors and console errors of the page so far. */
  readonly pageErrors: readonly string[]
  probe(backend?: 'webgl2' | 'webgl1'): Promise<ProbeReport>
  run(request: BenchRunRequest): Promise<BenchRunReport>
  loseContextDuring(request: LoseContextRequest): Promise<LoseContextReport>
  frameTimes(request: FrameTimesRequest): Promise<FrameTimesReport>
  /** Closes the browser and both servers. Safe to call twice. */
  close(): Promise<void>
}

/**
 * Starts the signaling server (serving the web app under /app/) and a frame store with the data set's
 * frames, launches Chromium and opens /app/bench.html: the harness the WebGL test and the browser
 * benchmark share.
 */
export async function openBenchPage(init: BenchPageInit): Promise<BenchPage> {
  const dir = init.webAppDir ?? builtWebAppDir
  if (init.build === true || !existsSync(join(dir, 'bench.html'))) await buildWebApp()
  let server: SignalingServer | undefined
  let store: FrameStore | undefined
  let browser: Browser | undefined
  const close = async () => {
    await browser?.close()
    await store?.close()
    await server?.close()
    browser = store = server = undefined
  }
  try {
    server = await startSignaling({ webAppDir: dir })
    store = await startFrameStore()
    const frames = init.dataset.frames.map((f) => store!.publish(f))
    browser = await launchChromium(init.chromiumFlags !== undefined ? { flags: init.chromiumFlags } : {})
    const page = await browser.newPage()
    // Nothing serves a favicon; its 404 would read as a page error.
    await page.route('**/favicon.ico', (route) => route.fulfill({ status: 204 }))
    const pageErrors: string[] = []
    page.on('pageerror', (error) => pageErrors.push(`${error.name}: ${error.message}`))
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text())
    })
    await page.goto(`${server.url}/app/bench.html`)
    await page.waitForFunction(() => window.crowdmeshBench !== undefined, undefined, { timeout: 30_000 })
    return {
      page,
      frames,
      pageErrors,
      probe: (backend) => page.evaluate((b) => window.crowdmeshBench!.probe(b), backend),
      run: (request) => page.evaluate((r) => window.crowdmeshBench!.run(r), request),
      loseContextDuring: (request) =>
        page.evaluate((r) => window.crowdmeshBench!.loseContextDuring(r), request),
      frameTimes: (request) => page.evaluate((r) => window.crowdmeshBench!.frameTimes(r), request),
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

/**
 * `count` blocks of `blockVertices` spread over the frames' cameras and over the grid: the first at
 * vertex 0, the last ending at the grid's last vertex, the others evenly between.
 */
export function spreadBlocks(
  job: VertexJob,
  frames: readonly Frame[],
  count: number,
  blockVertices: number,
): Block[] {
  const total = vertexCount(job.space)
  const size = Math.min(blockVertices, total)
  return Array.from({ length: count }, (_, i) => {
    const frame = frames[(i * 5) % frames.length]!
    return {
      jobId: job.jobId,
      frameIndex: frame.index,
      cameraId: frame.cameraId,
      imageUrl: frame.imageUrl,
      firstVertex: count === 1 ? 0 : Math.round((i / (count - 1)) * (total - size)),
      vertexCount: size,
    }
  })
}

/** Options of the browser benchmark. */
export interface BrowserBenchInit {
  /** Chromium's flags (default `headlessChromiumFlags`: SwiftShader). Pass a GPU machine's own, e.g. `--use-angle=vulkan`. */
  chromiumFlags?: readonly string[]
  /** How long each frame-pacing measurement runs, ms (default 5000). */
  durationMs?: number
  /** The data set (default templeSparseRing from the shared data folder). */
  dataset?: MultiViewDataset
  /** Vertices per axis of the job (default 128). */
  grid?: number
  /** Vertices per block (default `partitionDefaults.blockVertices`, what the coordinator hands out). */
  blockVertices?: number
  /** Blocks per measured round, spread over cameras and the grid (default 16). */
  blocks?: number
  /**
   * Build the web app before measuring (default true: figures from a stale dist/web would measure old
   * shaders). Building empties dist/web, so pass false while browser tests run from the same checkout.
   */
  buildWebApp?: boolean
  /** Called as the steps complete: (steps done, steps in all). */
  onProgress?: (done: number, total: number) => void
}

/** What the browser benchmark measured, all in one Chromium on the same blocks. */
export interface BrowserBenchReport {
  /** Vertex views (vertices × blocks) the WebGL 2 worker colours per second, readback and CPU fix-ups included. */
  webglVertexViewsPerSec: number
  /** The same with the WebGL 1 fallback. */
  webgl1VertexViewsPerSec: number
  /** The same with the CPU worker in the page (one core, the browser's JavaScript). */
  cpuVertexViewsPerSec: number
  /** Share of vertex views the GPU flagged as near a rounding boundary and left to the CPU. */
  flaggedShare: number
  /** requestAnimationFrame intervals while the WebGL 2 worker computes at `dutyCycle`, ms. */
  frameTimeMs: { p50: number; p95: number; max: number }
  /** requestAnimationFrame intervals of the same page at rest, ms. */
  idleFrameTimeMs: { p50: number; p95: number; max: number }
  /** The GPU as the browser names it (SwiftShader on a machine without one). */
  renderer: string
  /** The duty cycle of the frame-pacing measurement (`schedulingDefaults.dutyCycle`). */
  dutyCycle: number
  grid: number
  blockVertices: number
}

/**
 * Measures the browser participant's backends in headless Chromium on the templeSparseRing job: WebGL 2,
 * WebGL 1 and CPU throughput on the same blocks (after a warm-up round that fetches, decodes and
 * uploads every frame), the share of flagged vertices, and the page's frame pacing at rest and while
 * computing within the default duty cycle.
 */
export async function runBrowserBench(init: BrowserBenchInit = {}): Promise<BrowserBenchReport> {
  const durationMs = init.durationMs ?? 5000
  const grid = init.grid ?? 128
  const blockVertices = init.blockVertices ?? partitionDefaults.blockVertices
  const dutyCycle = schedulingDefaults.dutyCycle
  let dataset = init.dataset
  if (dataset === undefined) {
    const dir = defaultDataset()
    if (dir === undefined) throw new DatasetError('templeSparseRing not found in the shared data folder')
    dataset = await loadMiddlebury(dir)
  }
  const steps = 7
  const progress = (done: number) => init.onProgress?.(done, steps)
  const bench = await openBenchPage({
    dataset,
    chromiumFlags: init.chromiumFlags ?? headlessChromiumFlags,
    build: init.buildWebApp ?? true,
  })
  try {
    progress(1)
    const job = datasetJob(dataset, grid)
    const blocks = spreadBlocks(job, bench.frames, init.blocks ?? 16, blockVertices)
    // Warm-up: every frame fetched and decoded (and its summed-area table built) once, then each
    // backend's program compiled on two blocks. Frame textures are not kept warm: the round cycles
    // through more cameras than the worker's texture cache holds, as a participant meets new frames.
    await bench.run({ backend: 'cpu', job, blocks, omitColours: true })
    const throughput = async (backend: 'webgl2' | 'webgl1' | 'cpu', repeat: number) => {
      await bench.run({ backend, job, blocks: blocks.slice(0, 2), omitColours: true })
      const report = await bench.run({ backend, job, blocks, repeat, omitColours: true })
      const ms = report.repeatMs.reduce((a, b) => a + b, 0)
      return { report, perSec: Math.round((report.vertexViews * repeat * 1000) / ms) }
    }
    const webgl = await throughput('webgl2', 3)
    progress(2)
    const webgl1 = await throughput('webgl1', 1)
    progress(3)
    const cpu = await throughput('cpu', 3)
    progress(4)
    const idle = await bench.frameTimes({ backend: 'idle', job, blocks, durationMs, dutyCycle })
    progress(5)
    const busy = await bench.frameTimes({ backend: 'webgl2', job, blocks, durationMs, dutyCycle })
    progress(6)
    if (bench.pageErrors.length > 0) throw new Error(`the bench page failed: ${bench.pageErrors.join('; ')}`)
    progress(7)
    return {
      webglVertexViewsPerSec: webgl.perSec,
      webgl1VertexViewsPerSec: webgl1.perSec,
      cpuVertexViewsPerSec: cpu.perSec,
      flaggedShare: webgl.report.flaggedVertices / webgl.report.verticesColoured,
      frameTimeMs: { p50: busy.p50, p95: busy.p95, max: busy.max },
      idleFrameTimeMs: { p50: idle.p50, p95: idle.p95, max: idle.max },
      renderer: webgl.report.renderer,
      dutyCycle,
      grid,
      blockVertices,
    }
  } finally {
    await bench.close()
  }
}
