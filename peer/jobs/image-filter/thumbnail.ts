import { InvalidMessageError, InvalidOptionError } from '../../protocol/errors.ts'
import { type FilteredImage, maxImagePixels, maxImageSide } from './schemas.ts'

/*
 * What is gossiped of a filtered image: a thumbnail small enough for the gossip limit, as raw RGBA
 * behind a small header (PNG would need a deflate in every browser that reads it; the gossip limit
 * already bounds the bytes).
 *
 *   u8  format (1)
 *   u32 frameIndex
 *   u16 image width, image height (the filtered image's)
 *   u16 thumbnail width, thumbnail height
 *   thumbnail width · height · 4 bytes of RGBA, row-major
 *
 * Little-endian. It comes from strangers: `decodeThumbnail` accepts only sizes the kind could have
 * produced and an exact length.
 */

const format = 1
const headerBytes = 13

/** A gossiped outcome: the thumbnail (`width`×`height`, `rgba`) of the image filtered in round `frameIndex`. */
export interface FilteredThumbnail {
  readonly frameIndex: number
  /** The thumbnail's size; `rgba` holds width·height·4 bytes. */
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
  /** The filtered image's size. */
  readonly imageWidth: number
  readonly imageHeight: number
}

/** The largest thumbnail of `image`'s aspect whose encoding fits `maxBytes`; never larger than the image. */
export function thumbnailSize(
  width: number,
  height: number,
  maxBytes: number,
): { width: number; height: number } {
  const budget = Math.floor((maxBytes - headerBytes) / 4)
  if (budget < 1) throw new InvalidOptionError(`${maxBytes} bytes hold no thumbnail`)
  if (width * height <= budget) return { width, height }
  const scale = Math.sqrt(budget / (width * height))
  let w = Math.max(1, Math.floor(width * scale))
  let h = Math.max(1, Math.floor(height * scale))
  // Floors of a float product may still overshoot by a pixel row: shrink the longer side until it fits.
  while (w * h > budget) {
    if (w >= h) w--
    else h--
  }
  return { width: w, height: h }
}

/** Encodes a thumbnail of `image` (each pixel the rounded mean of its source area), at most `maxBytes` long. */
export function encodeThumbnail(image: FilteredImage, maxBytes: number): Uint8Array {
  const size = thumbnailSize(image.width, image.height, maxBytes)
  const bytes = new Uint8Array(headerBytes + size.width * size.height * 4)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, format)
  view.setUint32(1, image.frameIndex, true)
  view.setUint16(5, image.width, true)
  view.setUint16(7, image.height, true)
  view.setUint16(9, size.width, true)
  view.setUint16(11, size.height, true)
  bytes.set(downscale(image, size.width, size.height), headerBytes)
  return bytes
}

/** Reads a gossiped thumbnail; throws `InvalidMessageError` naming the field for anything malformed. */
export function decodeThumbnail(bytes: Uint8Array): FilteredThumbnail {
  if (bytes.length < headerBytes)
    throw new InvalidMessageError('length', `${bytes.length} bytes hold no header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint8(0) !== format) throw new InvalidMessageError('format', `format ${view.getUint8(0)}`)
  const frameIndex = view.getUint32(1, true)
  const imageWidth = view.getUint16(5, true)
  const imageHeight = view.getUint16(7, true)
  const width = view.getUint16(9, true)
  const height = view.getUint16(11, true)
  if (imageWidth < 1 || imageWidth > maxImageSide) throw new InvalidMessageError('imageWidth', 'out of range')
  if (imageHeight < 1 || imageHeight > maxImageSide)
    throw new InvalidMessageError('imageHeight', 'out of range')
  if (imageWidth * imageHeight > maxImagePixels)
    throw new InvalidMessageError('imageHeight', 'too many pixels')
  if (width < 1 || width > imageWidth) throw new InvalidMessageError('width', 'not within the image width')
  if (height < 1 || height > imageHeight)
    throw new InvalidMessageError('height', 'not within the image height')
  if (bytes.length !== headerBytes + width * height * 4) {
    throw new InvalidMessageError(
      'length',
      `${bytes.length} bytes, a ${width}×${height} thumbnail has more or less`,
    )
  }
  return { frameIndex, width, height, rgba: bytes.slice(headerBytes), imageWidth, imageHeight }
}

/** Area-average downscaling: thumbnail pixel (i, j) is the mean of its source rectangle, rounded half up. */
function downscale(image: FilteredImage, width: number, height: number): Uint8Array {
  if (width === image.width && height === image.height) return image.rgba
  const out = new Uint8Array(width * height * 4)
  const sums = new Float64Array(4)
  for (let j = 0, o = 0; j < height; j++) {
    const y0 = Math.floor((j * image.height) / height)
    const y1 = Math.floor(((j + 1) * image.height) / height)
    for (let i = 0; i < width; i++, o += 4) {
      const x0 = Math.floor((i * image.width) / width)
      const x1 = Math.floor(((i + 1) * image.width) / width)
      sums.fill(0)
      for (let y = y0; y < y1; y++) {
        for (let x = x0, p = (y * image.width + x0) * 4; x < x1; x++, p += 4) {
          for (let c = 0; c < 4; c++) sums[c]! += image.rgba[p + c]!
        }
      }
      const n = (x1 - x0) * (y1 - y0)
      for (let c = 0; c < 4; c++) out[o + c] = Math.floor((2 * sums[c]! + n) / (2 * n))
    }
  }
  return out
}
