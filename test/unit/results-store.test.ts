import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Match } from '../../peer/jobs/match/matcher.ts'
import { ResultsStore, type TaskResult } from '../../peer/pool/results-store.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * The results store (issue 15): a task's result counts once, whether computed twice or delivered
 * again after a writer process was SIGKILLed in the middle of a batch; queries by user video, by
 * reference and by owner.
 */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crowdmesh-results-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

const match = (ugcId: string, refId: string, at = 0): Match => ({
  ugcId,
  refId,
  ugcStart: at,
  ugcEnd: at + 10,
  refStart: at + 5,
  refEnd: at + 15,
  score: 0.9,
})

const batch: TaskResult[] = Array.from({ length: 10 }, (_, i) => ({
  task: `run1:slice${i}`,
  run: 'run1',
  matches: [match(`ugc${i}`, `ref${i % 3}`), match(`ugc${i}`, `ref${(i + 1) % 3}`, 30)],
  ugcOwners: { [`ugc${i}`]: `user${i % 2}` },
  refOwners: { ref0: 'label-a', ref1: 'label-b', ref2: 'label-a' },
}))

/** Writes `tasks` in a writer process of its own, which SIGKILLs itself after `killAfter` of them. */
function writerProcess(path: string, tasks: readonly TaskResult[], killAfter?: number) {
  const run = spawnSync(
    join(repoRoot, 'node_modules', '.bin', 'node'),
    ['--no-warnings', join(repoRoot, 'test', 'support', 'results-writer-process.ts'), path],
    {
      input: JSON.stringify(tasks),
      env: { ...process.env, ...(killAfter !== undefined && { CROWDMESH_KILL_AFTER: String(killAfter) }) },
    },
  )
  return { signal: run.signal, added: run.stdout.toString().trim(), stderr: run.stderr.toString() }
}

describe('the results store', () => {
  it('counts a task once, though its result comes twice', () => {
    const store = new ResultsStore(':memory:')
    expect(store.writeBatch(batch.slice(0, 6))).toBe(6)
    // Slices 4 and 5 were computed again (their leases were taken back), and 6–9 are new.
    expect(store.writeBatch(batch.slice(4))).toBe(4)
    expect(store.totals()).toEqual({ tasks: 10, matches: 20 })
    expect(store.query({ ugc: 'ugc4' })).toHaveLength(2)
    store.close()
  })

  it('keeps the newest generation of a reopened task, whatever order the withdrawal and the new result arrive in', () => {
    const lie = { ...batch[0]!, matches: [] }
    const withdrawal: TaskResult = { ...lie, generation: 1, withdrawn: true }
    const truth: TaskResult = { ...batch[0]!, generation: 2 }
    for (const order of [
      [lie, withdrawal, truth],
      [lie, truth, withdrawal],
      [truth, lie, withdrawal, lie],
    ]) {
      const store = new ResultsStore(':memory:')
      for (const result of order) store.writeBatch([result])
      expect(store.totals()).toEqual({ tasks: 1, matches: 2 })
      expect(store.query({ ugc: 'ugc0' })).toHaveLength(2)
      store.close()
    }
    // Withdrawn and not yet computed again: the task's matches are gone, and it is not counted.
    const store = new ResultsStore(':memory:')
    store.writeBatch([batch[1]!, batch[0]!])
    expect(store.writeBatch([withdrawal])).toBe(1)
    expect(store.writeBatch([batch[0]!])).toBe(0)
    expect(store.totals()).toEqual({ tasks: 1, matches: 2 })
    expect(store.query({ ugc: 'ugc0' })).toEqual([])
    store.close()
  })

  it('loses and duplicates nothing when a writer is SIGKILLed mid-batch and the batch is delivered again', () => {
    const path = join(dir, 'results.db')
    const first = writerProcess(path, batch.slice(0, 4))
    expect(first).toMatchObject({ signal: null, added: '4' })
    // The next batch overlaps (tasks 2–3 again) and its writer dies after writing 5 of its 8 tasks.
    const killed = writerProcess(path, batch.slice(2), 5)
    expect(killed.signal).toBe('SIGKILL')
    const between = new ResultsStore(path)
    expect(between.totals()).toEqual({ tasks: 4, matches: 8 })
    between.close()
    // Delivered again to a new writer: every task once.
    expect(writerProcess(path, batch.slice(2))).toMatchObject({ signal: null, added: '6' })
    const store = new ResultsStore(path)
    expect(store.totals()).toEqual({ tasks: 10, matches: 20 })
    for (let i = 0; i < 10; i++) expect(store.query({ ugc: `ugc${i}` })).toHaveLength(2)
    store.close()
  })

  it('answers by user video, by reference and by owner', () => {
    const store = new ResultsStore(':memory:')
    store.writeBatch(batch)
    expect(store.query({ ref: 'ref1' }).map((m) => m.ugcId)).toEqual([
      'ugc0',
      'ugc1',
      'ugc3',
      'ugc4',
      'ugc6',
      'ugc7',
      'ugc9',
    ])
    expect(store.query({ ugc: 'ugc2' })).toEqual([
      {
        ...match('ugc2', 'ref0', 30),
        run: 'run1',
        task: 'run1:slice2',
        ugcOwner: 'user0',
        refOwner: 'label-a',
      },
      { ...match('ugc2', 'ref2'), run: 'run1', task: 'run1:slice2', ugcOwner: 'user0', refOwner: 'label-a' },
    ])
    // An owner's matches, on either side.
    expect(store.query({ owner: 'label-b' })).toHaveLength(7)
    expect(store.query({ owner: 'user1' })).toHaveLength(10)
    expect(store.query({ owner: 'nobody' })).toEqual([])
    store.close()
  })
})
