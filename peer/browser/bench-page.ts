import { dutyCyclePauseMs } from '../participant/capability-meter.ts'
import { cpuWorker } from '../jobs/vertex/cpu-worker.ts'
import type { BlockWorker } from '../jobs/vertex/block.ts'
import type { Block, VertexJob } from '../jobs/vertex/block.ts'
import type {
  BenchBackend,
  BenchError,
  BenchRunReport,
  CrowdmeshBench,
  FrameTimesReport,
  LoseContextReport,
  ProbeReport,
} from './bench-api.ts'
import { browserFrameSource } from './frame-decode.ts'
import { createWebglWorker, type WebglWorker } from '../jobs/vertex/webgl-worker.ts'

// The page script of web/bench.html: the WebGL worker, the CPU worker and the browser's frame
// decoding, driven from Node through `window.crowdmeshBench` (see bench-api.ts).

const frames = browserFrameSource()
const workers = new Map<BenchBackend, { worker: BlockWorker; gl: WebglWorker | undefined }>()

function workerFor(backend: BenchBackend): { worker: BlockWorker; gl: WebglWorker | undefined } {
  let entry = workers.get(backend)
  if (entry === undefined) {
    if (backend === 'cpu') {
      entry = { worker: cpuWorker({ frames }), gl: undefined }
    } else {
      const gl = createWebglWorker({ frames, backend })
      entry = { worker: gl, gl }
    }
    workers.set(backend, entry)
  }
  return entry
}

function base64(bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(text)
}

function errorReport(error: unknown): BenchError {
  return error instanceof Error
    ? { name: error.name, message: error.message }
    : { name: 'Error', message: String(error) }
}

async function settled(promise: Promise<unknown>): Promise<BenchError | undefined> {
  try {
    await promise
    return undefined
  } catch (error) {
    return errorReport(error)
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Rejects when `promise` takes longer than `ms`: a drill that hangs says what it waited for. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

const bench: CrowdmeshBench = {
  // eslint-disable-next-line @typescript-eslint/require-await -- the API is async to cross page.evaluate alike
  async probe(backend): Promise<ProbeReport> {
    try {
      const worker = createWebglWorker(backend === undefined ? { frames } : { frames, backend })
      const report = { backend: worker.backend, renderer: worker.renderer }
      worker.dispose()
      return report
    } catch (error) {
      return { error: errorReport(error) }
    }
  },

  async run(request): Promise<BenchRunReport> {
    const { worker, gl } = workerFor(request.backend)
    const repeat = request.repeat ?? 1
    const flaggedBefore = gl?.flaggedVertices ?? 0
    const colouredBefore = gl?.verticesColoured ?? 0
    const repeatMs: number[] = []
    let colours: string[] = []
    let coloured = 0
    for (let r = 0; r < repeat; r++) {
      const last = r === repeat - 1
      const results: Uint8Array[] = []
      const started = performance.now()
      for (const block of request.blocks) {
        const result = await worker.run(request.job, block)
        coloured += block.vertexCount
        if (last && request.omitColours !== true) results.push(result.colours)
      }
      repeatMs.push(performance.now() - started)
      if (last) colours = results.map(base64)
    }
    return {
      backend: request.backend,
      renderer: gl?.renderer ?? 'cpu',
      colours,
      repeatMs,
      vertexViews: request.blocks.reduce((sum, b) => sum + b.vertexCount, 0),
      verticesColoured: gl === undefined ? coloured : gl.verticesColoured - colouredBefore,
      flaggedVertices: gl === undefined ? 0 : gl.flaggedVertices - flaggedBefore,
      workerVertexViewsPerSec: gl?.vertexViewsPerSec ?? 0,
    }
  },

  async loseContextDuring({ backend, job, block }): Promise<LoseContextReport> {
    const canvas = new OffscreenCanvas(1, 1)
    // Draws of about a millisecond: the block spans many, so the loss lands in the middle of it.
    const worker = createWebglWorker({ frames, backend, canvas, targetDrawMs: 1, firstDrawVertices: 1024 })
    try {
      const gl = canvas.getContext(backend === 'webgl2' ? 'webgl2' : 'webgl') as WebGLRenderingContext
      const lose = gl.getExtension('WEBGL_lose_context')
      if (lose === null) throw new Error('this browser has no WEBGL_lose_context')
      await worker.run(job, block)
      const lost = new Promise((resolve) =>
        canvas.addEventListener('webglcontextlost', resolve, { once: true }),
      )
      const restored = new Promise((resolve) =>
        canvas.addEventListener('webglcontextrestored', resolve, { once: true }),
      )
      const during = worker.run(job, block)
      // One task later the block has drawn its first chunks and waits on the GPU.
      await pause(0)
      lose.loseContext()
      const duringBlock = await settled(within(during, 30_000, 'the block in progress to end'))
      await within(lost, 10_000, 'webglcontextlost')
      const whileLost = await settled(within(worker.run(job, block), 30_000, 'a block while lost to end'))
      // Still inside the lost event's dispatch (microtasks run between listeners) Chromium has not yet
      // recorded that the worker allowed a restore, and would refuse it: restore a task later.
      await pause(0)
      lose.restoreContext()
      await within(restored, 10_000, 'webglcontextrestored')
      const again = await within(worker.run(job, block), 30_000, 'a block after the restore')
      return { duringBlock, whileLost, afterRestore: base64(again.colours) }
    } finally {
      worker.dispose()
    }
  },

  async frameTimes(request): Promise<FrameTimesReport> {
    const intervals: number[] = []
    let last: number | undefined
    let running = true
    const tick = (now: number) => {
      if (last !== undefined) intervals.push(now - last)
      last = now
      if (running) requestAnimationFrame(tick)
    }
    requestAnimationFrame(tick)
    const end = performance.now() + request.durationMs
    let blocksDone = 0
    let vertexViews = 0
    let busyMs = 0
    if (request.backend === 'idle') {
      await pause(request.durationMs)
    } else {
      const { worker } = workerFor(request.backend)
      const blocks: readonly Block[] = request.blocks
      const job: VertexJob = request.job
      for (let i = 0; performance.now() < end; i++) {
        const block = blocks[i % blocks.length]!
        const started = performance.now()
        await worker.run(job, block)
        const busy = performance.now() - started
        busyMs += busy
        blocksDone++
        vertexViews += block.vertexCount
        await pause(dutyCyclePauseMs(busy, request.dutyCycle))
      }
    }
    running = false
    const sorted = intervals.sort((a, b) => a - b)
    const round = (ms: number) => Math.round(ms * 10) / 10
    return {
      frames: sorted.length,
      p50: round(percentile(sorted, 0.5)),
      p95: round(percentile(sorted, 0.95)),
      max: round(sorted.at(-1) ?? Number.NaN),
      blocksDone,
      vertexViews,
      busyMs: Math.round(busyMs),
    }
  },
}

window.crowdmeshBench = bench
document.body.dataset.ready = 'true'
