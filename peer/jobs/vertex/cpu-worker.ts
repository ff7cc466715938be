import { type Camera, focalLength, projectionMatrix } from './camera.ts'
import { BlockMismatchError } from '../../protocol/errors.ts'
import { type Block, type BlockResult, blockResult, type VertexJob } from './block.ts'
import { levelSpace, type TargetSpace, vertexCount, voxelEdge, voxelSize } from './target-space.ts'
import { type FrameImage, summedAreaTable } from '../../participant/frame-image.ts'
import { colourRadius } from './sampling.ts'
import type { FrameSource } from '../../participant/frame-source.ts'

/**
 * Checks a block against its job and frame (its camera is in the job and calibrated for the frame's
 * size, its range inside the grid of its level), as every worker must before colouring it.
 */
export function checkBlock(
  job: VertexJob,
  block: Block,
  image: { width: number; height: number },
): { camera: Camera; space: TargetSpace } {
  const camera = job.cameras.find((c) => c.id === block.cameraId)
  if (camera === undefined)
    throw new BlockMismatchError(`block names camera ${block.cameraId}, not in job ${job.jobId}`)
  if (camera.width !== image.width || camera.height !== image.height) {
    throw new BlockMismatchError(
      `frame is ${image.width}×${image.height} but camera ${camera.name} is calibrated for ${camera.width}×${camera.height}`,
    )
  }
  const space = levelSpace(job.space, block.level)
  const total = vertexCount(space)
  if (block.firstVertex + block.vertexCount > total) {
    throw new BlockMismatchError(
      `block ends at vertex ${block.firstVertex + block.vertexCount}, past ${total}`,
    )
  }
  return { camera, space }
}

/**
 * Colours the data threads of one block on the CPU, following the rule in `sampling.ts`
 * exactly (the reference every other worker is held to). Area sums come from the frame's
 * summed-area table, so a thread costs a projection and sixteen reads whatever its area size.
 */
export function colourBlock(job: VertexJob, block: Block, image: FrameImage): BlockResult {
  const { camera, space } = checkBlock(job, block, image)
  const [nx, ny] = space.resolution
  const p = projectionMatrix(camera)
  const halfFootprint = (focalLength(camera) * voxelEdge(space)) / 2
  const maxR = job.maxAreaRadius
  const [sx, sy, sz] = voxelSize(space)
  const [x0, y0, z0] = space.box.min
  const { width, height } = image
  const table = summedAreaTable(image, job.backgroundSum)
  const stride = (width + 1) * 4
  const out = new Uint8Array(block.vertexCount * 4)

  let ix = block.firstVertex % nx
  const rest = (block.firstVertex - ix) / nx
  let iy = rest % ny
  let iz = (rest - iy) / ny
  let y = y0 + (iy + 0.5) * sy
  let z = z0 + (iz + 0.5) * sz
  for (let i = 0, o = 0; i < block.vertexCount; i++, o += 4) {
    const x = x0 + (ix + 0.5) * sx
    const w = p[8]! * x + p[9]! * y + p[10]! * z + p[11]!
    if (w > 0) {
      const px = Math.floor((p[0]! * x + p[1]! * y + p[2]! * z + p[3]!) / w + 0.5)
      const py = Math.floor((p[4]! * x + p[5]! * y + p[6]! * z + p[7]!) / w + 0.5)
      if (px >= 0 && px < width && py >= 0 && py < height) {
        const r = Math.min(maxR, Math.floor(halfFootprint / w))
        const left = Math.max(px - r, 0)
        const top = Math.max(py - r, 0)
        const right = Math.min(px + r + 1, width)
        const bottom = Math.min(py + r + 1, height)
        const n = (right - left) * (bottom - top)
        const a = top * stride + left * 4
        const b = top * stride + right * 4
        const c = bottom * stride + left * 4
        const d = bottom * stride + right * 4
        const m = table[d + 3]! - table[b + 3]! - table[c + 3]! + table[a + 3]!
        if (m > 0) {
          // The colour's area (rule 3): the same square, or a wider one around a small footprint.
          const rc = colourRadius(r, maxR)
          const colourTop = Math.max(py - rc, 0) * stride
          const colourBottom = Math.min(py + rc + 1, height) * stride
          const colourLeft = Math.max(px - rc, 0) * 4
          const colourRight = Math.min(px + rc + 1, width) * 4
          const ca = colourTop + colourLeft
          const cb = colourTop + colourRight
          const cc = colourBottom + colourLeft
          const cd = colourBottom + colourRight
          const mc = table[cd + 3]! - table[cb + 3]! - table[cc + 3]! + table[ca + 3]!
          const half = mc >> 1
          out[o] = Math.floor((table[cd]! - table[cb]! - table[cc]! + table[ca]! + half) / mc)
          out[o + 1] = Math.floor(
            (table[cd + 1]! - table[cb + 1]! - table[cc + 1]! + table[ca + 1]! + half) / mc,
          )
          out[o + 2] = Math.floor(
            (table[cd + 2]! - table[cb + 2]! - table[cc + 2]! + table[ca + 2]! + half) / mc,
          )
        }
        out[o + 3] = 1 + Math.floor((254 * m + (n >> 1)) / n)
      }
    }
    if (++ix === nx) {
      ix = 0
      if (++iy === ny) {
        iy = 0
        iz++
        z = z0 + (iz + 0.5) * sz
      }
      y = y0 + (iy + 0.5) * sy
    }
  }
  return blockResult(block, out)
}

/**
 * The threads `units` (offsets in the block) of a block, as RGBA bytes in that order: the
 * coordinator's spot check recomputes a few hundred threads of a result this way. Each is a block
 * of one vertex: the frame's summed-area table is kept with its image, so a thread costs the
 * block's set-up (a projection matrix) beside its own few reads, and `colourBlock` keeps its tight loop.
 */
export function colourThreads(
  job: VertexJob,
  block: Block,
  image: FrameImage,
  units: readonly number[],
): Uint8Array {
  const out = new Uint8Array(units.length * 4)
  units.forEach((unit, i) => {
    const one = colourBlock(job, { ...block, firstVertex: block.firstVertex + unit, vertexCount: 1 }, image)
    out.set(one.colours, i * 4)
  })
  return out
}

/** A participant's CPU worker: fetches the block's frame (cached) and colours it. */
export interface CpuWorker {
  run(job: VertexJob, block: Block, signal?: AbortSignal): Promise<BlockResult>
}

/** Creates a CPU worker over a frame source. */
export function cpuWorker(components: { frames: FrameSource }): CpuWorker {
  return {
    async run(job, block, signal) {
      const image = await components.frames.get(block.imageUrl, signal)
      return colourBlock(job, block, image)
    },
  }
}
