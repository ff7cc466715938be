/*
 * How two RGBA results of a kind that draws pixels or colours agree (README, "Trust"): every channel
 * within ±1, the contract between the WebGL and the CPU workers (the vertex and image-filter kinds).
 */

/** Largest difference of one channel that is not a disagreement (WebGL against CPU). */
export const channelTolerance = 1

/** Units (RGBA quadruples, by offset) where two results differ beyond the tolerance, at most `max`. */
export function disputedRgba(a: Uint8Array, b: Uint8Array, max: number): number[] {
  const out: number[] = []
  if (a.length !== b.length) return out
  for (let i = 0; i < a.length && out.length < max; i += 4)
    for (let c = 0; c < 4; c++)
      if (Math.abs(a[i + c]! - b[i + c]!) > channelTolerance) {
        out.push(i / 4)
        break
      }
  return out
}

/** Whether unit `at` of `recomputed` and unit `unit` of `reported` agree. */
export function rgbaAgrees(recomputed: Uint8Array, at: number, reported: Uint8Array, unit: number): boolean {
  for (let c = 0; c < 4; c++)
    if (Math.abs(recomputed[at * 4 + c]! - reported[unit * 4 + c]!) > channelTolerance) return false
  return true
}

/** A unit's four channels, as a check's reason names them: `(r, g, b, a)`. */
export function describeRgba(bytes: Uint8Array, unit: number): string {
  return `(${Array.from(bytes.subarray(unit * 4, unit * 4 + 4)).join(', ')})`
}
