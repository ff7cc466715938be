/**
 * A calibrated camera: P = K·[R|t], with the image origin at the top-left, x to the right and
 * y down (the Middlebury convention). A point X projects to (u, v) = (P₀·X̃ / P₂·X̃, P₁·X̃ / P₂·X̃)
 * and its depth is P₂·X̃ (positive in front of the camera when K₃₃ = 1 and R is a rotation).
 */
export interface Camera {
  /** Stable id within a job; frames name their camera by it. */
  readonly id: number
  /** Human name (the image name in the data set, e.g. `templeSR0001`). */
  readonly name: string
  /** Intrinsics K, row-major 3×3. */
  readonly k: readonly number[]
  /** Rotation R, row-major 3×3. */
  readonly r: readonly number[]
  /** Translation t. */
  readonly t: readonly number[]
  /** Image width and height in pixels. */
  readonly width: number
  readonly height: number
}

/** The 3×4 projection matrix P = K·[R|t], row-major (12 numbers). */
export function projectionMatrix(camera: Camera): Float64Array {
  const { k, r, t } = camera
  const rt = [r[0]!, r[1]!, r[2]!, t[0]!, r[3]!, r[4]!, r[5]!, t[1]!, r[6]!, r[7]!, r[8]!, t[2]!]
  const p = new Float64Array(12)
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 4; j++) {
      p[i * 4 + j] = k[i * 3]! * rt[j]! + k[i * 3 + 1]! * rt[4 + j]! + k[i * 3 + 2]! * rt[8 + j]!
    }
  }
  return p
}

/** Focal length in pixels used for projected area sizes: the mean of fx and fy. */
export function focalLength(camera: Camera): number {
  return (camera.k[0]! + camera.k[4]!) / 2
}

/** Camera centre in world coordinates, C = −Rᵀt. */
export function cameraCentre(camera: Camera): [number, number, number] {
  const { r, t } = camera
  return [
    -(r[0]! * t[0]! + r[3]! * t[1]! + r[6]! * t[2]!),
    -(r[1]! * t[0]! + r[4]! * t[1]! + r[7]! * t[2]!),
    -(r[2]! * t[0]! + r[5]! * t[1]! + r[8]! * t[2]!),
  ]
}
