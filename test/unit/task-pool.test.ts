import { copyFileSync, existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PoolTaskInit, SqliteTaskPool, withdrawnOutput } from '../../peer/pool/task-pool.ts'

/*
 * The durable task pool's rules (issue 15): priority then age, kinds, tasks that wait for others,
 * preference with enforcement, the timer, failures, exactly-once completion, and a restart from the
 * file. Time is passed in, so the timer and enforcement are exact.
 */

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crowdmesh-pool-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

const task = (id: string, more: Partial<PoolTaskInit> = {}): PoolTaskInit => ({
  id,
  run: 'r1',
  kind: 'video-match',
  payload: `{"id":"${id}"}`,
  ...more,
})

const memory = (init: Partial<ConstructorParameters<typeof SqliteTaskPool>[0]> = {}) =>
  new SqliteTaskPool({ path: ':memory:', ...init })

describe('the task pool', () => {
  it('grants by priority, then by age, only kinds the worker runs, and each task once', () => {
    const pool = memory()
    expect(
      pool.add(
        [
          task('a', { priority: 1 }),
          task('b', { priority: 5 }),
          task('c', { priority: 5 }),
          task('f', { kind: 'video-fingerprint', priority: 9 }),
        ],
        0,
      ),
    ).toBe(4)
    // Added again (a run extended with what it had): nothing new.
    expect(pool.add([task('a'), task('b')], 1)).toBe(0)
    const order: string[] = []
    for (;;) {
      const grant = pool.grant({ worker: 'w', kinds: ['video-match'], now: 10 })
      if (grant === undefined) break
      order.push(grant.task.id)
    }
    expect(order).toEqual(['b', 'c', 'a'])
    expect(pool.grant({ worker: 'w', kinds: ['video-fingerprint', 'video-match'], now: 10 })?.task.id).toBe(
      'f',
    )
    expect(pool.counts()).toEqual({ waiting: 0, queued: 0, leased: 4, done: 0, failed: 0 })
    pool.close()
  })

  it('holds a task until those it comes after are done (fingerprinting before matching)', () => {
    const pool = memory()
    pool.add([task('fp1', { kind: 'video-fingerprint' }), task('fp2', { kind: 'video-fingerprint' })], 0)
    pool.add([task('m', { priority: 100, after: ['fp1', 'fp2'] })], 0)
    expect(pool.counts().waiting).toBe(1)
    const both = ['video-fingerprint', 'video-match']
    const g1 = pool.grant({ worker: 'w', kinds: both, now: 1 })!
    const g2 = pool.grant({ worker: 'w', kinds: both, now: 1 })!
    expect([g1.task.id, g2.task.id].sort()).toEqual(['fp1', 'fp2'])
    expect(pool.grant({ worker: 'w', kinds: both, now: 1 })).toBeUndefined()
    expect(pool.complete(g1.lease, 2)).toBe(true)
    expect(pool.grant({ worker: 'w', kinds: both, now: 2 })).toBeUndefined()
    expect(pool.complete(g2.lease, 3)).toBe(true)
    expect(pool.grant({ worker: 'w', kinds: both, now: 3 })?.task.id).toBe('m')
    // A task added after what it waits for is done does not wait.
    pool.add([task('m2', { after: ['fp1'] })], 4)
    expect(pool.grant({ worker: 'w', kinds: both, now: 4 })?.task.id).toBe('m2')
    pool.close()
  })

  it('gives a worker a task whose inputs it holds, but a task passed over too long to whoever asks next', () => {
    const pool = memory({ enforceAfterMs: 1000 })
    pool.add(
      [
        task('x', { inputs: ['shard-x'] }),
        task('y', { inputs: ['shard-y'] }),
        task('z', { inputs: ['shard-z'] }),
      ],
      0,
    )
    const holdsZ = (inputs: readonly string[]) => inputs.includes('shard-z')
    const preferred = pool.grant({ worker: 'w1', kinds: ['video-match'], now: 100, prefers: holdsZ })!
    expect(preferred).toMatchObject({ task: { id: 'z' }, enforced: false })
    // x has been the head of the queue, passed over, since 100: at 1100 it goes to the next worker,
    // though that one holds only y's inputs.
    const holdsY = (inputs: readonly string[]) => inputs.includes('shard-y')
    expect(pool.grant({ worker: 'w2', kinds: ['video-match'], now: 500, prefers: holdsY })?.task.id).toBe('y')
    expect(pool.grant({ worker: 'w3', kinds: ['video-match'], now: 1100, prefers: holdsY })).toMatchObject({
      task: { id: 'x' },
      enforced: true,
    })
    pool.close()
  })

  it('finds a task with a shard the worker holds anywhere in the queue, within the top priority', () => {
    const pool = memory({ enforceAfterMs: 1000 })
    const tasks = Array.from({ length: 200 }, (_, i) =>
      task(`t${i}`, { affinity: `refs-${Math.floor(i / 50)}`, priority: i === 199 ? 5 : 1 }),
    )
    pool.add(tasks, 0)
    // The top task (priority 5) first, whatever is held.
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 1, holds: ['refs-2'] })?.task.id).toBe(
      't199',
    )
    // Then the oldest task of a held shard, 100 places down the queue.
    expect(
      pool.grant({ worker: 'w', kinds: ['video-match'], now: 2, holds: ['refs-2', 'refs-9'] }),
    ).toMatchObject({
      task: { id: 't100', affinity: 'refs-2' },
      enforced: false,
    })
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 3, holds: ['refs-9'] })?.task.id).toBe('t0')
    // t1 is the head from 4 on, passed over for a held shard; at 1004 it goes to whoever asks.
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 4, holds: ['refs-3'] })?.task.id).toBe(
      't150',
    )
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 1003, holds: ['refs-3'] })?.task.id).toBe(
      't151',
    )
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 1004, holds: ['refs-3'] })).toMatchObject({
      task: { id: 't1' },
      enforced: true,
    })
    pool.close()
  })

  it('takes back a lease held past its timeout; the late result is refused, the new one counts once', () => {
    const pool = memory()
    pool.add([task('t', { timeoutMs: 5000 })], 0)
    const first = pool.grant({ worker: 'slow', kinds: ['video-match'], now: 0 })!
    expect(pool.expire(4999)).toBe(0)
    expect(pool.expire(5001)).toBe(1)
    const second = pool.grant({ worker: 'quick', kinds: ['video-match'], now: 5001 })!
    expect(second.task).toMatchObject({ id: 't', attempts: 1 })
    expect(pool.complete(first.lease, 5100)).toBe(false)
    expect(pool.complete(second.lease, 5200)).toBe(true)
    expect(pool.complete(second.lease, 5300)).toBe(false)
    expect(pool.counts()).toMatchObject({ done: 1, queued: 0, leased: 0 })
    pool.close()
  })

  it('queues a failed task again, and fails it for good after maxAttempts with its reason', () => {
    const pool = memory({ maxAttempts: 2 })
    pool.add([task('bad')], 0)
    const one = pool.grant({ worker: 'w', kinds: ['video-match'], now: 0 })!
    expect(pool.fail(one.lease, 'decoder refused it', 1)).toBe(true)
    const two = pool.grant({ worker: 'w', kinds: ['video-match'], now: 2 })!
    expect(pool.fail(two.lease, 'decoder refused it again', 3)).toBe(true)
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 4 })).toBeUndefined()
    expect(pool.counts()).toMatchObject({ failed: 1 })
    expect(pool.failure('bad')).toBe('decoder refused it again')
    expect(pool.fail(two.lease, 'again', 5)).toBe(false)
    pool.close()
  })

  it('changes a run’s priority while it waits', () => {
    const pool = memory()
    pool.add([task('a1', { run: 'a', priority: 1 }), task('b1', { run: 'b', priority: 2 })], 0)
    expect(pool.setPriority('a', 10)).toBe(1)
    expect(pool.grant({ worker: 'w', kinds: ['video-match'], now: 1 })?.task.id).toBe('a1')
    expect(pool.counts('b')).toMatchObject({ queued: 1 })
    pool.close()
  })

  it('resumes from its file after a crash: done stays done, leases come back through the timer, lease ids are new', () => {
    const path = join(dir, 'pool.db')
    const before = new SqliteTaskPool({ path })
    before.add(
      [task('done'), task('held', { timeoutMs: 1000 }), task('queued'), task('after', { after: ['held'] })],
      0,
    )
    const done = before.grant({ worker: 'w', kinds: ['video-match'], now: 0 })!
    before.complete(done.lease, 1)
    const held = before.grant({ worker: 'w', kinds: ['video-match'], now: 2 })!
    // No close: the process dies here (the file stays as the last commit left it).
    const after = new SqliteTaskPool({ path })
    expect(after.counts()).toEqual({ waiting: 1, queued: 1, leased: 1, done: 1, failed: 0 })
    expect(after.expire(2000)).toBe(1)
    const again = after.grant({ worker: 'w2', kinds: ['video-match'], now: 2000 })!
    expect(again.task.id).toBe('held')
    expect(again.lease).not.toBe(held.lease)
    expect(after.complete(held.lease, 2001)).toBe(false)
    expect(after.complete(again.lease, 2002)).toBe(true)
    expect(after.grant({ worker: 'w2', kinds: ['video-match'], now: 2003 })?.task.id).toBe('queued')
    expect(after.grant({ worker: 'w2', kinds: ['video-match'], now: 2003 })?.task.id).toBe('after')
    before.close()
    after.close()
  })

  it('keeps a done task’s output in the outbox, written with its completion, until a writer acknowledges it', () => {
    const path = join(dir, 'outbox.db')
    const before = new SqliteTaskPool({ path })
    before.add([task('a'), task('b', { run: 'r2' }), task('c')], 0)
    const a = before.grant({ worker: 'w', kinds: ['video-match'], now: 0 })!
    const b = before.grant({ worker: 'w', kinds: ['video-match'], now: 0 })!
    expect(before.complete(a.lease, 1, '{"matches":[1]}')).toBe(true)
    expect(before.complete(b.lease, 1, '{"matches":[]}')).toBe(true)
    // A stale completion adds no second output.
    expect(before.complete(a.lease, 2, '{"matches":[9]}')).toBe(false)
    // The process dies: the outputs are in the file with the completions.
    const after = new SqliteTaskPool({ path })
    expect(after.outputs(10)).toEqual([
      { task: 'a', run: 'r1', generation: 1, body: '{"matches":[1]}' },
      { task: 'b', run: 'r2', generation: 1, body: '{"matches":[]}' },
    ])
    expect(after.unwritten()).toBe(2)
    expect(
      after.acknowledge([
        { task: 'a', generation: 1 },
        { task: 'b', generation: 2 },
        { task: 'unknown', generation: 1 },
      ]),
    ).toBe(1)
    expect(after.outputs(10).map((o) => o.task)).toEqual(['b'])
    expect(after.runs()).toEqual([
      { run: 'r1', priority: 0 },
      { run: 'r2', priority: 0 },
    ])
    before.close()
    after.close()
  })

  it('reopens the done tasks a caught identity is answerable for: queued again under the next generation, their output withdrawn', () => {
    const path = join(dir, 'reopen.db')
    const pool = new SqliteTaskPool({ path })
    pool.add(
      [task('fp', { kind: 'video-fingerprint' }), task('a', { after: ['fp'] }), task('b'), task('c')],
      0,
    )
    const fp = pool.grant({ worker: 'w', kinds: ['video-fingerprint'], now: 0 })!
    expect(pool.complete(fp.lease, 1, undefined, ['liar'])).toBe(true)
    const leases = ['a', 'b', 'c'].map(() => pool.grant({ worker: 'w', kinds: ['video-match'], now: 1 })!)
    expect(pool.complete(leases[0]!.lease, 2, '{"matches":[]}', ['liar', 'voucher'])).toBe(true)
    expect(pool.complete(leases[1]!.lease, 2, '{"matches":[1]}', ['honest'])).toBe(true)
    // c is still being computed: nothing of it is done to reopen.
    expect(pool.acknowledge([{ task: 'a', generation: 1 }])).toBe(1)
    // The fingerprint task has a task after it: it stays done; a (written already) and nothing else reopens.
    expect(pool.reopen('liar', 3)).toEqual(['a'])
    expect(pool.stateOf('a')).toBe('queued')
    expect(pool.stateOf('fp')).toBe('done')
    expect(pool.outputs(10)).toEqual([
      { task: 'b', run: 'r1', generation: 1, body: '{"matches":[1]}' },
      { task: 'a', run: 'r1', generation: 1, body: withdrawnOutput },
    ])
    // Its voucher's being caught later reopens nothing more; a second catch of the liar neither.
    expect(pool.reopen('voucher', 4)).toEqual([])
    expect(pool.reopen('liar', 4)).toEqual([])
    // A late acknowledgement of generation 1's result leaves the withdrawal in place.
    const again = pool.grant({ worker: 'w2', kinds: ['video-match'], now: 5 })!
    expect(again.task.id).toBe('a')
    expect(pool.complete(again.lease, 6, '{"matches":[2]}', ['honest'])).toBe(true)
    // Its next generation's output takes the withdrawal's place in the outbox, and survives a restart.
    pool.close()
    const reopened = new SqliteTaskPool({ path })
    expect(reopened.outputs(10)).toEqual([
      { task: 'b', run: 'r1', generation: 1, body: '{"matches":[1]}' },
      { task: 'a', run: 'r1', generation: 2, body: '{"matches":[2]}' },
    ])
    expect(reopened.acknowledge([{ task: 'a', generation: 1 }])).toBe(0)
    expect(reopened.acknowledge([{ task: 'a', generation: 2 }])).toBe(1)
    expect(reopened.counts()).toEqual({ waiting: 0, queued: 0, leased: 1, done: 3, failed: 0 })
    reopened.close()
  })

  it('reclaims at once the leases of an earlier opening (a restarted coordinator), not counting an attempt', () => {
    const path = join(dir, 'reclaim.db')
    const before = new SqliteTaskPool({ path, maxAttempts: 1 })
    before.add([task('x'), task('y')], 0)
    const x = before.grant({ worker: 'w', kinds: ['video-match'], now: 0 })!
    const after = new SqliteTaskPool({ path, maxAttempts: 1 })
    const own = after.grant({ worker: 'w2', kinds: ['video-match'], now: 1 })!
    expect(own.task.id).toBe('y')
    // Only the earlier opening's lease comes back; this opening's own stays held.
    expect(after.reclaim(2)).toBe(1)
    expect(after.complete(x.lease, 3)).toBe(false)
    const again = after.grant({ worker: 'w2', kinds: ['video-match'], now: 3 })!
    expect(again.task.id).toBe('x')
    expect(again.task.attempts).toBe(0)
    expect(after.hasQueued(['video-match'])).toBe(false)
    expect(after.complete(again.lease, 4)).toBe(true)
    expect(after.complete(own.lease, 4)).toBe(true)
    expect(after.counts()).toEqual({ waiting: 0, queued: 0, leased: 0, done: 2, failed: 0 })
    before.close()
    after.close()
  })

  it('takes a task back at once when its worker leaves, without counting an attempt', () => {
    const pool = memory({ maxAttempts: 1 })
    pool.add([task('a')], 0)
    const first = pool.grant({ worker: 'w1', kinds: ['video-match'], now: 0 })!
    expect(pool.release(first.lease, 5)).toBe(true)
    expect(pool.release(first.lease, 6)).toBe(false)
    const again = pool.grant({ worker: 'w2', kinds: ['video-match'], now: 7 })!
    expect(again.task.id).toBe('a')
    expect(again.task.attempts).toBe(0)
    expect(pool.complete(first.lease, 8)).toBe(false)
    expect(pool.complete(again.lease, 8)).toBe(true)
    pool.close()
  })

  it('with group commit, a crash forgets only the last group: its tasks are granted again, done stays done', () => {
    const path = join(dir, 'group.db')
    const before = new SqliteTaskPool({ path, groupCommit: 3 })
    before.add([task('a'), task('b'), task('c')], 0)
    // add, grant, complete: 3 writes, committed; then a grant held in the open group.
    const a = before.grant({ worker: 'w', kinds: ['video-match'], now: 1 })!
    expect(before.complete(a.lease, 2)).toBe(true)
    const b = before.grant({ worker: 'w', kinds: ['video-match'], now: 3 })!
    expect(b.task.id).toBe('b')
    // The process dies without flushing: what is on disk is the file and its WAL as they are now.
    const crashed = join(dir, 'crashed.db')
    copyFileSync(path, crashed)
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, `${crashed}-wal`)
    const after = new SqliteTaskPool({ path: crashed })
    expect(after.counts()).toEqual({ waiting: 0, queued: 2, leased: 0, done: 1, failed: 0 })
    expect(after.grant({ worker: 'w2', kinds: ['video-match'], now: 4 })?.task.id).toBe('b')
    after.close()
    before.flush()
    before.close()
  })

  it('never grants a task twice at once, nor loses one, whatever the order of grants, completions, failures and timers', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              op: fc.constant('grant' as const),
              kinds: fc.subarray(['a', 'b'], { minLength: 1 }),
            }),
            fc.record({ op: fc.constantFrom('complete' as const, 'fail' as const), pick: fc.nat() }),
            fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
          ),
          { maxLength: 80 },
        ),
        (ops) => {
          const pool = memory({ maxAttempts: 3, enforceAfterMs: 500 })
          const ids = Array.from({ length: 8 }, (_, i) => `t${i}`)
          pool.add(
            ids.map((id, i) =>
              task(id, {
                kind: i % 2 === 0 ? 'a' : 'b',
                priority: i % 3,
                timeoutMs: 2000,
                after: i === 7 ? ['t0'] : [],
              }),
            ),
            0,
          )
          let now = 0
          const live = new Map<string, string>()
          const finished = new Set<string>()
          for (const step of ops) {
            if (step.op === 'grant') {
              const grant = pool.grant({ worker: 'w', kinds: step.kinds, now })
              if (grant === undefined) continue
              expect([...live.values()]).not.toContain(grant.task.id)
              expect(finished.has(grant.task.id)).toBe(false)
              live.set(grant.lease, grant.task.id)
            } else if (step.op === 'tick') {
              now += step.ms
              pool.expire(now)
              for (const lease of live.keys()) if (!pool.current(lease)) live.delete(lease)
            } else {
              const leases = [...live.keys()]
              if (leases.length === 0) continue
              const lease = leases[step.pick % leases.length]!
              const id = live.get(lease)!
              live.delete(lease)
              if (step.op === 'complete') {
                expect(pool.complete(lease, now)).toBe(true)
                finished.add(id)
              } else pool.fail(lease, 'no', now)
            }
          }
          const counts = pool.counts()
          expect(counts.waiting + counts.queued + counts.leased + counts.done + counts.failed).toBe(8)
          expect(counts.done).toBe(finished.size)
          pool.close()
        },
      ),
      { numRuns: 200 },
    )
  })
})
