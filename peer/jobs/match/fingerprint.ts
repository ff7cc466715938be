import { fingerprintBits, fingerprintFormat } from './format.ts'

/*
 * The segment fingerprint, computed from a video's luminance frames (the CPU reference: Node and the
 * browser's CPU worker run this code; the WebGL worker must agree with it). The format's numbers and
 * why: `format.ts`; the whole design: README, "Video matching".
 *
 * 1. Frames are sampled at a fixed rate (`sampleFps`) whatever the video's frame rate, and reduced
 *    to `decodeSize`² luminance (the decoder's part: ffmpeg in Node, WebCodecs in a page).
 * 2. Letterbox and pillarbox bars are found in the frames around each fingerprint and cropped; the
 *    picture inside is resampled to `pictureSize`² by area averaging.
 * 3. Each frame becomes the low-frequency block of its 2D DCT (PDQ's DCT of luminance, without the
 *    DC row and column): 256 values that scaling, codec noise, a few percent of crop and brightness
 *    barely move, and that contrast only scales.
 * 4. Around each instant (four a segment), the frames are pooled over a 1 s and a 2 s triangular
 *    window (TMK's time pooling), and each minus the pool over 4 s: what does not change on screen
 *    cancels, so a logo, a caption or a still background is not part of the fingerprint; each block
 *    is scaled to length 1, so grey, sepia and contrast change nothing.
 * 5. A fixed ±1 projection turns the 512 values into 800 bits (one bit: the sign of one projection),
 *    so the Hamming distance of two fingerprints follows the angle between their blocks.
 */

/** Luminance frames of one video, sampled at `fingerprintFormat.sampleFps`. */
export interface LumaFrames {
  /** Side of each square frame, pixels (`fingerprintFormat.decodeSize`). */
  size: number
  /** One Uint8Array of size² luminance values per sampled frame, in time order. */
  frames: Uint8Array[]
}

/** The picture inside a video's bars, in decoded pixels: [left, top, right, bottom) of `size`. */
export interface PictureBox {
  left: number
  top: number
  right: number
  bottom: number
}

/** One fingerprint: segment `segment` at phase `phase`. */
export interface Fingerprint {
  /** The segment: [segment, segment + 1) × `segmentSeconds` of the video. */
  segment: number
  /** 0..phases-1: its instant is `phase / phases` of a segment after the segment's middle. */
  phase: number
  /** `fingerprintFormat.bytes` bytes. */
  bits: Uint8Array
  /** The picture barely moved around its instant: not indexed, not looked up (see `fingerprintBitsAt`). */
  still: boolean
}

/** A bar is at most this bright (black lifted by a contrast edit stays well below). */
const barMaxLuma = 96
/** A line is bar-like when this share of its pixels lie within `barSpread` of its darkest. */
const barUniformShare = 0.75
const barSpread = 20
const barFrameShare = 0.9
const maxBarShare = 0.3

/**
 * The picture inside letterbox/pillarbox bars: rows (columns) from each edge that are bar-like in at
 * least 90 % of the frames. A line is bar-like when it is dark and flat: three quarters of it within
 * a few levels of its darkest pixel. Flat rather than black, so a contrast edit that lifts the bars
 * to grey keeps them, and a caption drawn across them (a quarter of the line) does not undo them.
 * A frame flat throughout (a fade, a black clip) has no picture to find: it is kept whole.
 */
