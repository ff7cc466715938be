import type { Camera } from './camera.ts'
import type { TargetSpace } from './target-space.ts'

/**
 * A vertex-colouring job as the coordinator announces it once: the target space, the calibrated
 * cameras and the sampling setting. Blocks then only name a frame, a camera and a vertex range.
 */
export interface VertexJob {
  readonly jobId: string
  readonly space: TargetSpace
  readonly cameras: readonly Camera[]
  /** Largest area radius in pixels (see `sampling.ts`). */
  readonly maxAreaRadius: number
  /** A pixel is foreground when R+G+B exceeds this (0–765; see `sampling.ts`). */
  readonly backgroundSum: number
}

/** One image from one camera at one moment. Frames of all cameras with the same index make one frame outcome. */
export interface Frame {
  readonly cameraId: number
  /** Moment index; the job outcome of index i combines the frames of all cameras with index i. */
  readonly index: number
  /** Capture time, milliseconds since the epoch (or since the start of a recorded set). */
  readonly captureTime: number
  /** Where a participant fetches the image: file:, http(s): or data: URL. */
  readonly imageUrl: string
}

/**
 * The unit of work handed to one participant: a run of vertex ids seen in one frame. It is described
 * compactly (never as a list of data threads); each vertex of the range is one data thread.
 */
export interface Block {
  readonly jobId: string
  readonly frameIndex: number
  readonly cameraId: number
  readonly imageUrl: string
  readonly firstVertex: number
  readonly vertexCount: number
  /**
   * Grid level when the frame was downgraded to a coarser grid to meet its latency budget: level k
   * divides each axis of the job's resolution by 2^k (rounded up). Absent means 0, the job's grid.
   */
  readonly level?: number | undefined
}

/**
 * A participant's answer for a block: one thread result per vertex of the range, as RGBA bytes
 * (4 per vertex, in vertex order): RGB is the colour of the foreground in the vertex's area and alpha
 * its foreground coverage, 1 (none) to 255 (all); alpha 0 means the camera does not see the vertex
 * (see `sampling.ts`).
 */
export interface BlockResult {
  readonly jobId: string
  readonly frameIndex: number
  readonly cameraId: number
  readonly firstVertex: number
  readonly vertexCount: number
  readonly colours: Uint8Array
}

/** A block's result: its identity, with the colours a worker computed for it. */
export function blockResult(block: Block, colours: Uint8Array): BlockResult {
  const { jobId, frameIndex, cameraId, firstVertex, vertexCount } = block
  return { jobId, frameIndex, cameraId, firstVertex, vertexCount, colours }
}

/** A stable key for a block: a block counts once however many copies of its result come back. */
export function blockKey(b: {
  frameIndex: number
  cameraId: number
  firstVertex: number
  vertexCount: number
}): string {
  return `${b.frameIndex}/${b.cameraId}/${b.firstVertex}+${b.vertexCount}`
}

/** Anything that turns a block into its result (the vertex kind's CPU and WebGL workers, the bench page). */
export interface BlockWorker {
  run(job: VertexJob, block: Block, signal?: AbortSignal): Promise<BlockResult>
}
