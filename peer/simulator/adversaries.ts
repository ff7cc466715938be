import type { ResultChecker, ResultValidator, TaskBase } from '../jobs/kind.ts'
import { InvalidOptionError } from '../protocol/errors.ts'
import type { Random } from './random.ts'

/*
 * Participants that lie, for the simulator (README, "Trust"). A simulated result has no contents, so
 * a lie is described instead: which of its units are wrong (a share of them, chosen by a seed), and
 * with which values (the seed again: two lies agree when their seeds and shares do). The simulator's
 * checker and comparisons read these descriptions where the real ones read colours; everything else
 * (the trust book, the policy, withdrawal, quarantine) is the coordinator's own code.
 */

/** The adversaries of the issue, as participant models. */
export const adversaryModels = [
  /** Random values everywhere. */
  'random',
  /** The same wrong answer to every task (every such liar agrees with every other). */
  'constant',
  /** Right except on 1–5 % of its units. */
  'partial',
  /** Returns stale or empty results at once, without computing (every lazy one agrees). */
  'lazy',
  /** Colluders: the same wrong answer for the same task, so two of them agree. */
  'colluder',
  /** Behaves for its first hundred results, then lies on everything. */
  'sleeper',
  /** Lies; once caught, rejoins under a new peer id through the same join link. */
  'rejoiner',
  /** A broken GPU: wrong, not malicious, on a quarter of its units. */
  'broken-gpu',
] as const

export type AdversaryModel = (typeof adversaryModels)[number]

/** The crowd's adversaries: which models (drawn uniformly for each adversary) and what share of the crowd. */
export interface AdversaryMix {
  readonly models: readonly AdversaryModel[]
  readonly share: number
  /** How the mix was written (`mix:0.2`), for reports. */
  readonly name: string
}

/** Results a sleeper returns honestly before it starts lying. */
export const sleeperHonestResults = 100

/**
 * `MODEL[:SHARE]`: a model of `adversaryModels` or `mix` (all of them), and the share of the crowd
 * it makes up (default 0.2; `20%` is allowed). `none` is no adversary (share 0).
 */
export function parseAdversaries(text: string): AdversaryMix {
  const [name = '', shareText] = text.split(':')
  if (name === 'none') return { models: [], share: 0, name: 'none' }
  const models: readonly AdversaryModel[] =
    name === 'mix' ? adversaryModels : adversaryModels.filter((m) => m === name)
  if (models.length === 0)
    throw new InvalidOptionError(
      `--adversaries ${text.slice(0, 64)}: the model is one of ${adversaryModels.join(', ')}, mix or none`,
    )
  const share =
    shareText === undefined
      ? 0.2
      : shareText.endsWith('%')
        ? Number(shareText.slice(0, -1)) / 100
        : Number(shareText)
  if (!(Number.isFinite(share) && share >= 0 && share <= 1))
    throw new InvalidOptionError(
      `--adversaries ${text.slice(0, 64)}: the share is between 0 and 1 (or 0% and 100%)`,
    )
  return { models, share, name: `${name}:${share}` }
}

/** What a simulated result says wrongly: `share` of its units (all at 1), with values chosen by `seed`. */
export interface Lie {
  readonly seed: number
  readonly share: number
  /**
   * A sparse kind's lie (matches: most units have nothing to report): the task it answers (a hash of
   * its key), which fixes where the truth reports something (`truthAt`). A wrong unit there is a
   * hidden match; anywhere else, an invented one.
   */
  readonly task?: number
  /** The empty result of a sparse kind: wrong exactly where the truth reports something. */
  readonly hides?: boolean
}

/**
 * Share of a sparse kind's units where the truth reports something, in the simulator: a user video
 * matches about one reference in five hundred.
 */
export const sparseTruthDensity = 0.002

/** Whether the truth of task `task` (`taskHash`) reports something at unit `unit` (a sparse kind). */
export function truthAt(task: number, unit: number): boolean {
  return hash(task ^ 0x5bd1e995, unit) / 4294967296 < sparseTruthDensity
}

/** The hash of a task's key that a sparse lie carries. */
export const taskHash = (key: string): number => hashText(key)

/** The lies told in simulated results, by result object (an honest result has none). */
export const resultLies = new WeakMap<object, Lie>()

/** Whether unit `unit` of a result with this lie is wrong. */
export function wrongAt(lie: Lie, unit: number): boolean {
  if (lie.hides === true) return lie.task !== undefined && truthAt(lie.task, unit)
  return lie.share >= 1 || hash(lie.seed, unit) / 4294967296 < lie.share
}

/** A sparse lie's wrong unit where the truth has nothing: an invented match. */
export function inventedAt(lie: Lie, unit: number): boolean {
  return wrongAt(lie, unit) && !(lie.task !== undefined && truthAt(lie.task, unit))
}

/** Whether two results (their lies) agree on unit `unit`. */
function agreeAt(a: Lie | undefined, b: Lie | undefined, unit: number): boolean {
  const wrongA = a !== undefined && wrongAt(a, unit)
  const wrongB = b !== undefined && wrongAt(b, unit)
  if (!wrongA && !wrongB) return true
  return wrongA && wrongB && a.seed === b.seed
}

