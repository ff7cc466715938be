import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type FrameOutcome, modelVertices } from '../peer/jobs/vertex/outcome.ts'
import { encodePng } from '../peer/participant/png.ts'
import type { TargetSpace } from '../peer/jobs/vertex/target-space.ts'
import { encodePly } from '../peer/quality/ply.ts'

/**
 * Writes a frame outcome's model (`modelVertices`: the surface and its coloured interior) as
 * `dir/outcome.ply`; returns the path. A caller that has the model already passes it.
 */
export async function writeOutcomePly(
  dir: string,
  space: TargetSpace,
  outcome: FrameOutcome,
  model = modelVertices(outcome),
): Promise<string> {
  await mkdir(dir, { recursive: true })
  const { ids, rgb, offset } = model
  const path = join(dir, 'outcome.ply')
  await writeFile(path, encodePly(space, ids, rgb, offset))
  return path
}

/** Writes an RGBA image as PNG; returns the path. */
export async function writeImage(
  dir: string,
  name: string,
  image: { width: number; height: number; rgba: Uint8Array },
): Promise<string> {
  await mkdir(dir, { recursive: true })
  const path = join(dir, name)
  await writeFile(path, encodePng(image.width, image.height, image.rgba))
  return path
}
