import type { Block, VertexJob } from '../jobs/vertex/block.ts'

// The API web/bench.html exposes as `window.crowdmeshBench`, which the WebGL tests and the browser
// benchmark call through Playwright's page.evaluate. Types only: Node imports it with `import type`.
// Everything crossing page.evaluate is structured-cloned, so colours travel as base64.

/** What computes a block in the page: the WebGL worker (2 or 1) or the CPU worker. */
export type BenchBackend = 'webgl2' | 'webgl1' | 'cpu'

/** A run of blocks in the page. */
export interface BenchRunRequest {
  backend: BenchBackend
  job: VertexJob
  blocks: readonly Block[]
  /** Times the blocks are computed one after another (default 1); colours come from the last time. */
  repeat?: number
  /** Leave the colours out of the report (a benchmark needs only the timing). */
  omitColours?: boolean
}

/** What a run measured. */
export interface BenchRunReport {
  backend: BenchBackend
  /** The GPU as the browser names it ('cpu' for the CPU worker). */
  renderer: string
  /** Each block's RGBA per vertex (`BlockResult.colours`), base64, in the order of the blocks. */
  colours: string[]
  /** Wall time of each repeat, ms. */
  repeatMs: number[]
  /** Vertex views in one repeat: the blocks' vertices summed. */
  vertexViews: number
  /** Vertices coloured in this run (all repeats) and those the GPU left to the CPU (0 for the CPU worker). */
  verticesColoured: number
  flaggedVertices: number
  /** The WebGL worker's own smoothed throughput after the run, vertex views/s (0 for the CPU worker). */
  workerVertexViewsPerSec: number
}

/** An error as it crosses page.evaluate: tests assert the name. */
export interface BenchError {
  name: string
  message: string
}

/** A context-loss drill on a fresh WebGL worker (its own canvas), whose draws are kept short so a block spans many. */
export interface LoseContextRequest {
  backend: 'webgl2' | 'webgl1'
  job: VertexJob
  block: Block
}

/** What the drill saw. */
export interface LoseContextReport {
  /** What the block in progress when the context was lost rejected with (undefined: it resolved). */
  duringBlock: BenchError | undefined
  /** What a block started while the context was still lost rejected with (undefined: it resolved). */
  whileLost: BenchError | undefined
  /** The block computed again after the context was restored: RGBA per vertex, base64. */
  afterRestore: string
}

/** Frame pacing of the page while it computes like a participant: blocks in a loop, each followed by its duty-cycle pause. */
export interface FrameTimesRequest {
  /** 'idle' computes nothing: the page's frame pacing at rest. */
  backend: BenchBackend | 'idle'
  job: VertexJob
  blocks: readonly Block[]
  durationMs: number
  /** Share of the time spent computing, (0, 1]; the pause after a block is `dutyCyclePauseMs`. */
  dutyCycle: number
}

/** requestAnimationFrame intervals, ms, and the work done meanwhile. */
export interface FrameTimesReport {
  frames: number
  p50: number
  p95: number
  max: number
  blocksDone: number
  vertexViews: number
  busyMs: number
}

/** Whether a WebGL worker can be created here, and on what. */
export type ProbeReport =
  | { backend: 'webgl2' | 'webgl1'; renderer: string; error?: undefined }
  | { error: BenchError; backend?: undefined; renderer?: undefined }

/** `window.crowdmeshBench`. */
export interface CrowdmeshBench {
  /** Creates (and disposes) a WebGL worker: `backend` only that one, else whichever the browser has. */
  probe(backend?: 'webgl2' | 'webgl1'): Promise<ProbeReport>
  run(request: BenchRunRequest): Promise<BenchRunReport>
  loseContextDuring(request: LoseContextRequest): Promise<LoseContextReport>
  frameTimes(request: FrameTimesRequest): Promise<FrameTimesReport>
}

declare global {
  interface Window {
    crowdmeshBench?: CrowdmeshBench
  }
}
