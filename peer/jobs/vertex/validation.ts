import type { CheckVerdict, KindValidation } from '../kind.ts'
import { describeRgba, disputedRgba, rgbaAgrees } from '../rgba-agreement.ts'
import type { Block, BlockResult, VertexJob } from './block.ts'
import { colourThreads } from './cpu-worker.ts'

/*
 * How vertex results are validated (README, "Trust"): two results agree when every channel of every
 * thread is within ±1 (the contract between the WebGL and CPU workers, `rgba-agreement.ts`), and the
 * coordinator checks a result by recomputing a sample of its threads on the CPU from the same frame.
 * A few hundred threads cost it well under a millisecond beside blocks of thousands, so every result
 * gets at least the cheap check: a participant that turns liar is caught at its first lie.
 */

/** Threads of a trusted participant's result checked every time. */
const cheapCheckThreads = 32

export const vertexValidation: KindValidation<VertexJob, Block, BlockResult> = {
  agree: (_task, a, b) =>
    a.colours.length === b.colours.length && disputedRgba(a.colours, b.colours, 1).length === 0,
  disputed: (_task, a, b, max) => disputedRgba(a.colours, b.colours, max),
  cheapCheckUnits: cheapCheckThreads,
  checker(job, env) {
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const image = await env.frames.get(task.imageUrl, signal)
        const recomputed = colourThreads(job.description, task, image, units)
        for (const [i, unit] of units.entries())
          if (!rgbaAgrees(recomputed, i, result.colours, unit))
            return {
              ok: false,
              unit,
              reason:
                `vertex ${task.firstVertex + unit} of camera ${task.cameraId} is ${describeRgba(recomputed, i)}, ` +
                `the result says ${describeRgba(result.colours, unit)}`,
            }
        return { ok: true }
      },
    }
  },
}