export function findPicture(video: LumaFrames): PictureBox {
  const { size, frames } = video
  const full = { left: 0, top: 0, right: size, bottom: size }
  if (frames.length === 0) return full
  const barRows = new Uint32Array(size)
  const barCols = new Uint32Array(size)
  const need = Math.ceil(size * barUniformShare)
  const line = new Uint8Array(size)
  const barLike = () => {
    let min = 255
    for (let i = 0; i < size; i++) min = Math.min(min, line[i]!)
    if (min > barMaxLuma) return false
    let near = 0
    for (let i = 0; i < size; i++) if (line[i]! <= min + barSpread) near++
    return near >= need
  }
  const limit = Math.floor(size * maxBarShare)
  for (const frame of frames) {
    // Only the lines a bar could be on: the outer 30 % each side.
    for (let n = 0; n < limit; n++)
      for (const y of [n, size - 1 - n]) {
        line.set(frame.subarray(y * size, y * size + size))
        if (barLike()) barRows[y]!++
      }
    for (let n = 0; n < limit; n++)
      for (const x of [n, size - 1 - n]) {
        for (let y = 0; y < size; y++) line[y] = frame[y * size + x]!
        if (barLike()) barCols[x]!++
      }
  }
  const frameNeed = frames.length * barFrameShare
  const edge = (bars: Uint32Array, from: number, step: number) => {
    let n = 0
    while (n < limit && bars[from + step * n]! >= frameNeed) n++
    return n
  }
  const top = edge(barRows, 0, 1)
  const bottom = size - edge(barRows, size - 1, -1)
  const left = edge(barCols, 0, 1)
  const right = size - edge(barCols, size - 1, -1)
  if (bottom - top < size / 4 || right - left < size / 4) return full
  return { left, top, right, bottom }
}

/** Area-average resampling of the box of a `size`² frame to `out`² (fractional pixel edges weighted). */
export function resamplePicture(frame: Uint8Array, size: number, box: PictureBox, out: number): Float32Array {
  const result = new Float32Array(out * out)
  const sx = (box.right - box.left) / out
  const sy = (box.bottom - box.top) / out
  const weights = (first: number, scale: number) => {
    const spans: { from: number; to: number; w: Float32Array }[] = []
    for (let i = 0; i < out; i++) {
      const a = first + i * scale
      const b = a + scale
      const from = Math.floor(a)
      const to = Math.min(size, Math.ceil(b))
      const w = new Float32Array(to - from)
      for (let p = from; p < to; p++) w[p - from] = (Math.min(b, p + 1) - Math.max(a, p)) / scale
      spans.push({ from, to, w })
    }
    return spans
  }
  const cols = weights(box.left, sx)
  const rows = weights(box.top, sy)
  const line = new Float32Array(out)
  for (let oy = 0; oy < out; oy++) {
    const row = rows[oy]!
    line.fill(0)
    for (let y = row.from; y < row.to; y++) {
      const wy = row.w[y - row.from]!
      const base = y * size
      for (let ox = 0; ox < out; ox++) {
        const col = cols[ox]!
        let sum = 0
        for (let x = col.from; x < col.to; x++) sum += col.w[x - col.from]! * frame[base + x]!
        line[ox]! += wy * sum
      }
    }
    result.set(line, oy * out)
  }
  return result
}

/** DCT-II rows 1..k of an n-point transform (row 0, the mean, is left out as PDQ does). */
export function dctMatrix(n: number, k: number): Float32Array {
  const m = new Float32Array(k * n)
  const scale = Math.sqrt(2 / n)
  for (let i = 0; i < k; i++)
    for (let j = 0; j < n; j++) m[i * n + j] = scale * Math.cos((Math.PI / (2 * n)) * (i + 1) * (2 * j + 1))
  return m
}

const dct = dctMatrix(fingerprintFormat.pictureSize, fingerprintFormat.coefficients)

/** The low-frequency DCT block of an n×n picture: D · P · Dᵀ, k×k floats. */
export function frameFeature(picture: Float32Array, n = fingerprintFormat.pictureSize): Float32Array {
  const k = fingerprintFormat.coefficients
  const half = new Float32Array(k * n)
  for (let i = 0; i < k; i++)
    for (let x = 0; x < n; x++) {
      let sum = 0
      for (let y = 0; y < n; y++) sum += dct[i * n + y]! * picture[y * n + x]!
      half[i * n + x] = sum
    }
  const out = new Float32Array(k * k)
  for (let i = 0; i < k; i++)
    for (let j = 0; j < k; j++) {
      let sum = 0
      for (let x = 0; x < n; x++) sum += half[i * n + x]! * dct[j * n + x]!
      out[i * k + j] = sum
    }
  return out
}

