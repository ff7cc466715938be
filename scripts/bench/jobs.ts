import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import type { MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { type ImageFilterJob, imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec, TaskBase } from '../../peer/jobs/kind.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { type RunningEvent, startEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'

/** Options of the two-job measurement. */
export interface JobsBenchInit {
  dataset: MultiViewDataset
  /** Node participant processes (default 1: on a 2-core machine, one beside the coordinator). */
  participants?: number
  /** The live vertex job's grid and frame rate. */
  grid?: number
  fps?: number
  /** Length of each measured phase, s. */
  seconds?: number
  onProgress?: (done: number, total: number) => void
}

/** What it measured. */
export interface JobsBenchReport {
  participants: number
  grid: number
  fps: number
  seconds: number
  /** Live frame latency (arrival to outcome), alone and beside the batch job, ms. */
  liveAloneMs: { p50: number; p95: number; frames: number }
  liveWithBatchMs: { p50: number; p95: number; frames: number }
  /** p50 beside the batch job ÷ p50 alone (target ≤ 1.2). */
  liveLatencyRatio: number
  /** The crowd's throughput on each kind alone, in the kind's units a second. */
  liveUnitsPerSec: number
  batchUnitsPerSec: number
  /** Of the capacity the live job left, the share the batch job used (target ≥ 0.8). */
  batchShareOfLeftover: number
}

function percentiles(values: number[]): { p50: number; p95: number; frames: number } {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  return { p50: Math.round(at(0.5)), p95: Math.round(at(0.95)), frames: values.length }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * A live vertex job and a batch image-filter job in one event over the real mesh (loopback, Node
 * participant processes), in three phases on the same event and participants:
 * 1. the live job alone, frames at `fps`: its frame latency;
 * 2. each kind alone with work queued so it never runs dry: the crowd's throughput in that kind's
 *    units a second (vertex frames queued at once; photographs kept queued);
 * 3. both: the live job's frame latency again; the live job's units over its throughput give the
 *    share of the crowd's time it took, and the batch job's units over what its throughput would
 *    give in the rest of the time is its share of the leftover capacity.
 * Both jobs run through the same coordinator, protocol and participants; only the job set changes.
 */
export async function runJobsBench(init: JobsBenchInit): Promise<JobsBenchReport> {
  const participants = init.participants ?? 1
  const grid = init.grid ?? 32
  const fps = init.fps ?? 1
  const seconds = init.seconds ?? 20
  const show = vertexJobSpec(datasetJob(init.dataset, grid))
  const event = await startEvent({
    coordinator: { jobs: [{ spec: show, kind: vertexKind, class: 'live' }] },
    turn: 'off',
  })
  const crowd: ParticipantProcess[] = []
  const total = 4
  let phase = 0
  try {
    for (let i = 0; i < participants; i++)
      crowd.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    for (const p of crowd) await p.waitFor('welcome', 60_000)
    const photos = init.dataset.frames.map((f) => {
      const camera = init.dataset.cameras.find((c) => c.id === f.cameraId)!
      return { imageUrl: f.imageUrl, width: camera.width, height: camera.height }
    })
    // Units counted per job (in its kind's units), as results arrive.
    const counted = new Map<string, number>()
    event.coordinator.on('blockDone', ({ block, threads }: { block: TaskBase; threads: number }) => {
      counted.set(block.jobId, (counted.get(block.jobId) ?? 0) + threads)
    })
    const latencies: number[] = []
    event.coordinator.on('frameComplete', (_: unknown, report: FrameReport) => {
      if (report.jobId === show.jobId) latencies.push(report.latencyMs)
    })
    let nextFrame = 0
    const runLive = async (): Promise<number[]> => {
      latencies.length = 0
      const first = nextFrame
      for (let k = 0; k < seconds * fps; k++) {
        for (const frame of init.dataset.frames) event.addFrame({ ...frame, index: nextFrame })
        nextFrame++
        await sleep(1000 / fps)
      }
      // Let the last frames finish (or miss) before the next phase.
      const deadline = Date.now() + 10_000
      while (latencies.length < nextFrame - first && Date.now() < deadline) await sleep(100)
      return [...latencies]
    }
    let batchJobs = 0
    const startBatch = (): { jobId: string; stop: () => void } => {
      const spec: JobSpec<ImageFilterJob> = {
        jobId: `photos-${batchJobs++}`,
        kind: imageFilterKind.name,
        version: imageFilterKind.version,
        description: { filter: { type: 'gaussian', radius: 2, sigma: 1 }, tile: 512 },
      }
      event.coordinator.addJob({ spec, kind: imageFilterKind })
      let round = 0
      // Keeps a few photographs queued so the batch job never runs dry.
      const feed = () => {
        while (round < 1_000_000 && openRounds(event, spec.jobId) < 4) {
          event.addInput(spec.jobId, round, photos[round % photos.length]!)
          round++
        }
      }
      feed()
      const timer = setInterval(feed, 100)
      return {
        jobId: spec.jobId,
        stop: () => {
          clearInterval(timer)
          event.coordinator.endJob(spec.jobId)
        },
      }
    }

    // 1. Live alone. A warm-up frame first, so every participant has measured its speed.
    await runLiveWarmUp(event, init.dataset, nextFrame++)
    const alone = await runLive()
    init.onProgress?.(++phase, total)

    // 2. Each kind's throughput alone: vertex frames queued at once, then photographs kept queued.
    const saturation = Math.max(4, Math.round(seconds / 3))
    const liveStarted = performance.now()
    const liveCounted = counted.get(show.jobId) ?? 0
    const last = nextFrame + saturation - 1
    const saturated = new Promise<void>((resolve) => {
      const on = (_: unknown, report: FrameReport) => {
        if (report.jobId !== show.jobId || report.frameIndex !== last) return
        event.coordinator.off('frameComplete', on)
        resolve()
      }
      event.coordinator.on('frameComplete', on)
    })
    for (let k = 0; k < saturation; k++) {
      for (const frame of init.dataset.frames) event.addFrame({ ...frame, index: nextFrame })
      nextFrame++
    }
    await saturated
    const liveRate =
      ((counted.get(show.jobId) ?? 0) - liveCounted) / ((performance.now() - liveStarted) / 1000)
    init.onProgress?.(++phase, total)
    const capacityRun = startBatch()
    await sleep(3000)
    const before = counted.get(capacityRun.jobId) ?? 0
    const started = performance.now()
    await sleep(seconds * 1000)
    const batchRate =
      ((counted.get(capacityRun.jobId) ?? 0) - before) / ((performance.now() - started) / 1000)
    capacityRun.stop()
    init.onProgress?.(++phase, total)

    // 3. Both.
    const both = startBatch()
    await sleep(2000)
    const batchBefore = counted.get(both.jobId) ?? 0
    const liveBefore = counted.get(show.jobId) ?? 0
    const bothStarted = performance.now()
    const beside = await runLive()
    const elapsed = (performance.now() - bothStarted) / 1000
    const batchUnits = (counted.get(both.jobId) ?? 0) - batchBefore
    const liveUnits = (counted.get(show.jobId) ?? 0) - liveBefore
    both.stop()
    init.onProgress?.(++phase, total)

    const liveAloneMs = percentiles(alone)
    const liveWithBatchMs = percentiles(beside)
    return {
      participants,
      grid,
      fps,
      seconds,
      liveAloneMs,
      liveWithBatchMs,
      liveLatencyRatio: Math.round((liveWithBatchMs.p50 / liveAloneMs.p50) * 100) / 100,
      liveUnitsPerSec: Math.round(liveRate),
      batchUnitsPerSec: Math.round(batchRate),
      // The share of the crowd's time the live job took, from its own throughput; the batch job's
      // units against what its throughput gives in the rest.
      batchShareOfLeftover:
        Math.round(
          (batchUnits / Math.max(1, (1 - liveUnits / (liveRate * elapsed)) * batchRate * elapsed)) * 100,
        ) / 100,
    }
  } finally {
    await Promise.all(crowd.map((p) => p.stop('SIGKILL')))
    await event.stop()
  }
}

/** Open rounds of a job (complete ones leave the coordinator's queue). */
function openRounds(event: RunningEvent, jobId: string): number {
  return event.coordinator.openRounds(jobId)
}

/** One live frame, waited for. */
async function runLiveWarmUp(event: RunningEvent, dataset: MultiViewDataset, index: number): Promise<void> {
  const done = new Promise<void>((resolve) => {
    const on = (_: unknown, report: FrameReport) => {
      if (report.frameIndex !== index || report.jobId !== event.coordinator.jobs[0]!.jobId) return
      event.coordinator.off('frameComplete', on)
      resolve()
    }
    event.coordinator.on('frameComplete', on)
  })
  for (const frame of dataset.frames) event.addFrame({ ...frame, index })
  await done
}
