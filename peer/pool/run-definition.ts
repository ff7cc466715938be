import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { probeVideo } from '../jobs/match/ffmpeg-frames.ts'
import { defaultLayout } from '../jobs/match/lsh-index.ts'
import type { RunVideo } from '../jobs/match/match-run.ts'
import { defaultMatchRule, type MatchRule } from '../jobs/match/matcher.ts'
import { AbortError, CrowdmeshError, InvalidOptionError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'

/*
 * A pooled match run's definition (issue 15): which user videos and references it matches, and how,
 * written to `run.json` in the run's folder when the run is created, and appended to when it is
 * extended. Everything a coordinator restarted after a crash needs to resume the run is here or in
 * the task pool: a task's id is its video's position in the entries, so every restart and every
 * extension makes the same ones.
 */

const runId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/)
const id = z.string().min(1).max(256)

/** A distinct file of the run, in the order added (its position names its tasks). */
const entrySchema = z.strictObject({
  path: z.string().min(1),
  duration: z.number().gt(0),
  queryId: id.optional(),
  refId: id.optional(),
})

const definitionSchema = z.strictObject({
  version: z.literal(1),
  run: runId,
  priority: z.number().int().min(-1000).max(1000),
  createdAt: z.number(),
  /** Every distinct file, in the order added: an extension appends. */
  entries: z.array(entrySchema),
  failed: z.array(
    z.strictObject({ id: z.string(), role: z.enum(['query', 'reference']), error: z.string() }),
  ),
  /** References per shard: what a participant's snapshot holds for a task. */
  shardSize: z.number().int().min(1).max(2000),
  rule: z.strictObject({
    maxHammingBits: z.number().int().min(0),
    minRunSegments: z.number().int().min(1),
    maxGapSegments: z.number().int().min(0),
  }),
  layout: z.strictObject({
    bandBits: z.union([z.literal(8), z.literal(16), z.literal(32)]),
    probeRadius: z.union([z.literal(0), z.literal(1)]),
  }),
  /** Leave out a reference from a query's matches when they are the same file. */
  skipSelf: z.boolean(),
})
export type RunDefinition = z.infer<typeof definitionSchema>

/** Options of a new run. */
export interface DefineRunInit {
  /** The run's folder (its `run.json`, fingerprints and reference list go there). */
  folder: string
  run: string
  priority?: number
  queries: readonly RunVideo[]
  references: readonly RunVideo[]
  shardSize?: number
  rule?: Partial<MatchRule>
  skipSelf?: boolean
  signal?: AbortSignal
  onProbe?: (done: number, total: number) => void
}

/** The defaults of a pooled run. */
export const runDefaults = {
  priority: 0,
  /** The seed's slice: at most 2,000 references a participant caches for one task. */
  shardSize: 2000,
} as const

/**
 * Probes every video (one that is not a video is reported in `failed`, with its reason) and writes
 * the run's definition. A run's id is its name in the pool: lower-case letters, digits and dashes.
 */
export async function defineRun(init: DefineRunInit): Promise<RunDefinition> {
  if (!runId.safeParse(init.run).success)
    throw new InvalidOptionError(
      `run ${init.run.slice(0, 64)}: use lower-case letters, digits and dashes (at most 48)`,
    )
  const probed = await probeAll([...init.references, ...init.queries], init.signal, init.onProbe)
  const definition: RunDefinition = {
    version: 1,
    run: init.run,
    priority: init.priority ?? runDefaults.priority,
    createdAt: Date.now(),
    entries: [],
    failed: [],
    shardSize: init.shardSize ?? runDefaults.shardSize,
    rule: { ...defaultMatchRule, ...init.rule },
    layout: { bandBits: defaultLayout.bandBits, probeRadius: defaultLayout.probeRadius === 0 ? 0 : 1 },
    skipSelf: init.skipSelf ?? false,
  }
  appendEntries(definition, init.references, init.queries, probed)
  await mkdir(init.folder, { recursive: true })
  await saveRun(init.folder, definition)
  return definition
}

/** Options of an extension: videos to add to a run (those it has are skipped). */
export interface ExtendRunInit {
  folder: string
  queries: readonly RunVideo[]
  references: readonly RunVideo[]
  signal?: AbortSignal
  onProbe?: (done: number, total: number) => void
}

/**
 * Adds videos to a run, served or not: they are probed and appended to its definition, and a
 * coordinator serving it picks them up. A file the run has in another role only is refused (it was
 * fingerprinted for that role). Returns the definition and how many files were added.
 */