/** The instant a fingerprint describes, s (its windows' centre). */
export function fingerprintTime(segment: number, phase: number): number {
  const { segmentSeconds, phases } = fingerprintFormat
  return (segment + 0.5 + phase / phases) * segmentSeconds
}

/**
 * Sampled frames strictly within `half` s of `centre` (frame f is at (f + 0.5) / sampleFps): [from,
 * to]. A frame at the edge would weigh nothing in any pool; leaving it out keeps it out of the bars.
 */
function framesAround(centre: number, half: number): { from: number; to: number } {
  const fps = fingerprintFormat.sampleFps
  return {
    from: Math.max(0, Math.floor((centre - half) * fps - 0.5) + 1),
    to: Math.ceil((centre + half) * fps - 0.5) - 1,
  }
}

/** Segments of a video of `frameCount` sampled frames: every segment whose centre it reaches. */
export function segmentCount(frameCount: number): number {
  const { sampleFps, segmentSeconds } = fingerprintFormat
  return Math.floor(frameCount / sampleFps / segmentSeconds + 0.5)
}

/** What to fingerprint: a range of segments, at some phases. */
export interface FingerprintRange {
  /** First segment (default 0). */
  first?: number
  /** Segments (default: to the end of the video). */
  count?: number
  /** Phases to compute (default all: a query's; a reference needs `[0]`). */
  phases?: readonly number[]
}

/** Every phase, 0..phases-1. */
export const allPhases: readonly number[] = Array.from({ length: fingerprintFormat.phases }, (_, p) => p)

/**
 * The fingerprints a video of `duration` s has in `range`, in order: each segment whose middle the
 * video reaches, at each phase whose instant it reaches. A whole decode and a task of a range make
 * exactly these.
 */
export function fingerprintsIn(
  duration: number,
  range: FingerprintRange = {},
): { segment: number; phase: number }[] {
  const segments = Math.floor(duration / fingerprintFormat.segmentSeconds + 0.5)
  const first = range.first ?? 0
  const last = Math.min(segments, first + (range.count ?? segments))
  const phases = [...(range.phases ?? allPhases)].sort((a, b) => a - b)
  const out: { segment: number; phase: number }[] = []
  for (let segment = first; segment < last; segment++)
    for (const phase of phases)
      if (fingerprintTime(segment, phase) <= duration + 1e-9) out.push({ segment, phase })
  return out
}

/**
 * The decoded span a range needs, s: its instants' windows (`baseWindow` around each), and a
 * quarter second more each side, so a decoder's rounding at the span's edges touches no frame used.
 */
export function decodeSpan(range: { first: number; count: number }): { from: number; to: number } {
  const margin = fingerprintFormat.baseWindow / 2 + 0.25
  return {
    from: Math.max(0, fingerprintTime(range.first, 0) - margin),
    to: fingerprintTime(range.first + range.count - 1, fingerprintFormat.phases - 1) + margin,
  }
}

/** Options of a fingerprinter fed part of a video. */
export interface FingerprinterFeed {
  /** Index (at `sampleFps`) of the first frame pushed: a decoder started at `decodeSpan(range).from`. */
  firstFrame?: number
  /** The video's duration as probed, s: the fingerprints made are `fingerprintsIn(duration, range)`. */
  duration?: number
}

/**
 * Fingerprints a video as it is decoded, holding only the frames the fingerprints not yet done need
 * (`baseWindow` of video): a phone fingerprints an hour the way it fingerprints a minute. Each
 * fingerprint finds its picture (bars) in its own frames, so it depends only on the frames around
 * it: a task of segments [first, first + count) gives what the whole video gives for them.
 */
export class SegmentFingerprinter {
  private readonly frames = new Map<number, Uint8Array>()
  private readonly features = new Map<string, Float32Array>()
  private readonly size: number
  private readonly range: FingerprintRange
  private readonly duration: number | undefined
  private readonly phases: readonly number[]
  private readonly last: number
  /** The next fingerprint to make: segment and index into `phases`. */
  private segment: number
  private phaseAt = 0
  private frameCount: number

