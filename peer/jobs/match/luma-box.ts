import { fingerprintFormat } from './format.ts'

/*
 * A decoded frame reduced to the fingerprint's square of luminance, in the browser: what ffmpeg's
 * `scale=128:128:flags=area,format=gray` does in Node. Luminance is full range (0..255), as ffmpeg's
 * gray is: the video's own Y plane where the decoder hands it over (WebCodecs' I420 and NV12),
 * stretched from 16..235 when the video is limited range; or recovered from RGB with the matrix
 * the browser converted with. Each output pixel is the area-weighted mean of the source pixels it
 * covers (a box filter). The CPU worker runs this; the WebGL worker's
 * shader computes the same sums, and the two are compared in Chromium.
 */

/** Y' = r·R + g·G + b·B (R, G, B in 0..255, Y' full range). */
export interface LumaMatrix {
  r: number
  g: number
  b: number
}

/** BT.601 (SD video, and what an untagged SD video is taken to be). */
export const bt601: LumaMatrix = { r: 0.299, g: 0.587, b: 0.114 }
/** BT.709 (HD video). */
export const bt709: LumaMatrix = { r: 0.2126, g: 0.7152, b: 0.0722 }

/**
 * The matrix a browser converted a frame's YUV to RGB with: the frame's own, or (untagged) BT.709 for
 * HD and BT.601 for SD, as Chromium assumes.
 */
export function lumaMatrixOf(matrix: string | null | undefined, height: number): LumaMatrix {
  if (matrix === 'bt709') return bt709
  if (matrix === 'bt470bg' || matrix === 'smpte170m') return bt601
  return height >= 720 ? bt709 : bt601
}

/** One plane of 8-bit samples: `width` × `height` visible, rows `stride` apart from `offset`. */
export interface Plane {
  data: Uint8Array | Uint8ClampedArray
  width: number
  height: number
  stride: number
  offset?: number
}

/** The weights of source pixels over one output pixel along an axis: [first, weights…]. */
interface AxisSpan {
  first: number
  weights: Float64Array
}

/** Each output pixel's span of source pixels, with the share of each it covers. */
function axisSpans(source: number, out: number): AxisSpan[] {
  const scale = source / out
  const spans: AxisSpan[] = []
  for (let i = 0; i < out; i++) {
    const from = i * scale
    const to = (i + 1) * scale
    const first = Math.floor(from)
    const last = Math.min(source - 1, Math.ceil(to) - 1)
    const weights = new Float64Array(last - first + 1)
    for (let s = first; s <= last; s++) weights[s - first] = (Math.min(to, s + 1) - Math.max(from, s)) / scale
    spans.push({ first, weights })
  }
  return spans
}

/**
 * A plane averaged down to `size`² by area (rows first, then columns), rounded to bytes.
 * `limitedRange`: the plane is 16..235 (TV range), stretched to 0..255 as ffmpeg's gray is.
 */
export function boxLuma(
  plane: Plane,
  size: number = fingerprintFormat.decodeSize,
  limitedRange = false,
): Uint8Array {
  const { data, width, height, stride } = plane
  const offset = plane.offset ?? 0
  const columns = axisSpans(width, size)
  const rows = axisSpans(height, size)
  // Columns first: one pass over the source, `size` sums per source row.
  const narrow = new Float64Array(height * size)
  for (let y = 0; y < height; y++) {
    const row = offset + y * stride
    for (let x = 0; x < size; x++) {
      const { first, weights } = columns[x]!
      let sum = 0
      for (let k = 0; k < weights.length; k++) sum += data[row + first + k]! * weights[k]!
      narrow[y * size + x] = sum
    }
  }
  const out = new Uint8Array(size * size)
  for (let y = 0; y < size; y++) {
    const { first, weights } = rows[y]!
    for (let x = 0; x < size; x++) {
      let sum = 0
      for (let k = 0; k < weights.length; k++) sum += narrow[(first + k) * size + x]! * weights[k]!
      const value = limitedRange ? ((sum - 16) * 255) / 219 : sum
      out[y * size + x] = Math.min(255, Math.max(0, Math.round(value)))
    }
  }
  return out
}

/** Full-range luminance of RGBA pixels (a canvas's), as a plane of `width` × `height`. */
export function lumaOfRgba(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  matrix: LumaMatrix,
): Plane {
  const data = new Uint8Array(width * height)
  for (let i = 0, p = 0; i < data.length; i++, p += 4)
    data[i] = Math.round(matrix.r * rgba[p]! + matrix.g * rgba[p + 1]! + matrix.b * rgba[p + 2]!)
  return { data, width, height, stride: width }
}
