import { Decision, type FrameOutcome } from '../jobs/vertex/outcome.ts'
import { groundTruth, type SyntheticScene, Truth } from '../datasets/synthetic.ts'
import type { TargetSpace } from '../jobs/vertex/target-space.ts'

/** How an outcome compares with a synthetic scene's ground truth. */
export interface SyntheticScore {
  /** Share of surface vertices coloured correctly (see `scoreSynthetic`). */
  surfaceAccuracy: number
  /** Share of free-space vertices (more than one voxel edge from any solid) that were coloured. */
  freeSpaceColoured: number
  surfaceVertices: number
  freeSpaceVertices: number
  /** Colour tolerance used: largest difference on any channel, 0–255. */
  colourTolerance: number
}

/**
 * Scores an outcome against the scene's ground truth. A surface vertex (the solids' outer shell of
 * vertices) is coloured correctly when it, or one of its 6-neighbours in the band just outside the
 * solid, is coloured within `colourTolerance` on every channel of the solid's colour there: a grid
 * places a surface to within one voxel, no finer.
 */
export function scoreSynthetic(
  scene: SyntheticScene,
  space: TargetSpace,
  outcome: FrameOutcome,
  colourTolerance = 16,
): SyntheticScore {
  const { truth, colour } = groundTruth(scene, space)
  const [nx, ny] = space.resolution
  const steps = [0, -1, 1, -nx, nx, -nx * ny, nx * ny]
  let surface = 0
  let correct = 0
  let free = 0
  let freeColoured = 0
  for (let v = 0; v < truth.length; v++) {
    if (truth[v] === Truth.freeSpace) {
      free++
      if (outcome.decision[v] === Decision.coloured) freeColoured++
      continue
    }
    if (truth[v] !== Truth.surface) continue
    surface++
    const ok = steps.some((step) => {
      const u = v + step
      if (u < 0 || u >= truth.length || (step !== 0 && truth[u] !== Truth.band)) return false
      if (outcome.decision[u] !== Decision.coloured) return false
      for (let c = 0; c < 3; c++) {
        if (Math.abs(outcome.colour[u * 3 + c]! - colour[v * 3 + c]!) > colourTolerance) return false
      }
      return true
    })
    if (ok) correct++
  }
  return {
    surfaceAccuracy: correct / surface,
    freeSpaceColoured: freeColoured / free,
    surfaceVertices: surface,
    freeSpaceVertices: free,
    colourTolerance,
  }
}
