/** Scores a rendering against a photograph of the same camera. */
export interface ImageScore {
  /** Intersection over union of the rendering's covered pixels and the photograph's object pixels. */
  readonly iou: number
  /** PSNR (dB, 8-bit RGB) over the pixels where both show the object; NaN if there are none. */
  readonly psnr: number
  /** Pixels where both show the object. */
  readonly overlapPixels: number
}

/**
 * Compares a splat rendering (alpha 255 where covered) with a photograph. A photograph's pixel is
 * object when its mean brightness (R+G+B)/3 exceeds `objectBrightness` of full scale (0.19 for the
 * Middlebury black backdrop, as the set's authors suggest).
 */
export function scoreRendering(
  rendering: Uint8Array,
  photo: Uint8Array,
  objectBrightness: number,
): ImageScore {
  if (rendering.length !== photo.length) throw new RangeError('rendering and photograph differ in size')
  const threshold = objectBrightness * 255 * 3
  let union = 0
  let intersection = 0
  let squared = 0
  for (let o = 0; o < photo.length; o += 4) {
    const inPhoto = photo[o]! + photo[o + 1]! + photo[o + 2]! > threshold
    const inRender = rendering[o + 3] === 255
    if (inPhoto || inRender) union++
    if (!(inPhoto && inRender)) continue
    intersection++
    const dr = rendering[o]! - photo[o]!
    const dg = rendering[o + 1]! - photo[o + 1]!
    const db = rendering[o + 2]! - photo[o + 2]!
    squared += dr * dr + dg * dg + db * db
  }
  const mse = intersection === 0 ? Number.NaN : squared / (intersection * 3)
  return {
    iou: union === 0 ? 1 : intersection / union,
    psnr: mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse),
    overlapPixels: intersection,
  }
}
