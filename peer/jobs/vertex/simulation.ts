import type { JobSpec } from '../kind.ts'
import type { VertexJob } from './block.ts'
import { ringJob, vertexJobSpec } from './index.ts'

/*
 * The show a simulation runs when it is given no `jobs` (`crowdmesh simulate` without `--jobs`): one
 * vertex job over a 4 m stage seen by cameras on a ring, whose grid follows the crowd's capacity.
 */

/**
 * The grid of an automatic show: the largest whose frames are about `unitsPerFrame` vertex·views
 * (what keeps the crowd's share `autoGridLoad` busy at its frame rate), and at least 4 per axis.
 */
export function showGrid(unitsPerFrame: number, cameras: number): number {
  return Math.max(4, Math.floor(Math.cbrt(unitsPerFrame / cameras)))
}

/** A job over a 4 m stage seen by cameras on a ring: only its sizes matter to the scheduler. */
export function simulatedJob(grid: number, cameraCount: number): VertexJob {
  return ringJob('simulation', grid, cameraCount)
}

/** The show's job spec: `grid` per axis (0: `showGrid` of `unitsPerFrame`), seen by `cameras` cameras. */
export function showJob(init: { grid: number; cameras: number; unitsPerFrame: number }): JobSpec<VertexJob> {
  const grid = init.grid > 0 ? init.grid : showGrid(init.unitsPerFrame, init.cameras)
  return vertexJobSpec(simulatedJob(grid, init.cameras))
}
