import { createServer, type Server } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { type CachedFile, SnapshotCache, snapshotStore } from '../../peer/pool/snapshot-cache.ts'
import { diskStorage } from '../../peer/pool/snapshot-disk.ts'

/*
 * A Node participant's snapshot cache over real HTTP (a server on 127.0.0.1 that counts what it
 * serves): a task reuses the folder whose classes agree and copies only what it lacks; an unrelated
 * task takes an empty folder, else wipes the oldest; what the cache holds is what it states.
 */

let server: Server
let base: string
let dir: string
const served: string[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crowdmesh-snapshots-'))
  server = createServer((request, response) => {
    served.push(request.url!)
    response.end(`bytes of ${request.url}`)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  base = `http://127.0.0.1:${address.port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

const file = (kind: 'reference' | 'ugc', name: string, version = 'v1'): CachedFile => ({
  class: kind,
  location: `${version}/${name}`,
  url: `${base}/${version}/${name}`,
  name: `${name}.cmfp`,
})
const ref = (n: number, version?: string) => file('reference', `ref${n}`, version)
const ugc = (n: number, version?: string) => file('ugc', `ugc${n}`, version)

describe('the snapshot cache', () => {
  it('copies only what a task lacks, reuses the folder whose classes agree, and wipes the oldest when none does', async () => {
    let clock = 0
    const cache = new SnapshotCache({
      storage: diskStorage(join(dir, 'cache')),
      folders: 2,
      now: () => ++clock,
      fetch: async (url) => new Uint8Array(await (await fetch(url)).arrayBuffer()),
    })
    const a = await cache.prepare([ref(1), ref(2), ugc(1), ugc(2)])
    expect(a).toMatchObject({ copied: 4, reused: 0, wiped: false })
    // The same references with other user videos: the references stay, the user videos change.
    const b = await cache.prepare([ref(1), ref(2), ugc(3), ugc(4)])
    expect(b).toMatchObject({ folder: a.folder, copied: 2, reused: 2, wiped: false })
    expect(served.slice(-2)).toEqual(['/v1/ugc3', '/v1/ugc4'])
    expect((await cache.stored())[a.folder]!.length).toBe(4)
    const bytes = new TextDecoder().decode(await cache.read(b.folder, 'v1/ugc3', 1024))
    expect(bytes).toBe('bytes of /v1/ugc3')
    // The seed's example: ugc1 moved (a new location), the rest the same: one class agrees, so the
    // folder is reused and only the moved file is fetched.
    await cache.prepare([ref(1), ref(2), ugc(1), ugc(2)])
    const moved = await cache.prepare([ref(1), ref(2), ugc(1, 'v2'), ugc(2)])
    expect(moved).toMatchObject({ folder: a.folder, copied: 1, reused: 3 })
    // Unrelated: the empty folder.
    const c = await cache.prepare([ref(9), ugc(9)])
    expect(c).toMatchObject({ copied: 2, wiped: false })
    expect(c.folder).not.toBe(a.folder)
    expect(cache.holdsAll(['v1/ref1', 'v1/ugc2'])).toBe(true)
    expect(cache.holdsAll(['v1/ref1', 'v1/ref9'])).toBe(false)
    // Back to the first folder's references; then something unrelated again: both folders score 0,
    // and the older (the ref9 one) is wiped.
    await cache.prepare([ref(1), ref(2), ugc(5)])
    const d = await cache.prepare([ref(7), ugc(7)])
    expect(d).toMatchObject({ folder: c.folder, wiped: true, copied: 2 })
    expect(
      cache
        .holds()
        .map((f) => f.location)
        .sort(),
    ).toEqual(['v1/ref1', 'v1/ref2', 'v1/ref7', 'v1/ugc5', 'v1/ugc7'].sort())
  })

  it('keeps within its byte allowance, wiping the least recently used folders, and grows when allowed', async () => {
    let allowance = 60
    const cache = new SnapshotCache({
      storage: diskStorage(join(dir, 'allowance')),
      folders: 3,
      // 20 bytes a file.
      fetch: (url) => Promise.resolve(new TextEncoder().encode(url.padEnd(20, '.').slice(0, 20))),
      maxBytes: () => allowance,
    })
    const file = (n: number, kind: 'reference' | 'ugc' = 'reference'): CachedFile => ({
      class: kind,
      location: `f${n}`,
      url: `f${n}`,
      name: `f${n}`,
    })
    await cache.prepare([file(1), file(2)], undefined, 's1')
    await cache.prepare([file(3), file(4)], undefined, 's2')
    // 80 bytes over an allowance of 60: the older folder went.
    expect(cache.bytes).toBe(40)
    expect(cache.labels()).toEqual(['s2'])
    allowance = 1000
    await cache.prepare([file(5), file(6)], undefined, 's3')
    await cache.prepare([file(7), file(8)], undefined, 's4')
    expect(cache.bytes).toBe(120)
    expect(cache.labels()).toEqual(['s4', 's3', 's2'])
  })

  it('reads every file of every task as its own bytes, whatever the order of tasks (a video may be both a query and a reference)', async () => {
    // Found by a real match run: names reused after removals let one location's file overwrite another's.
    let round = 0
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ query: fc.nat(30), shard: fc.nat(3) }), { minLength: 1, maxLength: 40 }),
        async (tasks) => {
          const store = snapshotStore(
            new SnapshotCache({
              storage: diskStorage(join(dir, `property-${round++}`)),
              folders: 2,
              fetch: (url) => Promise.resolve(new TextEncoder().encode(url)),
            }),
          )
          for (const { query, shard } of tasks) {
            const refs = Array.from({ length: shard === 3 ? 7 : 8 }, (_, i) => 8 * shard + i)
            const files = [
              ...refs.map((r) => ({
                class: 'reference',
                location: `U${r}`,
                url: `U${r}`,
                name: `ref-${r}.cmfp`,
              })),
              { class: 'ugc', location: `U${query}`, url: `U${query}`, name: 'query.cmfp' },
            ]
            const folder = await store.prepare(files, `s${shard}`)
            for (const f of files)
              expect(new TextDecoder().decode(await folder.read(f.location, 1024))).toBe(f.location)
          }
        },
      ),
      { numRuns: 40 },
    )
  })
})
