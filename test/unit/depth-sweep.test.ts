import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import { FrameAggregation } from '../../peer/jobs/vertex/aggregator.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import {
  controlState,
  inThread,
  type SweepInput,
  type SweepRunner,
} from '../../peer/jobs/vertex/depth-sweep.ts'
import { alphaForCoverage } from '../../peer/jobs/vertex/sampling.ts'
import { outcomeDefaults } from '../../peer/jobs/vertex/defaults.ts'
import { Decision, decideFrame, type FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { SweepThreads } from '../../peer/jobs/vertex/sweep-threads.ts'
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
    const stalled: SweepRunner = {
      allocate: (bytes) => threads.allocate(bytes),
      run(input: SweepInput) {
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
    const withoutCamera0: SweepRunner = {
      allocate: (bytes) => new ArrayBuffer(bytes),
      run(input: SweepInput) {
        Atomics.store(input.control, 0, 1)
        inThread.run(input)
      },
    }
    const skipped = decideFrame(aggregation, job.space, job.cameras, { sweepPasses: 1 }, withoutCamera0)
    expect(Buffer.compare(skipped.decision, reference.decision)).not.toBe(0)
  })
})
