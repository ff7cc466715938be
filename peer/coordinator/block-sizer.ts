/** Bytes a participant sends back per data thread (one RGBA thread result). */
export const resultBytesPerThread = 4

/** What the sizer knows of a participant. */
export interface SpeedEstimate {
  /** Data threads per second, or 0 when not measured yet. */
  threadsPerSec: number
  /** Upstream bytes per second, or 0 when unknown (transfer then counts as free). */
  bandwidthBytesPerSec: number
  rttMs: number
}

/** Limits of the sizer. */
export interface SizerLimits {
  targetBlockMs: number
  minBlockVertices: number
  maxBlockVertices: number
  calibrationVertices: number
}

/**
 * Vertices in a participant's next block, so that computing it and sending its result back takes
 * about `targetBlockMs`: more threads to more processing power and better links (the seed's rule).
 * A participant not measured yet gets a small calibration block.
 */
export function blockVertices(speed: SpeedEstimate, limits: SizerLimits): number {
  if (speed.threadsPerSec <= 0) return limits.calibrationVertices
  const secondsPerThread =
    1 / speed.threadsPerSec +
    (speed.bandwidthBytesPerSec > 0 ? resultBytesPerThread / speed.bandwidthBytesPerSec : 0)
  // The round trip is paid once per block; it eats into the target but never below a quarter of it.
  const budget = Math.max(limits.targetBlockMs / 4, limits.targetBlockMs - speed.rttMs) / 1000
  const vertices = Math.round(budget / secondsPerThread)
  return Math.min(limits.maxBlockVertices, Math.max(limits.minBlockVertices, vertices))
}

/** Expected time for a participant to compute `vertices` threads and return the result, ms. */
export function expectedBlockMs(speed: SpeedEstimate, vertices: number): number {
  const compute = vertices / speed.threadsPerSec
  const transfer =
    speed.bandwidthBytesPerSec > 0 ? (vertices * resultBytesPerThread) / speed.bandwidthBytesPerSec : 0
  return (compute + transfer) * 1000 + speed.rttMs
}
