import { PNG } from 'pngjs'
import { FrameFetchError } from '../protocol/errors.ts'
import { type FrameImage, frameImage } from './frame-image.ts'

// PNG through pngjs, in Node only: a browser decodes images itself (`peer/browser/frame-decode.ts`).

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
