import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FrameAggregation } from '../../peer/jobs/vertex/aggregator.ts'
import { Decision, decideFrame } from '../../peer/jobs/vertex/outcome.ts'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { frameImage } from '../../peer/participant/frame-image.ts'
import type { BlockResult } from '../../peer/jobs/vertex/block.ts'
import { testCamera, testJob } from '../support/fixtures.ts'

/** Four cameras around a bright ball on black: real thread results from the CPU worker. */
function scene(n: number, blockSize: number) {
  const cameras = [0, 1, 2, 3].map((id) => {
    const a = (id * Math.PI) / 2
    // Rotation about y by a: the camera circles the origin at distance 2.
    const r = [Math.cos(a), 0, -Math.sin(a), 0, 1, 0, Math.sin(a), 0, Math.cos(a)]
    return { ...testCamera(id), r, t: [0, 0, 2] }
  })
  const job = testJob(n, cameras, 60)
  const results: BlockResult[] = []
  for (const camera of cameras) {
    const rgba = new Uint8Array(64 * 48 * 4)
    for (let y = 0; y < 48; y++) {
      for (let x = 0; x < 64; x++) {
        const inside = (x - 32) ** 2 + (y - 24) ** 2 < 12 ** 2
        rgba.set(
          inside ? [200 - camera.id * 20, 80 + (x % 7), 40 + camera.id * 10, 255] : [0, 0, 0, 255],
          (y * 64 + x) * 4,
        )
      }
    }
    const image = frameImage(64, 48, rgba)
    const frame = { cameraId: camera.id, index: 0, captureTime: 0, imageUrl: 'file:///x.png' }
    for (const block of partitionFrame(job.jobId, frame, n ** 3, blockSize))
      results.push(colourBlock(job, block, image))
  }
  return { job, results }
}

function aggregate(job: ReturnType<typeof testJob>, results: BlockResult[]) {
  const aggregation = new FrameAggregation({
    jobId: job.jobId,
    frameIndex: 0,
    cameraIds: job.cameras.map((c) => c.id),
    totalVertices: job.space.resolution[0] ** 3,
    minCoverageAlpha: 77,
  })
  const verdicts = results.map((r) => aggregation.add(r))
  return { aggregation, verdicts }
}

describe('FrameAggregation', () => {
  const { job, results } = scene(10, 37)
  const inOrder = aggregate(job, results).aggregation
  const reference = decideFrame(inOrder, job.space, job.cameras)

  it('decides a ball: some vertices coloured, the corners free space', () => {
    expect(inOrder.complete).toBe(true)
    expect(reference.coloured).toBeGreaterThan(20)
    expect(reference.decision[0]).toBe(Decision.freeSpace)
  })

  it('gives the same outcome whatever the arrival order and however many duplicates', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(results.length - 1), { maxLength: 60 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (duplicates, seed) => {
          const arrivals = [...results, ...duplicates.map((i) => results[i]!)]
          let s = seed
          for (let i = arrivals.length - 1; i > 0; i--) {
            s = (s * 1103515245 + 12345) >>> 0
            const j = s % (i + 1)
            ;[arrivals[i], arrivals[j]] = [arrivals[j]!, arrivals[i]!]
          }
          const { aggregation, verdicts } = aggregate(job, arrivals)
          expect(verdicts.filter((v) => v === 'added').length).toBe(results.length)
          expect(aggregation.stats.duplicateThreads).toBe(
            duplicates.reduce((a, i) => a + results[i]!.vertexCount, 0),
          )
          expect(aggregation.complete).toBe(true)
          const outcome = decideFrame(aggregation, job.space, job.cameras)
          expect(outcome.decision).toEqual(reference.decision)
          expect(outcome.colour).toEqual(reference.colour)
          expect(outcome.votes).toEqual(reference.votes)
        },
      ),
      { numRuns: 30 },
    )
  })

  it('is not complete until every thread of every camera arrived', () => {
    const { aggregation } = aggregate(job, results.slice(1))
    expect(aggregation.complete).toBe(false)
    expect(aggregation.stats.receivedThreads).toBe(
      aggregation.stats.expectedThreads - results[0]!.vertexCount,
    )
  })

  it('refuses a block overlapping a received one in part, and changes nothing', () => {
    const { aggregation } = aggregate(job, [results[0]!])
    const shifted = { ...results[0]!, firstVertex: results[0]!.firstVertex + 5 }
    expect(() => aggregation.add(shifted)).toThrow(expect.objectContaining({ name: 'BlockMismatchError' }))
    expect(aggregation.stats.receivedThreads).toBe(results[0]!.vertexCount)
  })

  it('refuses results of another job, frame or camera, or past the grid', () => {
    const { aggregation } = aggregate(job, [])
    const r = results[0]!
    for (const bad of [
      { ...r, jobId: 'other' },
      { ...r, frameIndex: 1 },
      { ...r, cameraId: 9 },
      { ...r, firstVertex: 999 },
    ]) {
      expect(() => aggregation.add(bad)).toThrow(expect.objectContaining({ name: 'BlockMismatchError' }))
    }
    expect(aggregation.stats.receivedThreads).toBe(0)
  })

  it('refuses a lying result: a colour on an unseen thread, or the wrong length', () => {
    const { aggregation } = aggregate(job, [])
    const r = results[0]!
    const colours = r.colours.slice()
    colours.set([10, 10, 10, 0], 0)
    expect(() => aggregation.add({ ...r, colours })).toThrow(
      expect.objectContaining({ name: 'InvalidMessageError' }),
    )
    expect(() => aggregation.add({ ...r, colours: r.colours.subarray(4) })).toThrow(
      expect.objectContaining({ name: 'InvalidMessageError' }),
    )
    expect(aggregation.stats.receivedThreads).toBe(0)
  })
})
