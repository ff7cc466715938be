import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type PoolTaskInit, SqliteTaskPool } from '../../peer/pool/task-pool.ts'

/*
 * The durable task pool's speed (`pool.*` in `crowdmesh bench`): a SQLite file holding `tasks`
 * match tasks of 20 runs (priorities 0–4), then grants and completions one after another on one
 * core, as a coordinator makes them, each its own transaction. Issue 15's target: ≥ 20 k/s with
 * 1 M tasks in the pool.
 */

/** What the pool measured. */
export interface TaskPoolBench {
  tasks: number
  groupCommit: number
  /** Seconds to add them (batches of 10,000, one transaction each). */
  addSeconds: number
  /** Grants plus completions per second (each a transaction), one core. */
  grantsAndCompletionsPerSec: number
  operations: number
  /** Growth of the process's resident memory over the run, MiB (SQLite's page cache included). */
  rssMiB: number
  /** The pool file's size, MiB. */
  fileMiB: number
}

export async function runTaskPoolBench(init: {
  tasks?: number
  seconds?: number
  /** Writes per commit (the pool's `groupCommit`; default 1, each durable at once). */
  groupCommit?: number
  onProgress?: (done: number, total: number) => void
}): Promise<TaskPoolBench> {
  const total = init.tasks ?? 1_000_000
  const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-pool-bench-'))
  const path = join(dir, 'pool.db')
  const rssBefore = process.memoryUsage().rss
  const pool = new SqliteTaskPool({ path, groupCommit: init.groupCommit ?? 1 })
  try {
    const started = performance.now()
    const batch = 10_000
    for (let at = 0; at < total; at += batch) {
      const tasks: PoolTaskInit[] = []
      for (let i = at; i < Math.min(total, at + batch); i++)
        tasks.push({
          id: `run${i % 20}:slice${i}`,
          run: `run${i % 20}`,
          kind: i % 10 === 0 ? 'video-fingerprint' : 'video-match',
          priority: i % 5,
          inputs: [`refs/shard-${i % 1000}.cmfp`, `ugc/shard-${(i * 7) % 5000}.cmfp`],
          payload: JSON.stringify({ ugc: [i], refs: [i % 1000], shard: i % 1000 }),
        })
      pool.add(tasks, 0)
      init.onProgress?.(at + batch, total * 2)
    }
    const addSeconds = (performance.now() - started) / 1000
    const kinds = ['video-fingerprint', 'video-match']
    let operations = 0
    const begun = performance.now()
    const budget = (init.seconds ?? 5) * 1000
    while (performance.now() - begun < budget) {
      for (let i = 0; i < 1000; i++) {
        const grant = pool.grant({ worker: `w${i % 50}`, kinds, now: 1 })
        if (grant === undefined) break
        pool.complete(grant.lease, 2)
        operations += 2
      }
      init.onProgress?.(total + Math.min(total, ((performance.now() - begun) / budget) * total), total * 2)
    }
    const seconds = (performance.now() - begun) / 1000
    const { size } = await import('node:fs/promises').then((fs) => fs.stat(path))
    return {
      tasks: total,
      groupCommit: init.groupCommit ?? 1,
      addSeconds: Math.round(addSeconds * 10) / 10,
      grantsAndCompletionsPerSec: Math.round(operations / seconds),
      operations,
      rssMiB: Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20),
      fileMiB: Math.round(size / 2 ** 20),
    }
  } finally {
    pool.close()
    await rm(dir, { recursive: true, force: true })
  }
}
