import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import { FrameAggregation } from '../../peer/jobs/vertex/aggregator.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import {
  type CameraWork,
  controlState,
  inThread,
  type CameraRunner,
} from '../../peer/jobs/vertex/camera-work.ts'
import { alphaForCoverage } from '../../peer/jobs/vertex/sampling.ts'
import { outcomeDefaults } from '../../peer/jobs/vertex/defaults.ts'
import type { DepthSweepRule } from '../../peer/jobs/vertex/depth-sweep.ts'
import { Decision, decideFrame, type FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { SweepThreads } from '../../peer/jobs/vertex/sweep-threads.ts'
import { DecideThread, DecisionFailedError } from '../../peer/jobs/vertex/decide-thread.ts'
import type { VertexJob } from '../../peer/jobs/vertex/block.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * The depth sweep spread over threads decides exactly what one thread decides: the cameras are
 * independent and a camera sets the same bits whoever computes it. templeSparseRing at 64³, every
 * block coloured by the CPU worker.
 */

let job: VertexJob
let aggregation: FrameAggregation
let reference: FrameOutcome
const threads = new SweepThreads(1)

beforeAll(async () => {
  const dataset = await loadMiddlebury(templeDir)
  job = datasetJob(dataset, 64)
  aggregation = new FrameAggregation({
    jobId: job.jobId,
    frameIndex: 0,
    cameraIds: job.cameras.map((c) => c.id),
    totalVertices: 64 ** 3,
    minCoverageAlpha: alphaForCoverage(outcomeDefaults.minCoverage),
  })
  const frames = frameSource()
  for (const frame of dataset.frames) {
    const image = await frames.get(frame.imageUrl)
    for (const block of partitionFrame(job.jobId, { ...frame, index: 0 }, 64 ** 3, 65_536))
      aggregation.add(colourBlock(job, block, image))
  }
  reference = decideFrame(aggregation, job.space, job.cameras, { sweepPasses: 1 }, inThread)
}, 60_000)

afterAll(() => threads.close())

const carved = (outcome: FrameOutcome) => outcome.decision.filter((d) => d === Decision.inconsistent).length

describe('the depth sweep over threads', () => {
  it('carves phantoms of the hull here, and the same ones whether one thread or two sweep', async () => {
    expect(carved(reference)).toBeGreaterThan(1000)
    await threads.ready()
    for (let run = 0; run < 3; run++) {
      const outcome = decideFrame(aggregation, job.space, job.cameras, { sweepPasses: 1 }, threads)
      expect(Buffer.compare(outcome.decision, reference.decision)).toBe(0)
      expect(Buffer.compare(outcome.colour, reference.colour)).toBe(0)
    }
    // The helper thread took part: the cameras it swept are in the same outcome.
    expect(threads.statistics.helped).toBeGreaterThan(0)
  })

  it('computes a camera another thread claimed and never finished (a helper that died)', () => {
    // A runner over the real threads' shared memory whose input says camera 0 is claimed already.
    const stalled: CameraRunner = {
      allocate: (bytes) => threads.allocate(bytes),
      run(input: CameraWork) {
        expect(input.control.buffer).toBeInstanceOf(SharedArrayBuffer)
        Atomics.store(input.control, 0, 1)
        Atomics.store(input.control, controlState(0), 1)
        threads.run(input)
        expect(Atomics.load(input.control, controlState(0))).toBe(1)
      },
    }
    const outcome = decideFrame(aggregation, job.space, job.cameras, { sweepPasses: 1 }, stalled)
    expect(Buffer.compare(outcome.decision, reference.decision)).toBe(0)
    // Without camera 0's rays the carving differs: the test would see a caller that skipped it.
    const withoutCamera0: CameraRunner = {
      allocate: (bytes) => new ArrayBuffer(bytes),
      run(input: CameraWork) {
        Atomics.store(input.control, 0, 1)
        inThread.run(input)
      },
    }
    const skipped = decideFrame(aggregation, job.space, job.cameras, { sweepPasses: 1 }, withoutCamera0)
    expect(Buffer.compare(skipped.decision, reference.decision)).not.toBe(0)
  })
})

/** A copy of the frame's aggregation: a decider takes the one it is given (its arrays move). */
function copyOf(source: FrameAggregation): FrameAggregation {
  const copy = new FrameAggregation({
    jobId: source.jobId,
    frameIndex: source.frameIndex,
    cameraIds: source.cameraIds,
    totalVertices: source.totalVertices,
    minCoverageAlpha: alphaForCoverage(outcomeDefaults.minCoverage),
  })
  source.planes.forEach((plane, slot) => copy.planes[slot]!.set(plane))
  copy.seen.set(source.seen)
  copy.background.set(source.background)
  return copy
}

describe('cross-checked carving', () => {
  it('carves where two cameras confirm a looser agreement, and not where one alone finds it', () => {
    // The sweep's carving alone: no refinement, no peel, so every inconsistent vertex is the sweep's.
    const carvedBy = (sweep: Partial<DepthSweepRule>) => {
      const outcome = decideFrame(
        aggregation,
        job.space,
        job.cameras,
        {
          refineSurface: false,
          peelSurface: false,
          depthSweep: { ...outcomeDefaults.depthSweep, ...sweep },
        },
        inThread,
      )
      const ids = new Set<number>()
      outcome.decision.forEach((d, v) => {
        if (d === Decision.inconsistent) ids.add(v)
      })
      return ids
    }
    const strict = carvedBy({ confirmingCameras: Number.POSITIVE_INFINITY })
    const confirmed = carvedBy({})
    const single = carvedBy({ confirmingCameras: 1 })
    expect(outcomeDefaults.depthSweep.confirmingCameras).toBe(2)
    // Every strict carve stands; the confirmed ones add to it; one camera's looser match would add more.
    expect([...strict].filter((v) => !confirmed.has(v))).toEqual([])
    expect([...confirmed].filter((v) => !single.has(v))).toEqual([])
    expect(confirmed.size).toBeGreaterThan(strict.size)
    expect(single.size).toBeGreaterThan(confirmed.size)
  })
})

describe('deciding a frame in a thread of its own', () => {
  it('decides what the event loop decides, while the loop goes on serving', async () => {
    const decider = new DecideThread({ sweepThreads: 1 })
    try {
      await decider.ready()
      let ticks = 0
      const ticking = setInterval(() => ticks++, 5)
      const outcome = await decider.decide(copyOf(aggregation), job.space, job.cameras, { sweepPasses: 1 })
      clearInterval(ticking)
      for (const field of ['decision', 'colour', 'views', 'votes'] as const)
        expect(Buffer.compare(outcome[field], reference[field]), field).toBe(0)
      expect(outcome).toMatchObject({ frameIndex: 0, coloured: reference.coloured, resolution: [64, 64, 64] })
      // The loop ran while the thread decided (deciding on the loop, no timer could run at all).
      expect(ticks).toBeGreaterThan(2)
      // What was handed over is gone from here: nothing can read a frame the thread is deciding.
      const handed = copyOf(aggregation)
      const second = decider.decide(handed, job.space, job.cameras, { sweepPasses: 1 })
      expect(handed.planes[0]!.length).toBe(0)
      expect(Buffer.compare((await second).decision, reference.decision)).toBe(0)
    } finally {
      await decider.close()
    }
  }, 60_000)

  it('fails a frame it cannot decide, and one it held when closed, with the reason', async () => {
    const decider = new DecideThread({ sweepThreads: 0 })
    // A camera of the frame that the job does not have: decideFrame throws in the thread.
    await expect(
      decider.decide(copyOf(aggregation), job.space, job.cameras.slice(1), { sweepPasses: 1 }),
    ).rejects.toThrow(
      new DecisionFailedError(`camera ${job.cameras[0]!.id} of the aggregation is not in the job`),
    )
    // The thread is still there for the next frame.
    const next = await decider.decide(copyOf(aggregation), job.space, job.cameras, { sweepPasses: 0 })
    expect(next.coloured).toBeGreaterThan(0)
    const held = decider.decide(copyOf(aggregation), job.space, job.cameras, { sweepPasses: 1 })
    const failed = expect(held).rejects.toThrow('the deciding thread was closed')
    await decider.close()
    await failed
    await expect(
      decider.decide(copyOf(aggregation), job.space, job.cameras, { sweepPasses: 1 }),
    ).rejects.toThrow('the deciding thread is closed')
  }, 60_000)
})
