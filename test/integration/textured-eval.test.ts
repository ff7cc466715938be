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
      const unpeeled: HoldoutScore[] = []
      for (const view of [4].map((i) => set.cameras[i]!)) {
        ours.push(await evaluateHoldout(set, view, { grid: 96 }))
        naive.push(await evaluateHoldout(set, view, { grid: 96, ...naiveMethod }))
        unpeeled.push(await evaluateHoldout(set, view, { grid: 96, outcomeRule: { peelSurface: false } }))
      }
      const mean = (scores: HoldoutScore[], f: (s: HoldoutScore) => number) =>
        scores.reduce((a, s) => a + f(s), 0) / scores.length
      const psnr = (s: HoldoutScore) => s.psnr
      const iou = (s: HoldoutScore) => s.iou
      expect(mean(ours, psnr)).toBeGreaterThanOrEqual(mean(naive, psnr) + LEAD[variant])
      expect(mean(ours, iou)).toBeGreaterThanOrEqual(mean(naive, iou) - 0.01)
      // The depth sweep carves the hull's phantoms, and seldom the object: few of the vertices it
      // carved lie a voxel or more inside the true solid.
      const sweep = carvedInside(scene, unpeeled[0]!.job.space, unpeeled[0]!.outcome)
      expect(sweep.carved.size).toBeGreaterThan(CARVED[variant])
      expect(sweep.deepInside / sweep.carved.size).toBeLessThanOrEqual(DEEP_INSIDE[variant])
      // The peel thins the hull further, and fewer still of what it carves lie inside the solid.
      const all = carvedInside(scene, ours[0]!.job.space, ours[0]!.outcome)
      const peeled = [...all.carved].filter((v) => !sweep.carved.has(v))
      const peeledInside = peeled.filter((v) => all.inside(v)).length
      expect(peeled.length).toBeGreaterThan(PEELED[variant])
      expect(peeledInside / peeled.length).toBeLessThanOrEqual(0.05)
      expect(ours[0]!.iou).toBeGreaterThanOrEqual(unpeeled[0]!.iou)
    })
  },
)
/*
 * Measured on view 4 (320×240, 96³): arches ours 19.83 dB / 0.911, naive 17.27 / 0.907; pots ours
 * 20.25 / 0.951, naive 17.97 / 0.944 (before the depth sweep: ours 19.57 and 18.89). The depth sweep
 * carved 81,106 vertices of arches, 10.4 % of them a voxel or more inside the solid, and 102,148 of
 * pots, 5.4 % inside. Without the cross-checked carving (`confirmingCameras`) it carved 74,085
 * (10.6 %) and 98,013 (5.4 %), and ours scored 19.77 and 20.10 dB; when it doubted only surfaces
 * that 4 of a camera's neighbours see (`surfaceViews` 4), 57,813 and 94,938. The arches bound below
 * tells these apart. The bounds held here are the figures, less a margin.
 */
const LEAD = { arches: 2.0, pots: 1.3 }
const CARVED = { arches: 78_000, pots: 80_000 }
const DEEP_INSIDE = { arches: 0.13, pots: 0.08 }
/*
 * The peel (after the refinement) carved 14,889 more vertices of arches and 8,318 of pots there, 3.4 %
 * and 3.1 % of them a voxel or more inside the solid (2.6 % of each without the cross-checked
 * carving, when it carved 15,600 and 8,505); the silhouette IoU rose from 0.9096 to 0.9110 and from
 * 0.9496 to 0.9513, and PSNR went from 19.84 to 19.83 dB on arches and from 20.13 to 20.25 on pots.
 */
const PEELED = { arches: 12_000, pots: 6_500 }

/**
 * Vertices carved as inconsistent, how many of them lie a voxel edge or more inside the solid, and the
 * test for that.
 */
function carvedInside(scene: TexturedScene, space: TargetSpace, outcome: FrameOutcome) {
  const edge = voxelEdge(space)
  const centre = [0, 0, 0]
  const carved = new Set<number>()
  let deepInside = 0
  const inside = (v: number) => {
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
    return around.every(([px, py, pz]) => texturedInside(scene, px, py, pz))
  }
  for (let v = 0; v < outcome.decision.length; v++) {
    if (outcome.decision[v] !== Decision.inconsistent) continue
    carved.add(v)
    if (inside(v)) deepInside++
  }
  return { carved, deepInside, inside }
}
