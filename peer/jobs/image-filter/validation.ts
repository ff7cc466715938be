import type { CheckVerdict, KindValidation } from '../kind.ts'
import { checkTaskImage, filterRect } from './filter.ts'
import type { ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'

/*
 * How image-filter results are validated (README, "Trust"): two results agree when every channel of
 * every pixel is within ±1 (the contract between the WebGL and CPU workers), and the coordinator
 * checks a result by filtering a sample of its pixels itself with `filterRect`, the reference every
 * worker is held to, from the same image. A pixel is a few dozen operations (a bilateral one a few
 * hundred), so every result gets at least the cheap check.
 */

/** Largest difference of one channel that is not a disagreement (WebGL against CPU). */
export const channelTolerance = 1

/** Pixels of a trusted participant's result checked every time. */
const cheapCheckPixels = 32

/** Pixels (offsets in the task's rectangle, row-major) where two results differ beyond the tolerance. */
function disputedPixels(a: Uint8Array, b: Uint8Array, max: number): number[] {
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

const describe = (bytes: Uint8Array, at: number) => `(${Array.from(bytes.subarray(at, at + 4)).join(', ')})`

export const imageFilterValidation: KindValidation<ImageFilterJob, ImageTask, ImageTaskResult> = {
  agree: (_task, a, b) => a.rgba.length === b.rgba.length && disputedPixels(a.rgba, b.rgba, 1).length === 0,
  disputed: (_task, a, b, max) => disputedPixels(a.rgba, b.rgba, max),
  cheapCheckUnits: cheapCheckPixels,
  checker(job, env) {
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const image = await env.frames.get(task.imageUrl, signal)
        checkTaskImage(task, image)
        for (const unit of units) {
          const x = task.x + (unit % task.w)
          const y = task.y + Math.floor(unit / task.w)
          const pixel = filterRect(image, job.description.filter, { x, y, w: 1, h: 1 })
          const o = unit * 4
          for (let c = 0; c < 4; c++)
            if (Math.abs(pixel[c]! - result.rgba[o + c]!) > channelTolerance)
              return {
                ok: false,
                unit,
                reason: `pixel ${x},${y} of image ${task.frameIndex} is ${describe(pixel, 0)}, the result says ${describe(result.rgba, o)}`,
              }
        }
        return { ok: true }
      },
    }
  },
}
