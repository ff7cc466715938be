import { FrameFetchError } from '../protocol/errors.ts'

/** A decoded input image (a frame of a show, a photograph): RGBA pixels, row-major from the top-left. */
export interface FrameImage {
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
  /** Summed-area tables by background threshold, built on first use (see `summedAreaTable`). */
  readonly tables: Map<number, Uint32Array>
}

/** Wraps RGBA pixels as a frame image. */
export function frameImage(width: number, height: number, rgba: Uint8Array): FrameImage {
  if (rgba.length !== width * height * 4) {
    throw new FrameFetchError(`RGBA buffer of ${rgba.length} bytes does not fit ${width}×${height}`)
  }
  return { width, height, rgba, tables: new Map() }
}

/**
 * The frame's summed-area table of foreground pixels: (width+1)·(height+1) entries of 4 channels
 * (R, G, B summed over foreground pixels, and the count of foreground pixels); entry (x, y) covers
 * the pixels left of x and above y. A pixel is foreground when R+G+B > `backgroundSum`. Any area's
 * sums then cost four reads per channel, whatever its size. Uint32 holds 255 · 16.8 M pixels.
 */
export function summedAreaTable(image: FrameImage, backgroundSum: number): Uint32Array {
  const cached = image.tables.get(backgroundSum)
  if (cached !== undefined) return cached
  const { width, height, rgba } = image
  const stride = (width + 1) * 4
  const table = new Uint32Array(stride * (height + 1))
  for (let y = 0; y < height; y++) {
    let r = 0
    let g = 0
    let b = 0
    let m = 0
    const row = (y + 1) * stride
    const above = y * stride
    for (let x = 0, p = y * width * 4; x < width; x++, p += 4) {
      const pr = rgba[p]!
      const pg = rgba[p + 1]!
      const pb = rgba[p + 2]!
      if (pr + pg + pb > backgroundSum) {
        r += pr
        g += pg
        b += pb
        m++
      }
      const o = row + (x + 1) * 4
      const a = above + (x + 1) * 4
      table[o] = table[a]! + r
      table[o + 1] = table[a + 1]! + g
      table[o + 2] = table[a + 2]! + b
      table[o + 3] = table[a + 3]! + m
    }
  }
  image.tables.set(backgroundSum, table)
  return table
}
