import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Camera } from '../../peer/jobs/vertex/camera.ts'
import type { VertexJob } from '../../peer/jobs/vertex/block.ts'
import { targetSpace } from '../../peer/jobs/vertex/target-space.ts'

/** The repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** templeSparseRing in the shared data folder beside the repository (tests read data from there). */
export const templeDir = join(repoRoot, '..', 'shared', 'data', 'templeSparseRing')
if (!existsSync(join(templeDir, 'templeSR_par.txt'))) {
  throw new Error(`the shared data set is missing: ${templeDir} (tests read ../shared/data)`)
}

/** A 64×48 camera at z = −2 looking down +z at the unit box around the origin. */
export function testCamera(id = 0): Camera {
  return {
    id,
    name: `cam${id}`,
    k: [40, 0, 32, 0, 40, 24, 0, 0, 1],
    r: [1, 0, 0, 0, 1, 0, 0, 0, 1],
    t: [0, 0, 2],
    width: 64,
    height: 48,
  }
}

/** A small job over the box [−0.5, 0.5]³. */
export function testJob(n = 8, cameras: Camera[] = [testCamera(0)], backgroundSum = 60): VertexJob {
  return {
    jobId: 'test',
    space: targetSpace({ min: [-0.5, -0.5, -0.5], max: [0.5, 0.5, 0.5] }, n),
    cameras,
    maxAreaRadius: 8,
    backgroundSum,
  }
}