  /** @param size side of the decoded frames (`fingerprintFormat.decodeSize`) */
  constructor(size: number, range: FingerprintRange = {}, feed: FingerprinterFeed = {}) {
    this.size = size
    this.range = range
    this.duration = feed.duration
    this.segment = range.first ?? 0
    this.last = this.segment + (range.count ?? Number.POSITIVE_INFINITY)
    this.phases = [...(range.phases ?? allPhases)].sort((a, b) => a - b)
    if (
      this.phases.length === 0 ||
      this.phases.some((p) => !Number.isInteger(p) || p < 0 || p >= fingerprintFormat.phases)
    )
      throw new RangeError(`phases are 0..${fingerprintFormat.phases - 1}`)
    this.frameCount = feed.firstFrame ?? 0
  }

  /** Index of the next frame pushed. */
  get framesSeen(): number {
    return this.frameCount
  }

  /** Takes the next sampled frame; returns the fingerprints it completed. */
  push(frame: Uint8Array): Fingerprint[] {
    if (frame.length !== this.size * this.size)
      throw new RangeError(`a frame of ${frame.length} bytes is not ${this.size}²`)
    this.frames.set(this.frameCount++, frame)
    const done: Fingerprint[] = []
    const half = fingerprintFormat.baseWindow / 2
    const limit = this.duration ?? Number.POSITIVE_INFINITY
    while (
      this.segment < this.last &&
      this.nextTime() <= limit + 1e-9 &&
      framesAround(this.nextTime(), half).to < this.frameCount
    )
      done.push(this.make())
    this.forget()
    return done
  }

  /** The video (or the decoded span) ended: the remaining fingerprints of the range. */
  end(): Fingerprint[] {
    const duration = this.duration ?? this.frameCount / fingerprintFormat.sampleFps
    const made = this.segment * fingerprintFormat.phases + (this.phases[this.phaseAt] ?? 0)
    const done = fingerprintsIn(duration, {
      ...this.range,
      first: this.segment,
      ...(Number.isFinite(this.last) && { count: this.last - this.segment }),
    })
      .filter((f) => f.segment * fingerprintFormat.phases + f.phase >= made && this.phases.includes(f.phase))
      .map(({ segment, phase }) => ({ segment, phase, ...this.bitsAt(fingerprintTime(segment, phase)) }))
    this.segment = this.last
    this.frames.clear()
    this.features.clear()
    return done
  }

  private nextTime(): number {
    return fingerprintTime(this.segment, this.phases[this.phaseAt]!)
  }

  private make(): Fingerprint {
    const segment = this.segment
    const phase = this.phases[this.phaseAt]!
    const fingerprint = { segment, phase, ...this.bitsAt(fingerprintTime(segment, phase)) }
    if (++this.phaseAt === this.phases.length) {
      this.phaseAt = 0
      this.segment++
    }
    return fingerprint
  }

  private forget(): void {
    if (this.segment >= this.last) return
    const keep = framesAround(this.nextTime(), fingerprintFormat.baseWindow / 2).from
    for (const index of this.frames.keys()) if (index < keep) this.frames.delete(index)
    for (const key of this.features.keys()) if (Number(key.split(':')[0]) < keep) this.features.delete(key)
  }

  private bitsAt(centre: number): { bits: Uint8Array; still: boolean } {
    const range = framesAround(centre, fingerprintFormat.baseWindow / 2)
    const frames: { index: number; frame: Uint8Array }[] = []
    for (let f = range.from; f <= Math.min(range.to, this.frameCount - 1); f++) {
      const frame = this.frames.get(f)
      if (frame !== undefined) frames.push({ index: f, frame })
    }
    const box = findPicture({ size: this.size, frames: frames.map((f) => f.frame) })
    const boxKey = `${box.left},${box.top},${box.right},${box.bottom}`
    const features = new Map<number, Float32Array>()
    for (const { index, frame } of frames) {
      const key = `${index}:${boxKey}`
      let feature = this.features.get(key)
      if (feature === undefined) {
        feature = frameFeature(resamplePicture(frame, this.size, box, fingerprintFormat.pictureSize))
        this.features.set(key, feature)
      }
      features.set(index, feature)
    }
    const { bits, still } = fingerprintBitsAt(centre, features)
    return { bits, still }
  }
}

