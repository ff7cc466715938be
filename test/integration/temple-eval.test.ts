import { describe, expect, it } from 'vitest'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import { evaluateHoldout, type HoldoutScore, naiveMethod } from '../../peer/quality/evaluate.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * Quality on one harness (issue 18): crowdmesh's method and the naive reference method, each
 * rendered into the held-out views 0, 4, 8 and 12 of templeSparseRing by the same two renderers and
 * scored by the same scorer, in the same run. The contract figures (1-pixel splats) decide.
 */
describe('templeSparseRing, leave one out at 128³, both methods on one harness', () => {
  it('scores both methods with the contract renderer and the footprint renderer alike', async () => {
    const set = await loadMiddlebury(templeDir)
    const views = [0, 4, 8, 12].map((i) => set.cameras[i]!)
    const ours: HoldoutScore[] = []
    const naive: HoldoutScore[] = []
    for (const view of views) {
      ours.push(await evaluateHoldout(set, view, { grid: 128 }))
      naive.push(await evaluateHoldout(set, view, { grid: 128, ...naiveMethod }))
    }
    const mean = (scores: HoldoutScore[], f: (s: HoldoutScore) => number) =>
      scores.reduce((a, s) => a + f(s), 0) / scores.length
    const psnr = (s: HoldoutScore) => s.psnr
    const iou = (s: HoldoutScore) => s.iou
    // Measured (README, "Quality, measured"): ours 20.39 dB / 0.861 with the depth sweep and the
    // surface refinement (20.13 / 0.857 without the refinement), naive 18.30 dB / 0.847. The
    // issue's targets, PSNR ≥ naive + 2.0 dB and IoU ≥ naive − 0.01, are held here as they are.
    expect(mean(ours, psnr)).toBeGreaterThanOrEqual(mean(naive, psnr) + 2.0)
    expect(mean(ours, iou)).toBeGreaterThanOrEqual(mean(naive, iou) - 0.01)
    // The footprint renderer, for both methods alike: ours 20.33 dB, naive 18.24 dB.
    expect(mean(ours, (s) => s.footprint.psnr)).toBeGreaterThan(mean(naive, (s) => s.footprint.psnr) + 1.5)
    // The model is a solid: the surface and the interior it colours.
    for (const s of ours) expect(s.modelVertices).toBeGreaterThan(2 * s.colouredVertices)
    for (const s of [...ours, ...naive]) {
      expect(s.psnr).toBeGreaterThan(16)
      expect(s.iou).toBeGreaterThan(0.75)
      expect(s.colouredVertices).toBeGreaterThan(40_000)
    }
  })
})
