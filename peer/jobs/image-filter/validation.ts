import type { CheckVerdict, KindValidation } from '../kind.ts'
import { describeRgba, disputedRgba, rgbaAgrees } from '../rgba-agreement.ts'
import { checkTaskImage, filterRect } from './filter.ts'
import type { ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'

/*
 * How image-filter results are validated (README, "Trust"): two results agree when every channel of
 * every pixel is within ±1 (the contract between the WebGL and CPU workers, `rgba-agreement.ts`),
 * and the coordinator checks a result by filtering a sample of its pixels itself with `filterRect`,
 * the reference every worker is held to, from the same image. A pixel is a few dozen operations (a
 * bilateral one a few hundred), so every result gets at least the cheap check.
 */

/** Pixels of a trusted participant's result checked every time. */
const cheapCheckPixels = 32

export const imageFilterValidation: KindValidation<ImageFilterJob, ImageTask, ImageTaskResult> = {
  agree: (_task, a, b) => a.rgba.length === b.rgba.length && disputedRgba(a.rgba, b.rgba, 1).length === 0,
  disputed: (_task, a, b, max) => disputedRgba(a.rgba, b.rgba, max),
  cheapCheckUnits: cheapCheckPixels,
  checker(job, env) {
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const image = await env.frames.get(task.imageUrl, signal)
        checkTaskImage(task, image)
        for (const unit of units) {
          // Units are the task's pixels, row by row.
          const x = task.x + (unit % task.w)
          const y = task.y + Math.floor(unit / task.w)
          const pixel = filterRect(image, job.description.filter, { x, y, w: 1, h: 1 })
          if (!rgbaAgrees(pixel, 0, result.rgba, unit))
            return {
              ok: false,
              unit,
              reason: `pixel ${x},${y} of image ${task.frameIndex} is ${describeRgba(pixel, 0)}, the result says ${describeRgba(result.rgba, unit)}`,
            }
        }
        return { ok: true }
      },
    }
  },
}
