import { PNG } from 'pngjs'
import { FrameFetchError } from '../protocol/errors.ts'

/**
 * A decoded camera frame: RGBA pixels, row-major from the top-left, plus its summed-area table so
 * that the mean of any pixel rectangle costs four reads per channel whatever the area size.
 */
export interface FrameImage {
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
  /**
   * Summed-area table, (width+1)·(height+1) entries of 3 channels: entry (x, y) is the sum of the
   * pixels left of x and above y. Uint32 holds up to 255·16.8 M pixels, far past any camera image.
   */
  readonly integral: Uint32Array
}

/** Builds a frame image (and its summed-area table) from RGBA pixels. */
export function frameImage(width: number, height: number, rgba: Uint8Array): FrameImage {
  if (rgba.length !== width * height * 4) {
    throw new FrameFetchError(`RGBA buffer of ${rgba.length} bytes does not fit ${width}×${height}`)
  }
  const stride = (width + 1) * 3
  const integral = new Uint32Array(stride * (height + 1))
  for (let y = 0; y < height; y++) {
    let r = 0
    let g = 0
    let b = 0
    const row = (y + 1) * stride
    const above = y * stride
    let p = y * width * 4
    for (let x = 0; x < width; x++, p += 4) {
      r += rgba[p]!
      g += rgba[p + 1]!
      b += rgba[p + 2]!
      const o = row + (x + 1) * 3
      const a = above + (x + 1) * 3
      integral[o] = integral[a]! + r
      integral[o + 1] = integral[a + 1]! + g
      integral[o + 2] = integral[a + 2]! + b
    }
  }
  return { width, height, rgba, integral }
}

/** Decodes a PNG file's bytes into a frame image; a broken file raises `FrameFetchError`. */
export function decodePng(bytes: Uint8Array, what = 'image'): FrameImage {
  let png: PNG
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (cause) {
    throw new FrameFetchError(`${what} is not a readable PNG: ${(cause as Error).message}`, { cause })
  }
  return frameImage(
    png.width,
    png.height,
    new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length),
  )
}

/** Encodes RGBA pixels as PNG bytes. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const png = new PNG({ width, height })
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength)
  return PNG.sync.write(png)
}
