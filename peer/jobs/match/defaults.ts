import { CrowdmeshError } from '../../protocol/errors.ts'

/**
 * The match kinds' defaults, in one place (the fingerprint's own numbers are its format:
 * `format.ts`). Measured choices say how they were measured.
 */
export const matchDefaults = {
  /** Longest video fingerprinted, s: longer ones get a clear error (an hour of UGC is already rare). */
  maxVideoSeconds: 3600,
  /**
   * Seconds a video may decode short of its header's duration (streams often end a frame or two
   * early); more is a truncated or damaged file, refused with a clear error.
   */
  maxMissingSeconds: 1.5,
  /**
   * Most bits two fingerprints may differ in to count as a hit (of 800). Measured with
   * `crowdmesh match-eval --edits` (README, "Video matching"): the largest threshold with no wrong
   * match over the shared set and 120 edited copies; unrelated videos never matched below 240, and
   * above 100 content that repeats inside a video begins to match at a wrong offset.
   */
  maxHammingBits: 100,
  /** Fewest segments a match runs over (a run of hits at one time offset). */
  minRunSegments: 3,
  /** Hits a run may miss between two of its segments (a logo passing, a cut). */
  maxGapSegments: 2,
  /** Largest video a browser participant fetches into memory to fingerprint, bytes. */
  maxBrowserVideoBytes: 512 * 1024 * 1024,
} as const

/** A video could not be fingerprinted: unreadable, corrupt, without a video stream, empty or too long. */
export class VideoInputError extends CrowdmeshError {}