/**
 * The blocks of the fingerprint at instant `centre` (s) from the features of the frames around it
 * (by sampled frame index): for each of `windows`, its triangular pool minus the `baseWindow`'s,
 * scaled to length 1; concatenated.
 */
export function fingerprintBlocks(
  centre: number,
  features: ReadonlyMap<number, Float32Array>,
): { blocks: Float32Array; motion: number } {
  const { sampleFps, windows, baseWindow, coefficients } = fingerprintFormat
  const n = coefficients * coefficients
  const pool = (width: number) => {
    const out = new Float32Array(n)
    let total = 0
    for (const [f, feature] of features) {
      const weight = 1 - Math.abs((f + 0.5) / sampleFps - centre) / (width / 2)
      if (weight <= 0) continue
      total += weight
      for (let i = 0; i < n; i++) out[i]! += weight * feature[i]!
    }
    if (total > 0) for (let i = 0; i < n; i++) out[i]! /= total
    return out
  }
  const base = pool(baseWindow)
  let baseNorm = 0
  for (let i = 0; i < n; i++) baseNorm += base[i]! * base[i]!
  baseNorm = Math.sqrt(baseNorm)
  const blocks = new Float32Array(windows.length * n)
  let motion = Number.POSITIVE_INFINITY
  windows.forEach((width, w) => {
    const block = pool(width)
    let norm = 0
    for (let i = 0; i < n; i++) {
      block[i]! -= base[i]!
      norm += block[i]! * block[i]!
    }
    norm = Math.sqrt(norm)
    motion = Math.min(motion, baseNorm > 0 ? norm / baseNorm : 0)
    const scale = norm > 0 ? 1 / norm : 0
    for (let i = 0; i < n; i++) blocks[w * n + i] = block[i]! * scale
  })
  return { blocks, motion }
}

/**
 * The fingerprint at instant `centre` (s): the signs of the projection of its blocks, and whether
 * the picture barely changed around it (`still`): its bits are then codec noise, and two unrelated
 * still pictures would match on them, so a still fingerprint is neither indexed nor looked up.
 */
export function fingerprintBitsAt(
  centre: number,
  features: ReadonlyMap<number, Float32Array>,
): { bits: Uint8Array; still: boolean; motion: number } {
  const { blocks, motion } = fingerprintBlocks(centre, features)
  return { bits: projectBits(blocks), still: !(motion >= fingerprintFormat.minMotion), motion }
}

/** The fixed ±1 projection, `fingerprintBits` rows of the blocks' length, from `projectionSeed`. */
export const projection: Int8Array = (() => {
  const columns = fingerprintFormat.windows.length * fingerprintFormat.coefficients ** 2
  const out = new Int8Array(fingerprintBits * columns)
  // mulberry32: a 32-bit generator every JavaScript engine computes alike (integer arithmetic only).
  let state = fingerprintFormat.projectionSeed >>> 0
  for (let i = 0; i < out.length; i++) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 1 ? 1 : -1
  }
  return out
})()

/** Bit i is set when projection row i · blocks > 0. */
export function projectBits(blocks: Float32Array): Uint8Array {
  const bits = new Uint8Array(fingerprintFormat.bytes)
  const columns = blocks.length
  for (let row = 0; row < fingerprintBits; row++) {
    let sum = 0
    const base = row * columns
    for (let c = 0; c < columns; c++) sum += projection[base + c]! * blocks[c]!
    if (sum > 0) bits[row >> 3]! |= 1 << (row & 7)
  }
  return bits
}

/** Every fingerprint of a whole video held in memory (tests, small clips). */
export function fingerprintVideo(
  video: LumaFrames,
  range: FingerprintRange = {},
  feed: FingerprinterFeed = {},
): Fingerprint[] {
  const fingerprinter = new SegmentFingerprinter(video.size, range, feed)
  const out: Fingerprint[] = []
  for (const frame of video.frames) out.push(...fingerprinter.push(frame))
  out.push(...fingerprinter.end())
  return out
}
