import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { CrowdmeshError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'

/*
 * A pooled run's reference list (issue 15): the run's references in list order, cut into contiguous
 * shards, each a match task's references and a participant's snapshot. A run extended with new
 * references gets a new version: the new references are appended and cut into new shards, and the
 * shards before them never move, so every match task in the pool keeps naming the same references.
 * Kept in the run's folder as `list.json` before any task names its shards.
 */

/** A version of a run's reference list. */
export interface ReferenceShards {
  /** The run's entries (positions in its definition) in list order. */
  order: number[]
  /** Contiguous ranges of `order`. */
  shards: { first: number; count: number }[]
  version: number
}

const listSchema = z.strictObject({
  order: z.array(z.number().int().min(0)),
  shards: z.array(z.strictObject({ first: z.number().int().min(0), count: z.number().int().min(1) })),
  version: z.number().int().min(1),
})

/** The next version: `added` appended, cut into new shards of at most `shardSize`. */
export function extendList(
  list: ReferenceShards | undefined,
  added: readonly number[],
  shardSize: number,
): ReferenceShards {
  const order = [...(list?.order ?? []), ...added]
  const shards = [...(list?.shards ?? [])]
  for (let first = order.length - added.length; first < order.length; first += shardSize)
    shards.push({ first, count: Math.min(shardSize, order.length - first) })
  return { order, shards, version: (list?.version ?? 0) + 1 }
}

/** Writes `list.json` whole or not at all. */
export async function saveList(folder: string, list: ReferenceShards): Promise<void> {
  const path = join(folder, 'list.json')
  await writeFile(`${path}.tmp`, JSON.stringify(list))
  await rename(`${path}.tmp`, path)
}

/** Reads `list.json`, if the run has one (checked: a damaged file is an error, not a guess). */
export async function loadList(folder: string): Promise<ReferenceShards | undefined> {
  const text = await readFile(join(folder, 'list.json'), 'utf8').catch(() => undefined)
  if (text === undefined) return undefined
  const list = parseMessage(listSchema, JSON.parse(text) as unknown)
  for (const shard of list.shards)
    if (shard.first + shard.count > list.order.length)
      throw new CrowdmeshError(`${folder}/list.json: a shard lies past the list`)
  return list
}
