import type { CheckVerdict, KindValidation } from '../kind.ts'
import type { Block, BlockResult, VertexJob } from './block.ts'
import { colourThreads } from './cpu-worker.ts'

/*
 * How vertex results are validated (README, "Trust"): two results agree when every channel of every
 * thread is within ±1 (the contract between the WebGL and CPU workers), and the coordinator checks a
 * result by recomputing a sample of its threads on the CPU from the same frame. A few hundred threads
 * cost it well under a millisecond beside blocks of thousands, so every result gets at least the cheap
 * check: a participant that turns liar is caught at its first lie.
 */

/** Largest difference of one channel that is not a disagreement (WebGL against CPU). */
export const channelTolerance = 1

/** Threads of a trusted participant's result checked every time. */
const cheapCheckThreads = 32

/** Threads (offsets) where two results' channels differ by more than the tolerance, at most `max`. */
function disputedThreads(a: Uint8Array, b: Uint8Array, max: number): number[] {
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

function describe(bytes: Uint8Array, at: number): string {
  return `(${Array.from(bytes.subarray(at, at + 4)).join(', ')})`
}

export const vertexValidation: KindValidation<VertexJob, Block, BlockResult> = {
  agree: (_task, a, b) =>
    a.colours.length === b.colours.length && disputedThreads(a.colours, b.colours, 1).length === 0,
  disputed: (_task, a, b, max) => disputedThreads(a.colours, b.colours, max),
  cheapCheckUnits: cheapCheckThreads,
  checker(job, env) {
    return {
      async check(task, result, units, signal): Promise<CheckVerdict> {
        const image = await env.frames.get(task.imageUrl, signal)
        const recomputed = colourThreads(job.description, task, image, units)
        for (let i = 0; i < units.length; i++) {
          const o = units[i]! * 4
          for (let c = 0; c < 4; c++)
            if (Math.abs(recomputed[i * 4 + c]! - result.colours[o + c]!) > channelTolerance)
              return {
                ok: false,
                unit: units[i]!,
                reason:
                  `vertex ${task.firstVertex + units[i]!} of camera ${task.cameraId} is ${describe(recomputed, i * 4)}, ` +
                  `the result says ${describe(result.colours, o)}`,
              }
        }
        return { ok: true }
      },
    }
  },
}
