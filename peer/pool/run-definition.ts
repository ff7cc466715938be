import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { probeVideo } from '../jobs/match/ffmpeg-frames.ts'
import { defaultLayout } from '../jobs/match/lsh-index.ts'
import { defaultMatchRule, type MatchRule } from '../jobs/match/matcher.ts'
import type { RunVideo } from '../jobs/match/match-run.ts'
import { AbortError, CrowdmeshError, InvalidOptionError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'

/*
 * A pooled match run's definition (issue 15): which user videos and references it matches, how, and
 * in what shards, written once to `run.json` in the run's folder when the run is created. Everything
 * a coordinator restarted after a crash needs to resume the run is here or in the task pool: the
 * tasks' ids are positions in this file, so they come out the same every time.
 */

/** A video of a run, probed. */
export interface RunFile {
  id: string
  path: string
  duration: number
}

const runId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,47}$/)
const video = z.strictObject({
  id: z.string().min(1).max(256),
  path: z.string().min(1),
  duration: z.number().gt(0),
})

const definitionSchema = z.strictObject({
  version: z.literal(1),
  run: runId,
  priority: z.number().int().min(-1000).max(1000),
  createdAt: z.number(),
  queries: z.array(video),
  references: z.array(video),
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
  const failed: RunDefinition['failed'] = []
  const probed = new Map<string, number | Error>()
  const all = [...init.references, ...init.queries]
  let done = 0
  for (const v of all) {
    if (isAborted(init.signal)) throw new AbortError()
    if (!probed.has(v.path)) {
      try {
        const { duration } = await probeVideo(v.path, init.signal)
        if (!(duration > 0)) throw new CrowdmeshError(`${v.path}: its duration is unknown`)
        probed.set(v.path, duration)
      } catch (error) {
        if (error instanceof AbortError || isAborted(init.signal)) throw error
        probed.set(v.path, error as Error)
      }
    }
    init.onProbe?.(++done, all.length)
  }
  const keep = (videos: readonly RunVideo[], role: 'query' | 'reference'): RunFile[] =>
    videos.flatMap((v) => {
      const duration = probed.get(v.path)!
      if (duration instanceof Error) {
        failed.push({ id: v.id, role, error: duration.message })
        return []
      }
      return [{ id: v.id, path: v.path, duration }]
    })
  const definition: RunDefinition = {
    version: 1,
    run: init.run,
    priority: init.priority ?? runDefaults.priority,
    createdAt: Date.now(),
    queries: keep(init.queries, 'query'),
    references: keep(init.references, 'reference'),
    failed,
    shardSize: init.shardSize ?? runDefaults.shardSize,
    rule: { ...defaultMatchRule, ...init.rule },
    layout: { bandBits: defaultLayout.bandBits, probeRadius: defaultLayout.probeRadius === 0 ? 0 : 1 },
    skipSelf: init.skipSelf ?? false,
  }
  parseMessage(definitionSchema, definition)
  await mkdir(init.folder, { recursive: true })
  // Written whole or not at all: a crash while creating a run leaves no half a definition.
  const path = join(init.folder, 'run.json')
  await writeFile(`${path}.tmp`, JSON.stringify(definition, null, 1))
  await rename(`${path}.tmp`, path)
  return definition
}

const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true

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

/** The run's distinct files, references first (in the definition's order, so stable). */
export function runEntries(definition: RunDefinition): RunEntry[] {
  const byPath = new Map<string, RunEntry>()
  for (const v of definition.references)
    if (!byPath.has(v.path))
      byPath.set(v.path, { index: byPath.size, path: v.path, duration: v.duration, refId: v.id })
  for (const v of definition.queries) {
    const known = byPath.get(v.path)
    if (known !== undefined) known.queryId ??= v.id
    else byPath.set(v.path, { index: byPath.size, path: v.path, duration: v.duration, queryId: v.id })
  }
  return [...byPath.values()]
}

/** Pool task ids of a run. */
export const taskIds = {
  fingerprint: (run: string, entry: number) => `${run}/fp/${entry}`,
  match: (run: string, entry: number, shard: number) => `${run}/m/${entry}/${shard}`,
  /** A shard's affinity: what a participant holding it states. */
  shard: (run: string, shard: number) => `${run}/s${shard}`,
}
