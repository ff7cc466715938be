import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import {
  type TexturedScene,
  texturedInside,
  texturedScene,
  writeTexturedDataset,
} from '../../peer/datasets/textured-scene.ts'
import { Decision, type FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { type TargetSpace, vertexCentre, voxelEdge } from '../../peer/jobs/vertex/target-space.ts'
import { evaluateHoldout, type HoldoutScore, naiveMethod } from '../../peer/quality/evaluate.ts'

/*
 * Quality on data sets nobody tuned for (issue 18): the generated photoreal scenes, both methods on
 * one harness, on one held-out view, at half the README's image size and a coarser grid so the test
 * stays short. The
 * README's figures (640×480, 128³, every view) come from `crowdmesh eval --dataset arches|pots`.
 */
const folders: string[] = []
afterAll(async () => {
  for (const dir of folders) await rm(dir, { recursive: true, force: true })
})

describe.each(['arches', 'pots'] as const)(
  '%s, leave one out at 96³, both methods on one harness',
  (variant) => {
    it('crowdmesh leads the naive method on the contract renderer, with a silhouette as good', async () => {
      const dir = await mkdtemp(join(tmpdir(), `crowdmesh-${variant}-`))
      folders.push(dir)
      const scene = texturedScene({ variant, width: 320, height: 240 })
      await writeTexturedDataset(scene, dir)
      const set = await loadMiddlebury(dir)
      const ours: HoldoutScore[] = []
      const naive: HoldoutScore[] = []
      for (const view of [4].map((i) => set.cameras[i]!)) {
        ours.push(await evaluateHoldout(set, view, { grid: 96 }))
        naive.push(await evaluateHoldout(set, view, { grid: 96, ...naiveMethod }))
      }
      const mean = (scores: HoldoutScore[], f: (s: HoldoutScore) => number) =>
        scores.reduce((a, s) => a + f(s), 0) / scores.length
      const psnr = (s: HoldoutScore) => s.psnr
      const iou = (s: HoldoutScore) => s.iou
      expect(mean(ours, psnr)).toBeGreaterThanOrEqual(mean(naive, psnr) + LEAD[variant])
      expect(mean(ours, iou)).toBeGreaterThanOrEqual(mean(naive, iou) - 0.01)
      // The depth sweep carves the hull's phantoms, and seldom the object: few of the vertices it
      // carved lie a voxel or more inside the true solid.
      const { carved, deepInside } = carvedInside(scene, ours[0]!.job.space, ours[0]!.outcome)
      expect(carved).toBeGreaterThan(CARVED[variant])
      expect(deepInside / carved).toBeLessThanOrEqual(DEEP_INSIDE[variant])
    })
  },
)
/*
 * Measured on view 4 (320×240, 96³): arches ours 19.77 dB / 0.909, naive 17.27 / 0.907; pots ours
 * 20.01 / 0.949, naive 17.97 / 0.944 (before the depth sweep: ours 19.57 and 18.89). The depth sweep
 * carved 74,085 vertices of arches, 10.6 % of them a voxel or more inside the solid, and 98,013 of
 * pots, 5.4 % inside. When it doubted only surfaces that 4 of a camera's neighbours see
 * (`surfaceViews` 4) it carved 57,813 and 94,938: the arches bound below tells the two apart. The
 * bounds held here are the figures, less a margin.
 */
const LEAD = { arches: 2.0, pots: 1.3 }
const CARVED = { arches: 66_000, pots: 80_000 }
const DEEP_INSIDE = { arches: 0.13, pots: 0.08 }

/** Vertices carved as inconsistent, and of those the ones whose centre lies a voxel edge or more inside the solid. */
function carvedInside(scene: TexturedScene, space: TargetSpace, outcome: FrameOutcome) {
  const edge = voxelEdge(space)
  const centre = [0, 0, 0]
  let carved = 0
  let deepInside = 0
  for (let v = 0; v < outcome.decision.length; v++) {
    if (outcome.decision[v] !== Decision.inconsistent) continue
    carved++
    vertexCentre(space, v, centre)
    const [x, y, z] = centre as [number, number, number]
    const around: [number, number, number][] = [
      [x, y, z],
      [x - edge, y, z],
      [x + edge, y, z],
      [x, y - edge, z],
      [x, y + edge, z],
      [x, y, z - edge],
      [x, y, z + edge],
    ]
    if (around.every(([px, py, pz]) => texturedInside(scene, px, py, pz))) deepInside++
  }
  return { carved, deepInside }
}
