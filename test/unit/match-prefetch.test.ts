import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cachedFiles } from '../../peer/jobs/file-cache.ts'
import { matchKind } from '../../peer/jobs/match/match-kind.ts'
import { SnapshotCache, snapshotStore } from '../../peer/pool/snapshot-cache.ts'
import { diskStorage } from '../../peer/pool/snapshot-disk.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { memoryMatchJob, memoryMatchTask, seededFingerprints } from '../support/fingerprints.ts'

/*
 * A match task's inputs are fetched while the task before it computes (issue 15: "caching for the
 * next task overlaps computing the current one"): after `prefetch`, running the task fetches
 * nothing more, through the snapshot folder or without one, and finds the same matches.
 */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crowdmesh-prefetch-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

const video = seededFingerprints

describe('prefetching a match task', () => {
  // Four references; the query is reference 2 itself, so it matches there.
  const files = new Map<string, Uint8Array>([
    ['mem:ref0', video(1, 20)],
    ['mem:ref1', video(2, 20)],
    ['mem:ref2', video(3, 20)],
    ['mem:ref3', video(4, 20)],
  ])
  files.set('mem:query', files.get('mem:ref2')!)
  files.set(
    'mem:list',
    new TextEncoder().encode(
      JSON.stringify({
        references: [0, 1, 2, 3].map((i) => ({ id: `r${i}`, url: `mem:ref${i}`, duration: 20 })),
      }),
    ),
  )
  const job = memoryMatchJob(4)
  const task = { ...memoryMatchTask(1, 2), shard: 'run/s0' }

  for (const withSnapshots of [false, true])
    it(`leaves nothing to fetch when the task runs${withSnapshots ? ', through a snapshot folder' : ''}`, async () => {
      const fetched: string[] = []
      const source = cachedFiles(
        (url) => {
          fetched.push(url)
          return Promise.resolve(files.get(url)!)
        },
        64 * 2 ** 20,
      )
      const snapshots = withSnapshots
        ? snapshotStore(
            new SnapshotCache({
              storage: diskStorage(join(dir, 'snapshots')),
              fetch: (url, signal) => source.bytes(url, 2 ** 26, signal),
            }),
          )
        : undefined
      const worker = await matchKind.workers.cpu({
        frames: frameSource(),
        files: source,
        ...(snapshots !== undefined && { snapshots }),
      })
      await worker.prefetch!(job, task)
      expect(fetched.sort()).toEqual(['mem:list', 'mem:query', 'mem:ref1', 'mem:ref2'])
      const result = await worker.run(job, task)
      expect(fetched).toHaveLength(4)
      expect(result.matches.map((m) => m.ref)).toEqual([2])
      expect(worker.holds!()).toEqual(['run/s0'])
    })
})
