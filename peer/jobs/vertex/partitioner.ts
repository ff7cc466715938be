import { InvalidOptionError } from '../../protocol/errors.ts'
import type { Block, Frame } from './block.ts'

/**
 * Cuts one camera frame into blocks of `blockVertices` consecutive vertex ids (the last block
 * takes the remainder). The scheduler chooses the size per participant; this only slices.
 */
export function partitionFrame(
  jobId: string,
  frame: Frame,
  totalVertices: number,
  blockVertices: number,
): Block[] {
  if (!Number.isInteger(blockVertices) || blockVertices < 1) {
    throw new InvalidOptionError(`blockVertices must be a positive integer, got ${blockVertices}`)
  }
  const blocks: Block[] = []
  for (let first = 0; first < totalVertices; first += blockVertices) {
    blocks.push({
      jobId,
      frameIndex: frame.index,
      cameraId: frame.cameraId,
      imageUrl: frame.imageUrl,
      firstVertex: first,
      vertexCount: Math.min(blockVertices, totalVertices - first),
    })
  }
  return blocks
}
