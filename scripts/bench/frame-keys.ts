import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'
import type { MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { decodePng } from '../../peer/participant/png.ts'
import { partitionDefaults } from '../../peer/jobs/vertex/defaults.ts'
import { generateFrameKey, open, seal } from '../../peer/protocol/frame-keys.ts'
import type { VertexJob } from '../../peer/jobs/vertex/block.ts'
import { encodeBlockResult } from '../../peer/jobs/vertex/schemas.ts'
import { vertexCount } from '../../peer/jobs/vertex/target-space.ts'

/** What per-frame keys cost a participant, measured with WebCrypto in this process. */
export interface FrameKeyCost {
  /** AES-256-GCM throughput, sealing and opening, MB/s (1 MB = 10⁶ bytes). */
  sealMBps: number
  openMBps: number
  /** Opening one camera frame (its PNG file), ms: once per frame a participant holds a lease of. */
  frameOpenMs: number
  /** Sealing one default-size block result, ms: once per block. */
  resultSealMs: number
  /** Colouring that block on one CPU core, ms: what the keys' cost is compared with. */
  blockComputeMs: number
  /**
   * Added time per block, percent of its compute: sealing its result, plus opening its frame spread
   * over the frame's blocks a participant computes (taken as one block per frame: the worst case).
   */
  overheadPercent: { perFrameWorstCase: number; perBlockOnly: number }
}

/** Measures the cost of per-frame keys on the data set's first frame and a default-size block. */
export async function frameKeyCost(dataset: MultiViewDataset, job: VertexJob): Promise<FrameKeyCost> {
  const frame = dataset.frames[0]!
  const png = new Uint8Array(await readFile(fileURLToPath(frame.imageUrl)))
  const image = decodePng(png)
  // A block from the middle of the grid, where the stage is: the edges are mostly out of view.
  const blocks = partitionFrame(job.jobId, frame, vertexCount(job.space), partitionDefaults.blockVertices)
  const block = blocks[Math.floor(blocks.length / 2)]
  const result = encodeBlockResult(colourBlock(job, block!, image))
  const key = await generateFrameKey()

  const time = async (what: () => Promise<unknown>, minMs = 300): Promise<number> => {
    await what()
    let n = 0
    const started = performance.now()
    while (performance.now() - started < minMs) {
      await what()
      n++
    }
    return (performance.now() - started) / n
  }
  const sealedPng = await seal(key, png)
  const sealedResult = await seal(key, result)
  const frameOpenMs = await time(() => open(key, sealedPng))
  const frameSealMs = await time(() => seal(key, png))
  const resultSealMs = await time(() => seal(key, result))
  await time(() => open(key, sealedResult))
  const blockComputeMs = await time(() => Promise.resolve(colourBlock(job, block!, image)))
  const percent = (x: number) => Math.round((x / blockComputeMs) * 1000) / 10
  return {
    sealMBps: Math.round(png.length / frameSealMs / 100) / 10,
    openMBps: Math.round(png.length / frameOpenMs / 100) / 10,
    frameOpenMs: Math.round(frameOpenMs * 1000) / 1000,
    resultSealMs: Math.round(resultSealMs * 1000) / 1000,
    blockComputeMs: Math.round(blockComputeMs * 100) / 100,
    overheadPercent: {
      perFrameWorstCase: percent(frameOpenMs + resultSealMs),
      perBlockOnly: percent(resultSealMs),
    },
  }
}
