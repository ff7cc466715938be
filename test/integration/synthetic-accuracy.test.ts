import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import { defaultScene, writeSyntheticDataset } from '../../peer/datasets/synthetic.ts'
import { runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { scoreSynthetic } from '../../peer/quality/synthetic-score.ts'

describe('synthetic scene with known ground truth', () => {
  it('colours ≥ 95 % of surface vertices within ±16 per channel and ≤ 2 % of free space (64³, 24 cameras)', async () => {
    const scene = defaultScene()
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-synthetic-'))
    await writeSyntheticDataset(scene, dir)
    const dataset = await loadMiddlebury(dir)
    expect(dataset.cameras).toHaveLength(24)
    const run = await runLocalJob({ dataset, grid: 64, participants: 2 })
    const score = scoreSynthetic(scene, run.job.space, run.outcome, 16)
    // Measured: 0.9571 of 5014 surface vertices, 0.00045 of free space.
    expect(score.surfaceAccuracy).toBeGreaterThanOrEqual(0.955)
    expect(score.freeSpaceColoured).toBeLessThanOrEqual(0.001)
    expect(score.surfaceVertices).toBe(5014)
  })

  it('plain voting without the occlusion-aware pass scores worse (the pass earns its place)', async () => {
    const scene = defaultScene()
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-synthetic-'))
    await writeSyntheticDataset(scene, dir)
    const dataset = await loadMiddlebury(dir)
    const plain = await runLocalJob({ dataset, grid: 64, outcomeRule: { occlusionAware: false } })
    const score = scoreSynthetic(scene, plain.job.space, plain.outcome, 16)
    expect(score.surfaceAccuracy).toBeLessThan(0.9)
  })
})
