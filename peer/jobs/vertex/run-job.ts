import { monitorEventLoopDelay } from 'node:perf_hooks'
import { DecideThread } from './decide-thread.ts'
import { SweepThreads } from './sweep-threads.ts'
import { VertexCoordinator } from './coordinator.ts'
import type { FrameOutcome, OutcomeRule } from './outcome.ts'
import type { MultiViewDataset } from '../../datasets/middlebury.ts'
import { systemClock } from '../../protocol/clock.ts'
import { partitionDefaults, samplingDefaults } from './defaults.ts'
import { AbortError } from '../../protocol/errors.ts'
import type { VertexJob } from './block.ts'
import { targetSpace, vertexCount } from './target-space.ts'
import { threadMesh } from '../../local/thread-mesh.ts'

/** Options of one in-process run of the vertex-colouring job over a multi-view data set. */
export interface LocalJobInit {
  dataset: MultiViewDataset
  /** Vertices per axis (the grid is N³). */
  grid: number
  /** Camera ids left out of the job (a held-out view for evaluation). */
  excludeCameras?: readonly number[]
  /** Participant threads (default: one per core). */
  participants?: number
  /**
   * Fixed block size in vertices (default `partitionDefaults.blockVertices`). Threads on one machine
   * are equal and a round trip costs microseconds, so one size balances them best; the scheduler's
   * speed-sized blocks are for an unequal crowd on a network.
   */
  blockVertices?: number
  /** Brightness share at or below which a pixel is background (default `samplingDefaults.backgroundBrightness`). */
  backgroundBrightness?: number
  minCoverage?: number
  outcomeRule?: Partial<OutcomeRule>
  /**
   * Where the frame is decided: in a thread of its own (`DecideThread`, the default, as `crowdmesh
   * start` decides) or on the event loop (to measure what that costs the loop).
   */
  decideOn?: 'thread' | 'loop'
  signal?: AbortSignal
  /** Called as threads complete: (threads done, threads in all). */
  onProgress?: (done: number, total: number) => void
}

/** The result of a local run. */
export interface LocalJobResult {
  job: VertexJob
  outcome: FrameOutcome
  seconds: number
  participants: number
  /** The longest the event loop was held at once while the job ran, ms (10 ms resolution). */
  loopHeldMs: number
}

/** The vertex-colouring job over a data set's cameras on an N³ grid (the same job in-process and on the mesh). */
export function datasetJob(
  dataset: MultiViewDataset,
  grid: number,
  options: { excludeCameras?: readonly number[]; backgroundBrightness?: number } = {},
): VertexJob {
  const excluded = new Set(options.excludeCameras ?? [])
  return {
    jobId: `${dataset.name}-${grid}`,
    space: targetSpace(dataset.box, grid),
    cameras: dataset.cameras.filter((c) => !excluded.has(c.id)),
    maxAreaRadius: samplingDefaults.maxAreaRadius,
    backgroundSum: Math.round((options.backgroundBrightness ?? samplingDefaults.backgroundBrightness) * 765),
  }
}

/**
 * Runs the job end to end in this process: a coordinator, participant threads with the CPU worker,
 * every frame of the data set, until the frame outcome is decided.
 */
export async function runLocalJob(init: LocalJobInit): Promise<LocalJobResult> {
  const started = performance.now()
  const excluded = new Set(init.excludeCameras ?? [])
  const job = datasetJob(init.dataset, init.grid, init)
  const { cameras } = job
  // The frame is decided once every block is in, when the participant threads are idle, in a thread
  // of its own (as `crowdmesh start` decides): its depth sweep spreads over this machine's cores.
  const decider = init.decideOn === 'loop' ? undefined : new DecideThread()
  const warming = decider?.ready()
  const sweep = decider === undefined ? new SweepThreads() : undefined
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const coordinator = new VertexCoordinator(
    {
      job,
      blockVertices: init.blockVertices ?? partitionDefaults.blockVertices,
      ...(init.minCoverage !== undefined && { minCoverage: init.minCoverage }),
      ...(init.outcomeRule !== undefined && { outcomeRule: init.outcomeRule }),
      ...(decider !== undefined && { decider }),
      ...(sweep !== undefined && { sweep }),
    },
    { clock: systemClock },
  )
  const total = vertexCount(job.space) * cameras.length
  let done = 0
  const onBlockDone = ({ threads }: { threads: number }) => {
    done += threads
    init.onProgress?.(done, total)
  }
  coordinator.on('blockDone', onBlockDone)
  let onAbort: (() => void) | undefined
  const outcome = new Promise<FrameOutcome>((resolve, reject) => {
    coordinator.once('frameComplete', resolve)
    onAbort = () => reject(new AbortError())
    init.signal?.addEventListener('abort', onAbort, { once: true })
  })
  const [mesh] = await Promise.all([
    threadMesh(coordinator, init.participants !== undefined ? { participants: init.participants } : {}),
    warming,
  ])
  try {
    for (const frame of init.dataset.frames) if (!excluded.has(frame.cameraId)) coordinator.addFrame(frame)
    const result = await outcome
    const seconds = (performance.now() - started) / 1000
    // A loop held until the outcome came is only sampled once it runs again.
    await new Promise((resolve) => setTimeout(resolve, 20))
    return {
      job,
      outcome: result,
      seconds,
      participants: mesh.participants,
      loopHeldMs: Math.round(loop.max / 1e6),
    }
  } finally {
    if (onAbort !== undefined) init.signal?.removeEventListener('abort', onAbort)
    coordinator.off('blockDone', onBlockDone)
    coordinator.stop()
    loop.disable()
    await Promise.all([mesh.stop(), decider?.close(), sweep?.close()])
  }
}
