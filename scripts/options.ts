import { existsSync } from 'node:fs'
import { mkdtemp, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ParseArgsConfig, parseArgs } from 'node:util'
import { loadMiddlebury, type MultiViewDataset, parseBox } from '../peer/datasets/middlebury.ts'
import { defaultScene, writeSyntheticDataset } from '../peer/datasets/synthetic.ts'
import { texturedScene, type TexturedVariant, writeTexturedDataset } from '../peer/datasets/textured-scene.ts'

/** A command line that cannot be understood; the CLI prints it with a pointer to `--help`. */
export class UsageError extends Error {
  override name = 'UsageError'
}

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Parses a command's arguments; prints `help` and returns undefined on `--help`. Unknown options and
 * stray positionals are usage errors.
 */
export function parseCommand(
  args: string[],
  options: Options,
  help: string,
): Record<string, string | boolean | undefined> | undefined {
  return parseCommandWithPositionals(args, options, help, 0)?.values
}

/** As `parseCommand`, for a command that takes exactly `count` positional arguments. */
export function parseCommandWithPositionals(
  args: string[],
  options: Options,
  help: string,
  count: number,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } | undefined {
  let values: Record<string, unknown>
  let positionals: string[]
  try {
    ;({ values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: count > 0,
    }))
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  if (values.help === true) {
    process.stdout.write(help)
    return undefined
  }
  if (positionals.length !== count)
    throw new UsageError(`expected ${count} argument${count === 1 ? '' : 's'}, got ${positionals.length}`)
  return { values: values as Record<string, string | boolean | undefined>, positionals }
}

/** A string option's value (a boolean flag given where a value was expected is a usage error). */
export function stringOption(
  values: Record<string, string | boolean | undefined>,
  name: string,
): string | undefined {
  const value = values[name]
  if (typeof value === 'boolean') throw new UsageError(`--${name} needs a value`)
  return value
}

/** Parses a positive integer option. */
export function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${name} must be a positive integer, got "${value}"`)
  return n
}

/** Parses an integer option that may be 0. */
export function countOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${name} must be 0 or a positive integer, got "${value}"`)
  return n
}

/** The repository root (where package.json is). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/**
 * The default data set: templeSparseRing in the shared data folder beside the repository, or
 * undefined when it is not there (commands then fall back to a generated synthetic scene).
 */
export function defaultDataset(): string | undefined {
  const candidates = [
    process.env.CROWDMESH_DATA && join(process.env.CROWDMESH_DATA, 'templeSparseRing'),
    join(repoRoot, '..', 'shared', 'data', 'templeSparseRing'),
  ]
  return candidates.find((c): c is string => typeof c === 'string' && existsSync(join(c, 'templeSR_par.txt')))
}

/** The generated data sets a command can name by a word, and the folder each is rendered into once. */
export const generatedDatasets = {
  synthetic: { folder: 'crowdmesh-synthetic-v1', par: 'synthetic_par.txt' },
  arches: { folder: 'crowdmesh-archesRing-v1', par: 'archesRing_par.txt' },
  pots: { folder: 'crowdmesh-potsRing-v1', par: 'potsRing_par.txt' },
} as const

/**
 * Loads the data set a command names: a folder; a generated scene by its word (`synthetic`, the
 * flat-coloured solids scored against their ground truth; `arches` or `pots`, photoreal textured
 * scenes on a sparse ring like templeSparseRing), rendered into a temporary folder once; or nothing:
 * templeSparseRing from the shared data folder, falling back to the synthetic scene (and saying so)
 * where that is missing.
 */
export async function resolveDataset(
  dir: string | undefined,
  bbox: string | undefined,
  say: (line: string) => void,
): Promise<MultiViewDataset> {
  const box = bbox === undefined ? {} : { box: parseBox(bbox) }
  if (dir !== undefined && !Object.hasOwn(generatedDatasets, dir)) return loadMiddlebury(dir, box)
  if (dir === undefined) {
    const shared = defaultDataset()
    if (shared !== undefined) return loadMiddlebury(shared, box)
  }
  const word = (dir ?? 'synthetic') as keyof typeof generatedDatasets
  const { folder, par } = generatedDatasets[word]
  // One folder for every run (the scenes are deterministic), made whole before it is named: a run
  // leaves nothing behind per process, and two runs at once never read a half-written scene.
  const generated = join(tmpdir(), folder)
  if (!existsSync(join(generated, par))) {
    say(
      `${dir === undefined ? 'templeSparseRing not found; generating' : 'generating'} the ${word} scene in ${generated}`,
    )
    const staging = await mkdtemp(`${generated}-`)
    if (word === 'synthetic') await writeSyntheticDataset(defaultScene(), staging)
    else await writeTexturedDataset(texturedScene({ variant: word satisfies TexturedVariant }), staging)
    await rename(staging, generated).catch(() => rm(staging, { recursive: true, force: true }))
  }
  return loadMiddlebury(generated, box)
}