/** A participant's behaviour: the lie it tells in its next result (undefined: an honest one). */
export interface Behaviour {
  readonly model: AdversaryModel
  /**
   * The lie for a task (`key`), given how many results it has returned so far. Of a sparse kind
   * (`sparse`), the lazy device returns the empty result, and so does a sleeper once awake: hiding
   * every match is the lie of a match run that a check finds least.
   */
  lie(key: string, returned: number, sparse: boolean): Lie | undefined
  /** Whether it skips the computing (its results come back at once). */
  readonly lazy: boolean
}

const constantSeed = 1
const emptySeed = 2

/** The behaviour of an adversary of `model`; `device` fixes what its broken GPU gets wrong. */
export function behaviour(model: AdversaryModel, random: Random): Behaviour {
  const device = Math.floor(random.next() * 2 ** 31)
  const partialShare = random.between(0.01, 0.05)
  const fresh = () => 3 + Math.floor(random.next() * 2 ** 30)
  const empty: Lie = { seed: emptySeed, share: 1 }
  const lies: Record<AdversaryModel, (key: string, returned: number) => Lie | undefined> = {
    random: () => ({ seed: fresh(), share: 1 }),
    constant: () => ({ seed: constantSeed, share: 1 }),
    partial: () => ({ seed: fresh(), share: partialShare }),
    lazy: () => empty,
    colluder: (key) => ({ seed: 2 ** 30 + (hashText(key) % 2 ** 30), share: 1 }),
    sleeper: (_key, returned) => (returned < sleeperHonestResults ? undefined : { seed: fresh(), share: 1 }),
    rejoiner: () => ({ seed: fresh(), share: 1 }),
    'broken-gpu': (key) => ({ seed: (device ^ hashText(key)) >>> 0, share: 0.25 }),
  }
  return {
    model,
    lie(key, returned, sparse) {
      const lie = lies[model](key, returned)
      if (!sparse || lie === undefined) return lie
      const task = hashText(key)
      const hides = model === 'lazy' || model === 'sleeper'
      return hides ? { ...empty, task, hides } : { ...lie, task }
    },
    lazy: model === 'lazy',
  }
}

/**
 * The simulator's validator of a job: results compared by their lies, and (where the job's kind has
 * a checker, `withChecker`) a checker that recomputes a unit by asking whether its lie covers it.
 */
export function simulatedValidator(
  taskUnits: (task: TaskBase) => number,
  taskKey: (task: TaskBase) => string,
  withChecker: boolean,
  validation: Pick<ResultValidator, 'cheapCheckUnits' | 'fullCheckUnits' | 'sparseLies'> = {},
): ResultValidator {
  const lieOf = (result: unknown) => resultLies.get(result as object)
  const sparse = validation.sparseLies === true
  const checker: ResultChecker<TaskBase, unknown> = {
    check(task, result, checked) {
      const lie = lieOf(result)
      if (lie === undefined) return { ok: true }
      // A sparse kind's checker also recomputes every unit the result reports something at (the
      // match checker reruns every reported reference): an invented match is always found.
      if (sparse)
        for (let unit = 0, units = taskUnits(task); unit < units; unit++)
          if (inventedAt(lie, unit))
            return { ok: false, unit, reason: `unit ${unit} reports what is not there (simulated lie)` }
      for (const unit of checked)
        if (wrongAt(lie, unit)) return { ok: false, unit, reason: `unit ${unit} is wrong (simulated lie)` }
      return { ok: true }
    },
  }
  return {
    agree(_task, a, b) {
      const lieA = lieOf(a)
      const lieB = lieOf(b)
      if (lieA === undefined && lieB === undefined) return true
      return lieA !== undefined && lieB !== undefined && lieA.seed === lieB.seed && lieA.share === lieB.share
    },
    disputed(task, a, b, max) {
      const lieA = lieOf(a)
      const lieB = lieOf(b)
      const out: number[] = []
      const count = taskUnits(task)
      for (let unit = 0; unit < count && out.length < max; unit++)
        if (!agreeAt(lieA, lieB, unit)) out.push(unit)
      return out
    },
    ...(withChecker && { checker }),
    ...(withChecker &&
      validation.cheapCheckUnits !== undefined && { cheapCheckUnits: validation.cheapCheckUnits }),
    ...(withChecker &&
      validation.fullCheckUnits !== undefined && { fullCheckUnits: validation.fullCheckUnits }),
    ...(sparse && {
      sparseLies: true,
      // What it reports where the truth has something, or where its lie says it does.
      findings(task: TaskBase, result: unknown) {
        const lie = lieOf(result)
        const key = taskHash(taskKey(task))
        for (let unit = 0, units = taskUnits(task); unit < units; unit++)
          if (truthAt(key, unit) !== (lie !== undefined && wrongAt(lie, unit))) return true
        return false
      },
    }),
  }
}

/** A 32-bit hash of two integers (a unit of a lie: wrong or not). */
function hash(seed: number, unit: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(unit + 0x7f4a7c15, 0xc2b2ae35)
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d)
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b)
  h ^= h >>> 16
  return h >>> 0
}

/** A 32-bit FNV-1a hash of a string (a task's key: colluders agree on it). */
function hashText(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}