export async function extendRun(init: ExtendRunInit): Promise<{ definition: RunDefinition; added: number }> {
  const definition = await loadRun(init.folder)
  const known = new Map(definition.entries.map((e) => [e.path, e]))
  const roles = [
    [init.queries, 'queryId', 'user video'],
    [init.references, 'refId', 'reference'],
  ] as const
  for (const [videos, role, name] of roles)
    for (const v of videos) {
      const held = known.get(v.path)
      if (held !== undefined && held[role] === undefined)
        throw new InvalidOptionError(
          `${v.path} is in run ${definition.run} but not as a ${name}: add a copy of the file instead`,
        )
    }
  const isNew = (v: RunVideo) => !known.has(v.path)
  const queries = init.queries.filter(isNew)
  const references = init.references.filter(isNew)
  const probed = await probeAll([...references, ...queries], init.signal, init.onProbe)
  const before = definition.entries.length
  appendEntries(definition, references, queries, probed)
  await saveRun(init.folder, definition)
  return { definition, added: definition.entries.length - before }
}

/** Reads a run's definition from its folder. */
export async function loadRun(folder: string): Promise<RunDefinition> {
  let text: string
  try {
    text = await readFile(join(folder, 'run.json'), 'utf8')
  } catch (error) {
    throw new CrowdmeshError(
      `${folder}: no run here (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    )
  }
  return parseMessage(definitionSchema, JSON.parse(text) as unknown)
}

/** A distinct file of a run: fingerprinted once, used as a query, a reference, or both. */
export interface RunEntry {
  /** Its position: the fingerprint task's id ends with it. */
  index: number
  path: string
  duration: number
  queryId?: string
  refId?: string
}

/** The run's distinct files, in the order added (stable across restarts and extensions). */
export function runEntries(definition: RunDefinition): RunEntry[] {
  return definition.entries.map((e, index) => ({
    index,
    path: e.path,
    duration: e.duration,
    ...(e.queryId !== undefined && { queryId: e.queryId }),
    ...(e.refId !== undefined && { refId: e.refId }),
  }))
}

/** Pool task ids of a run. */
export const taskIds = {
  fingerprint: (run: string, entry: number) => `${run}/fp/${entry}`,
  match: (run: string, entry: number, shard: number) => `${run}/m/${entry}/${shard}`,
  /** A shard's affinity: what a participant holding it states. */
  shard: (run: string, shard: number) => `${run}/s${shard}`,
}

const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true

/** Each distinct file's duration, or why it is not a video. */
async function probeAll(
  videos: readonly RunVideo[],
  signal: AbortSignal | undefined,
  onProbe: ((done: number, total: number) => void) | undefined,
): Promise<Map<string, number | Error>> {
  const probed = new Map<string, number | Error>()
  let done = 0
  for (const v of videos) {
    if (isAborted(signal)) throw new AbortError()
    if (!probed.has(v.path)) {
      try {
        const { duration } = await probeVideo(v.path, signal)
        if (!(duration > 0)) throw new CrowdmeshError(`${v.path}: its duration is unknown`)
        probed.set(v.path, duration)
      } catch (error) {
        if (error instanceof AbortError || isAborted(signal)) throw error
        probed.set(v.path, error as Error)
      }
    }
    onProbe?.(++done, videos.length)
  }
  return probed
}

/** Appends the probed videos as entries (references first); a video that failed goes to `failed`. */
function appendEntries(
  definition: RunDefinition,
  references: readonly RunVideo[],
  queries: readonly RunVideo[],
  probed: ReadonlyMap<string, number | Error>,
): void {
  const byPath = new Map(definition.entries.map((e) => [e.path, e]))
  const roles = [
    [references, 'refId', 'reference'],
    [queries, 'queryId', 'query'],
  ] as const
  for (const [videos, role, name] of roles)
    for (const v of videos) {
      const duration = probed.get(v.path)!
      if (duration instanceof Error) {
        if (!definition.failed.some((f) => f.id === v.id && f.role === name))
          definition.failed.push({ id: v.id, role: name, error: duration.message })
        continue
      }
      const known = byPath.get(v.path)
      if (known !== undefined) {
        known[role] ??= v.id
        continue
      }
      const added = { path: v.path, duration, [role]: v.id }
      definition.entries.push(added)
      byPath.set(v.path, added)
    }
  parseMessage(definitionSchema, definition)
}

/** Writes a run's definition whole or not at all: a crash while writing leaves the one before. */
async function saveRun(folder: string, definition: RunDefinition): Promise<void> {
  const path = join(folder, 'run.json')
  await writeFile(`${path}.tmp`, JSON.stringify(definition, null, 1))
  await rename(`${path}.tmp`, path)
}
