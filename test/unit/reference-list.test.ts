import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { extendList, loadList, saveList } from '../../peer/pool/reference-list.ts'

/*
 * A run's reference list across extensions (issue 15): the shards of every version tile the list
 * without overlap, each at most the shard size, and a shard once made never moves, so every match
 * task in the pool keeps naming the same references.
 */

describe('a run’s reference list', () => {
  it('appends new references as new shards and never moves the old ones', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat(40), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 7 }),
        (batches, size) => {
          let list = extendList(undefined, [], size)
          let next = 0
          for (const count of batches) {
            const before = list
            list = extendList(
              list,
              Array.from({ length: count }, () => next++),
              size,
            )
            expect(list.version).toBe(before.version + 1)
            expect(list.order.slice(0, before.order.length)).toEqual(before.order)
            expect(list.shards.slice(0, before.shards.length)).toEqual(before.shards)
            let covered = 0
            for (const shard of list.shards) {
              expect(shard.first).toBe(covered)
              expect(shard.count).toBeGreaterThan(0)
              expect(shard.count).toBeLessThanOrEqual(size)
              covered += shard.count
            }
            expect(covered).toBe(list.order.length)
          }
        },
      ),
    )
  })

  it('comes back from its file as it was, and refuses a damaged one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-list-'))
    try {
      expect(await loadList(dir)).toBeUndefined()
      const list = extendList(extendList(undefined, [0, 1, 2], 2), [5, 6], 2)
      await saveList(dir, list)
      expect(await loadList(dir)).toEqual(list)
      await writeFile(join(dir, 'list.json'), JSON.stringify({ ...list, shards: [{ first: 4, count: 9 }] }))
      await expect(loadList(dir)).rejects.toThrow(/past the list/)
      await writeFile(join(dir, 'list.json'), '{"order": "x"}')
      await expect(loadList(dir)).rejects.toThrow()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
