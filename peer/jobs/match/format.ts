/*
 * The fingerprint format, versioned: a fingerprint computed under one version only ever compares
 * with fingerprints of the same version. Any change to a number here is a new version. Each choice
 * was measured on the shared samples (README, "Video matching"): copies' distances against the
 * closest unrelated pair.
 */

/** Version 1 of the segment fingerprint (see `fingerprint.ts` for how each part is computed). */
export const fingerprintFormat = {
  version: 1,
  /**
   * Frames sampled per second, whatever the video's rate: a copy at another frame rate samples the
   * same instants. 16 rather than 8: a clip cut between two samples sees other frames; at 8 fps the
   * 3.7 s clip of the samples differed in 70–145 bits of 800, at 16 in 41–79.
   */
  sampleFps: 16,
  /** Side of the square luminance frame the decoder delivers, pixels (bars are found at this size). */
  decodeSize: 128,
  /** Side of the picture inside the bars, resampled, pixels (the DCT's size). */
  pictureSize: 64,
  /** Low-frequency DCT coefficients per axis (rows and columns 1..16, as PDQ). */
  coefficients: 16,
  /** Length of a segment, s: the unit of matches; their offsets are found to a `hopSeconds`. */
  segmentSeconds: 1,
  /**
   * Fingerprints per segment, a quarter second apart (phases): a clip cut anywhere has one within
   * 1/8 s of each reference segment. References keep phase 0 only; queries keep all four.
   */
  phases: 4,
  /**
   * The time windows (triangular, s): each block is a short window's mean minus the `baseWindow`'s
   * mean. What stays on screen (a logo, a caption, bars, the room of a still camera) cancels out: the
   * large-logo copy went from 220–290 bits to 37–76, and the closest unrelated pair (two sign-language
   * clips, same room) from 35 to 135.
   */
  windows: [1, 2] as readonly number[],
  baseWindow: 4,
  /**
   * Least change of the picture around a fingerprint's instant, as the smaller window block's length
   * over the 4 s pool's, for its bits to mean anything: below it the fingerprint is `still`.
   */
  minMotion: 0.02,
  /** Seed of the ±1 projection that turns the two blocks (512 values) into the bits. */
  projectionSeed: 0x6d2b79f5,
  /** Bytes of one fingerprint: 800 bits. */
  bytes: 100,
} as const

/** Bits of one fingerprint. */
export const fingerprintBits = fingerprintFormat.bytes * 8
