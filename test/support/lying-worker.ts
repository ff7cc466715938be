import type { AnyJobKind, TaskBase } from '../../peer/jobs/kind.ts'
import type { AnyTaskWorker, WorkerFactory } from '../../peer/participant/job-directory.ts'

/*
 * Workers that lie, for tests of validation over the real mesh (README, "Trust"): code a test
 * composes into a participant (`runNodeParticipant`'s `workers`), never an option of `crowdmesh
 * join`. They lie about vertex results (RGBA per thread) and match results (matches hidden or
 * invented) in the ways, always in a well-formed result, so that only the coordinator's
 * checks can tell; other kinds' results pass through untouched.
 */

export const liarModels = [
  'random',
  'constant',
  'partial',
  'lazy',
  'colluder',
  'sleeper',
  'broken-gpu',
] as const
export type LiarModel = (typeof liarModels)[number]

export interface LiarOptions {
  /** Results a sleeper returns honestly before it lies (default 100). */
  honestFirst?: number
}

/** A vertex-shaped result: a task's identity and RGBA bytes per thread. */
interface ColourResult {
  readonly frameIndex: number
  readonly cameraId: number
  readonly firstVertex: number
  readonly colours: Uint8Array
}

/** A match-shaped result: a slice of references and the matches found in it. */
interface MatchesResult {
  readonly videoId: string
  readonly firstRef: number
  readonly refCount: number
  readonly matches: readonly {
    ref: number
    ugcStart: number
    ugcEnd: number
    refStart: number
    refEnd: number
    score: number
  }[]
}

function isMatchesResult(result: unknown): result is MatchesResult {
  return typeof result === 'object' && result !== null && Array.isArray((result as MatchesResult).matches)
}

/**
 * The lie `model` tells about a match result: random and sleepers hide every match and invent one,
 * constant ones always report the slice's first reference, lazy ones and colluders report nothing,
 * partial ones hide one match. A broken GPU does not match (matching runs on the CPU).
 */
function lieAboutMatches(
  model: LiarModel,
  result: MatchesResult,
  returned: number,
  honestFirst: number,
): MatchesResult {
  if ((model === 'sleeper' && returned < honestFirst) || model === 'broken-gpu') return result
  const invented = (ref: number) => ({ ref, ugcStart: 0, ugcEnd: 4, refStart: 0, refEnd: 4, score: 0.9 })
  switch (model) {
    case 'random':
    case 'sleeper':
      return { ...result, matches: [invented(result.firstRef + Math.floor(Math.random() * result.refCount))] }
    case 'constant':
      return { ...result, matches: [invented(result.firstRef)] }
    case 'partial':
      return { ...result, matches: result.matches.slice(1) }
    default:
      return { ...result, matches: [] }
  }
}

function isColourResult(result: unknown): result is ColourResult {
  return (
    typeof result === 'object' && result !== null && (result as ColourResult).colours instanceof Uint8Array
  )
}

/** A 32-bit hash of a thread (colluders agree on it). */
function threadHash(result: ColourResult, thread: number): number {
  let h = Math.imul(result.frameIndex + 1, 0x9e3779b1) ^ Math.imul(result.cameraId + 7, 0x85ebca6b)
  h ^= Math.imul(result.firstVertex + thread + 13, 0xc2b2ae35)
  h ^= h >>> 15
  return Math.imul(h, 0x2c1b3c6d) >>> 0
}

/** Sets thread `i` to a seen colour at least 64 away from what it was in its first channel. */
function paint(colours: Uint8Array, i: number, r: number, g: number, b: number): void {
  const o = i * 4
  colours[o] = Math.abs(r - colours[o]!) > 1 ? r : (r + 128) & 0xff
  colours[o + 1] = g
  colours[o + 2] = b
  colours[o + 3] = 255
}

/** The lie `model` tells in its `returned`-th result (`honest` unchanged). */
function lie(model: LiarModel, result: ColourResult, returned: number, honestFirst: number): ColourResult {
  if (model === 'sleeper' && returned < honestFirst) return result
  const colours = result.colours.slice()
  const threads = colours.length / 4
  for (let i = 0; i < threads; i++) {
    const h = threadHash(result, i)
    switch (model) {
      case 'random':
      case 'sleeper':
        paint(colours, i, Math.floor(Math.random() * 256), Math.floor(Math.random() * 256), 0)
        break
      case 'constant':
        paint(colours, i, 200, 40, 40)
        break
      case 'partial':
        if (h % 100 < 3) paint(colours, i, (colours[i * 4]! + 128) & 0xff, 0, 0)
        break
      case 'colluder':
        paint(colours, i, h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff)
        break
      case 'broken-gpu':
        if (h % 4 === 0) paint(colours, i, colours[i * 4 + 2]!, colours[i * 4]!, colours[i * 4 + 1]!)
        break
      case 'lazy':
        // Nothing seen anywhere: an empty result, returned without computing.
        colours.fill(0, i * 4, i * 4 + 4)
        break
    }
  }
  return { ...result, colours }
}

/** `factory`'s workers, lying as `model` does about vertex results. */
export function lyingWorkers(
  factory: WorkerFactory,
  model: LiarModel,
  options: LiarOptions = {},
): WorkerFactory {
  const honestFirst = options.honestFirst ?? 100
  let returned = 0
  return async (kind: AnyJobKind) => {
    const worker = await factory(kind)
    const liar: AnyTaskWorker = {
      ...worker,
      backend: worker.backend,
      async run(job, task: TaskBase, signal) {
        if (model === 'lazy') {
          const empty = kind.simulation.fakeResult(task) as unknown
          if (isColourResult(empty)) return lie(model, empty, returned++, honestFirst)
          if (isMatchesResult(empty)) return lieAboutMatches(model, empty, returned++, honestFirst)
        }
        const result = await worker.run(job, task, signal)
        if (isColourResult(result)) return lie(model, result, returned++, honestFirst)
        if (isMatchesResult(result)) return lieAboutMatches(model, result, returned++, honestFirst)
        return result
      },
    }
    return liar
  }
}
