import { randomUUID } from 'node:crypto'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import {
  type GrantRequest,
  type OutputWritten,
  type PoolCounts,
  type PoolGrant,
  type PoolOutput,
  type PoolRun,
  type PoolTask,
  type PoolTaskInit,
  stateNames,
  type TaskPool,
  type TaskState,
  withdrawnOutput,
} from './task-pool-contract.ts'

/*
 * The durable task pool of match runs (issue 15): every task of every run, in SQLite (Node's
 * built-in `node:sqlite`, WAL) by default, behind `TaskPool` so a shared store can take its place.
 * A coordinator restarted after a crash reopens the file and resumes: tasks it had leased come back
 * through the timer, tasks done stay done.
 *
 * Rules, each tested (test/unit/task-pool.test.ts):
 * - Workers pull by priority (higher first), then by age; only tasks of kinds they run.
 * - A task waits until the tasks it comes after are done (fingerprinting before the matching that
 *   reads its fingerprints).
 * - Among the top priority's tasks, one whose inputs the worker holds (its snapshot cache) goes
 *   first; but the head of the queue, passed over for `enforceAfterMs`, goes to the next capable
 *   worker that asks, whatever it holds (enforcement).
 * - A lease held longer than its task's timeout is taken back by the timer (`expire`) and the task
 *   queued again; a late completion of a taken-back lease is refused, so a result counts once.
 * - A task that failed `maxAttempts` times is failed for good, with its last reason.
 * - A task's output (a match list) is kept in the outbox in the same transaction that marks it done,
 *   until a result writer acknowledges it: a crash between the two never loses a result.
 * - A coordinator reopening the pool after a crash takes back the leases of the earlier opening at
 *   once (`reclaim`): the participants that held them were the dead coordinator's.
 * - A done task remembers the identities answerable for its output (README, "Trust"); once one of
 *   them is caught lying, the task is queued again under its next generation (`reopen`), and a
 *   withdrawal of its output takes the output's place in the outbox. Writers keep the newest
 *   generation of each task's output, a withdrawal above a result of its own generation.
 */

export * from './task-pool-contract.ts'

/** The pool's defaults. */
export const taskPoolDefaults = {
  /** A lease's timeout when its task names none, ms. */
  timeoutMs: 120_000,
  /** A task at the head of the queue passed over this long goes to the next capable worker, ms. */
  enforceAfterMs: 30_000,
  /** Failures before a task fails for good. */
  maxAttempts: 3,
  /** Top-priority candidates looked at for one the worker prefers. */
  preferenceWindow: 32,
} as const

const state = { waiting: 0, queued: 1, leased: 2, done: 3, failed: 4 } as const

/** Options of the SQLite pool. */
export interface SqliteTaskPoolInit {
  /** The database file (`:memory:` for a pool that dies with the process). */
  path: string
  timeoutMs?: number
  enforceAfterMs?: number
  maxAttempts?: number
  preferenceWindow?: number
  /**
   * Writes per commit (default 1: each grant and completion is durable when it returns). More
   * commits a group at once, several times faster; a crash then forgets the last group's grants
   * and completions, whose tasks are simply granted again.
   */
  groupCommit?: number
}

/** What the choice of a task reads of a candidate. */
interface Candidate {
  id: string
  priority: number
  seq: number
  inputs: string
  queued_at: number
}

interface TaskRow {
  id: string
  run: string
  kind: string
  priority: number
  inputs: string
  affinity: string
  payload: string
  timeout_ms: number
  attempts: number
  queued_at: number
}

/** The pool in one SQLite file. */
export class SqliteTaskPool implements TaskPool {
  private readonly db: DatabaseSync
  private readonly limits: Required<Omit<SqliteTaskPoolInit, 'path'>>
  private readonly candidates = new Map<string, StatementSync>()
  private readonly statements: Record<string, StatementSync>
  private leases = 0
  /** The head of the queue for each set of kinds asked, and since when (enforcement). */
  private readonly heads = new Map<string, { id: string; since: number }>()
  private readonly epoch: string
  /** Writes held by the open transaction (group commit). */
  private pending = 0

  constructor(init: SqliteTaskPoolInit) {
    this.limits = {
      timeoutMs: init.timeoutMs ?? taskPoolDefaults.timeoutMs,
      enforceAfterMs: init.enforceAfterMs ?? taskPoolDefaults.enforceAfterMs,
      maxAttempts: init.maxAttempts ?? taskPoolDefaults.maxAttempts,
      preferenceWindow: init.preferenceWindow ?? taskPoolDefaults.preferenceWindow,
      groupCommit: init.groupCommit ?? 1,
    }
    this.db = new DatabaseSync(init.path)
    // WAL: readers never wait for the writer, and a commit is one append (no fsync per task:
    // `synchronous = NORMAL` may lose the last commits on power loss, never corrupt the file).
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        run TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state INTEGER NOT NULL,
        blockers INTEGER NOT NULL,
        inputs TEXT NOT NULL,
        affinity TEXT NOT NULL DEFAULT '',
        payload TEXT NOT NULL,
        timeout_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        queued_at INTEGER NOT NULL,
        lease TEXT,
        holder TEXT,
        leased_at INTEGER,
        reason TEXT
      );
      CREATE INDEX IF NOT EXISTS ready ON tasks (state, kind, priority DESC, seq) WHERE state = 1;
      CREATE INDEX IF NOT EXISTS local ON tasks (kind, affinity, priority DESC, seq) WHERE state = 1;
      CREATE INDEX IF NOT EXISTS held ON tasks (leased_at) WHERE state = 2;
      CREATE UNIQUE INDEX IF NOT EXISTS leases ON tasks (lease) WHERE lease IS NOT NULL;
      CREATE INDEX IF NOT EXISTS runs ON tasks (run, state);
      CREATE TABLE IF NOT EXISTS after (task TEXT NOT NULL, before TEXT NOT NULL, PRIMARY KEY (before, task)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS run_priorities (run TEXT PRIMARY KEY, priority INTEGER NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, task TEXT NOT NULL UNIQUE, run TEXT NOT NULL, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS answerable (identity TEXT NOT NULL, task TEXT NOT NULL, PRIMARY KEY (identity, task)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS answerable_task ON answerable (task);
    `)
    // Pools made before outputs had generations gain the column (every output so far is the first).
    addColumn(this.db, 'tasks', 'generation', 'INTEGER NOT NULL DEFAULT 1')
    addColumn(this.db, 'outbox', 'generation', 'INTEGER NOT NULL DEFAULT 1')
    const prepare = (sql: string) => this.db.prepare(sql)
    this.statements = {
      insert: prepare(
        `INSERT OR IGNORE INTO tasks (id, run, kind, priority, state, blockers, inputs, affinity, payload, timeout_ms, queued_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      isDone: prepare(`SELECT state FROM tasks WHERE id = ?`),
      addAfter: prepare(`INSERT OR IGNORE INTO after (task, before) VALUES (?, ?)`),
      lease: prepare(
        `UPDATE tasks SET state = ${state.leased}, lease = ?, holder = ?, leased_at = ? WHERE id = ? AND state = ${state.queued}`,
      ),
      byLease: prepare(`SELECT id, run, attempts, state FROM tasks WHERE lease = ?`),
      // A task's newest output replaces what the outbox held of it (a withdrawal, say).
      output: prepare(
        `INSERT OR REPLACE INTO outbox (task, run, body, generation) VALUES (?, ?, ?, (SELECT generation FROM tasks WHERE id = ?1))`,
      ),
      outputs: prepare(`SELECT task, run, generation, body FROM outbox ORDER BY seq LIMIT ?`),
      acknowledge: prepare(`DELETE FROM outbox WHERE task = ? AND generation = ?`),
      answer: prepare(`INSERT OR IGNORE INTO answerable (identity, task) VALUES (?, ?)`),
      answerableFor: prepare(
        `SELECT t.id AS id, t.run AS run, t.generation AS generation FROM answerable a JOIN tasks t ON t.id = a.task
         WHERE a.identity = ? AND t.state = ${state.done} AND NOT EXISTS (SELECT 1 FROM after WHERE before = t.id)`,
      ),
      forgetAnswerable: prepare(`DELETE FROM answerable WHERE task = ?`),
      forgetIdentity: prepare(`DELETE FROM answerable WHERE identity = ?`),
      reopen: prepare(
        `UPDATE tasks SET state = ${state.queued}, generation = generation + 1, attempts = 0, queued_at = ?, lease = NULL, holder = NULL
         WHERE id = ? AND state = ${state.done}`,
      ),
      withdraw: prepare(
        `INSERT OR REPLACE INTO outbox (task, run, body, generation) VALUES (?, ?, '${withdrawnOutput}', ?)`,
      ),
      unwritten: prepare(`SELECT COUNT(*) AS n FROM outbox`),
      reclaim: prepare(
        `UPDATE tasks SET state = ${state.queued}, lease = NULL, holder = NULL, queued_at = ?
         WHERE state = ${state.leased} AND substr(lease, 1, 9) != ?`,
      ),
      runs: prepare(`SELECT run, priority FROM run_priorities ORDER BY seq`),
      addRun: prepare(
        `INSERT OR IGNORE INTO run_priorities (run, priority, seq) VALUES (?, ?, (SELECT COUNT(*) FROM run_priorities))`,
      ),
      runPriority: prepare(`UPDATE run_priorities SET priority = ? WHERE run = ?`),
      done: prepare(
        `UPDATE tasks SET state = ${state.done}, lease = NULL WHERE lease = ? AND state = ${state.leased}`,
      ),
      dependents: prepare(`SELECT task FROM after WHERE before = ?`),
      unblock: prepare(
        `UPDATE tasks SET blockers = blockers - 1,
           state = CASE WHEN blockers = 1 AND state = ${state.waiting} THEN ${state.queued} ELSE state END,
           queued_at = CASE WHEN blockers = 1 AND state = ${state.waiting} THEN ? ELSE queued_at END
         WHERE id = ?`,
      ),
      requeue: prepare(
        `UPDATE tasks SET state = ${state.queued}, lease = NULL, holder = NULL, attempts = attempts + 1, queued_at = ?, reason = ?
         WHERE lease = ? AND state = ${state.leased}`,
      ),
      release: prepare(
        `UPDATE tasks SET state = ${state.queued}, lease = NULL, holder = NULL, queued_at = ?
         WHERE lease = ? AND state = ${state.leased}`,
      ),
      failForGood: prepare(
        `UPDATE tasks SET state = ${state.failed}, lease = NULL, attempts = attempts + 1, reason = ? WHERE lease = ? AND state = ${state.leased}`,
      ),
      overdue: prepare(
        `SELECT lease FROM tasks WHERE state = ${state.leased} AND leased_at + timeout_ms < ?`,
      ),
      priority: prepare(
        `UPDATE tasks SET priority = ? WHERE run = ? AND state IN (${state.waiting}, ${state.queued})`,
      ),
      countsAll: prepare(`SELECT state, COUNT(*) AS n FROM tasks GROUP BY state`),
      countsRun: prepare(`SELECT state, COUNT(*) AS n FROM tasks WHERE run = ? GROUP BY state`),
      countsKind: prepare(`SELECT state, COUNT(*) AS n FROM tasks WHERE run = ? AND kind = ? GROUP BY state`),
      reason: prepare(`SELECT reason FROM tasks WHERE id = ? AND state = ${state.failed}`),
      byId: prepare(
        `SELECT id, run, kind, priority, inputs, affinity, payload, timeout_ms, attempts, queued_at FROM tasks WHERE id = ?`,
      ),
      local: prepare(
        `SELECT id, priority, seq, inputs, queued_at FROM tasks
         WHERE state = ${state.queued} AND kind = ? AND affinity = ? AND priority = ? ORDER BY seq LIMIT 1`,
      ),
    }
    // Each opening has its own lease prefix: a lease of before a crash is never issued again.
    this.epoch = randomUUID().slice(0, 8)
  }

  add(tasks: readonly PoolTaskInit[], now: number): number {
    const s = this.statements
    let added = 0
    this.transaction(() => {
      for (const task of tasks) {
        // A run's first task names it, at its priority.
        s.addRun!.run(task.run, task.priority ?? 0)
        const before = [...new Set(task.after ?? [])].filter(
          (id) => (s.isDone!.get(id) as { state: number } | undefined)?.state !== state.done,
        )
        const result = s.insert!.run(
          task.id,
          task.run,
          task.kind,
          task.priority ?? 0,
          before.length === 0 ? state.queued : state.waiting,
          before.length,
          JSON.stringify(task.inputs ?? []),
          task.affinity ?? '',
          task.payload,
          task.timeoutMs ?? this.limits.timeoutMs,
          now,
        )
        if (result.changes === 0) continue
        added++
        for (const id of before) s.addAfter!.run(task.id, id)
      }
    })
    return added
  }

  grant(request: GrantRequest): PoolGrant | undefined {
    if (request.kinds.length === 0) return undefined
    const prefers = request.prefers
    const rows = this.candidatesFor(request.kinds, prefers === undefined ? 1 : this.limits.preferenceWindow)
    const first = rows[0]
    if (first === undefined) return undefined
    // Enforcement counts from when a task became the head of the queue (for these kinds), not from
    // when it was queued: in a long batch run every task waits hours, by design, and locality
    // must not give way to age alone; a head passed over for `enforceAfterMs` must.
    const kindsKey = [...request.kinds].sort().join('\n')
    let head = this.heads.get(kindsKey)
    if (head?.id !== first.id) this.heads.set(kindsKey, (head = { id: first.id, since: request.now }))
    const overdue = request.now - head.since >= this.limits.enforceAfterMs
    let chosen = first
    if (!overdue && request.holds !== undefined && request.holds.length > 0) {
      const local = this.localFor(request.kinds, request.holds.slice(0, 16), first.priority)
      if (local !== undefined) chosen = local
    }
    if (!overdue && chosen === first && prefers !== undefined) {
      const top = rows.filter((row) => row.priority === first.priority)
      chosen = top.find((row) => prefers(JSON.parse(row.inputs) as string[])) ?? first
    }
    const lease = `${this.epoch}.${(++this.leases).toString(36)}`
    this.transaction(() => {
      this.statements.lease!.run(lease, request.worker, request.now, chosen.id)
    })
    return {
      task: toTask(this.statements.byId!.get(chosen.id) as unknown as TaskRow),
      lease,
      enforced: overdue,
    }
  }

  hasQueued(kinds: readonly string[]): boolean {
    return this.candidatesFor(kinds, 1).length > 0
  }

  complete(lease: string, now: number, output?: string, answerable: readonly string[] = []): boolean {
    const s = this.statements
    const row = s.byLease!.get(lease) as { id: string; run: string; state: number } | undefined
    if (row === undefined) return false
    let completed = false
    this.transaction(() => {
      if (s.done!.run(lease).changes === 0) return
      completed = true
      if (output !== undefined) s.output!.run(row.id, row.run, output)
      for (const identity of answerable) s.answer!.run(identity, row.id)
      for (const { task } of s.dependents!.all(row.id) as unknown as { task: string }[])
        s.unblock!.run(now, task)
    })
    return completed
  }

  fail(lease: string, reason: string, now: number): boolean {
    const s = this.statements
    const row = s.byLease!.get(lease) as { id: string; attempts: number; state: number } | undefined
    if (row === undefined || row.state !== state.leased) return false
    const text = reason.slice(0, 500)
    if (row.attempts + 1 >= this.limits.maxAttempts) return s.failForGood!.run(text, lease).changes > 0
    return s.requeue!.run(now, text, lease).changes > 0
  }

  release(lease: string, now: number): boolean {
    let released = false
    this.transaction(() => {
      released = this.statements.release!.run(now, lease).changes > 0
    })
    return released
  }

  current(lease: string): boolean {
    return (this.statements.byLease!.get(lease) as { state: number } | undefined)?.state === state.leased
  }

  expire(now: number): number {
    const s = this.statements
    let expired = 0
    this.transaction(() => {
      for (const { lease } of s.overdue!.all(now) as unknown as { lease: string }[]) {
        // A timed-out lease counts as an attempt: a task that hangs every worker fails for good.
        const row = s.byLease!.get(lease) as { attempts: number }
        if (row.attempts + 1 >= this.limits.maxAttempts) s.failForGood!.run('timed out', lease)
        else s.requeue!.run(now, 'timed out', lease)
        expired++
      }
    })
    return expired
  }

  outputs(limit: number): PoolOutput[] {
    this.flush()
    return this.statements.outputs!.all(limit) as unknown as PoolOutput[]
  }

  unwritten(): number {
    return (this.statements.unwritten!.get() as { n: number }).n
  }

  acknowledge(written: readonly OutputWritten[]): number {
    let removed = 0
    this.transaction(() => {
      for (const { task, generation } of written)
        removed += Number(this.statements.acknowledge!.run(task, generation).changes)
    })
    return removed
  }

  reopen(identity: string, now: number): string[] {
    const s = this.statements
    const reopened: string[] = []
    this.transaction(() => {
      const rows = s.answerableFor!.all(identity) as unknown as {
        id: string
        run: string
        generation: number
      }[]
      for (const row of rows) {
        if (s.reopen!.run(now, row.id).changes === 0) continue
        s.forgetAnswerable!.run(row.id)
        s.withdraw!.run(row.id, row.run, row.generation)
        reopened.push(row.id)
      }
      s.forgetIdentity!.run(identity)
    })
    return reopened
  }

  reclaim(now: number): number {
    let reclaimed = 0
    this.transaction(() => {
      reclaimed = Number(this.statements.reclaim!.run(now, `${this.epoch}.`).changes)
    })
    return reclaimed
  }

  stateOf(id: string): TaskState | undefined {
    const row = this.statements.isDone!.get(id) as { state: number } | undefined
    return row === undefined ? undefined : stateNames[row.state]
  }

  runs(): PoolRun[] {
    return this.statements.runs!.all() as unknown as PoolRun[]
  }

  setPriority(run: string, priority: number): number {
    let changed = 0
    this.transaction(() => {
      this.statements.runPriority!.run(priority, run)
      changed = Number(this.statements.priority!.run(priority, run).changes)
    })
    return changed
  }

  counts(run?: string, kind?: string): PoolCounts {
    const s = this.statements
    const rows = (run === undefined
      ? s.countsAll!.all()
      : kind === undefined
        ? s.countsRun!.all(run)
        : s.countsKind!.all(run, kind)) as unknown as { state: number; n: number }[]
    const counts: PoolCounts = { waiting: 0, queued: 0, leased: 0, done: 0, failed: 0 }
    for (const { state: s, n } of rows) counts[stateNames[s]!] = n
    return counts
  }

  failure(id: string): string | undefined {
    return (this.statements.reason!.get(id) as { reason: string } | undefined)?.reason
  }

  close(): void {
    if (!this.db.isOpen) return
    this.flush()
    this.db.close()
  }

  /**
   * The ready tasks of these kinds, best first: one index range per kind, merged. Only the columns
   * the choice needs (a row costs microseconds to hand over); `window` 1 without a preference.
   */
  private candidatesFor(kinds: readonly string[], window: number): Candidate[] {
    const rows: Candidate[] = []
    for (const kind of new Set(kinds)) {
      const key = `${window} ${kind}`
      let statement = this.candidates.get(key)
      if (statement === undefined) {
        // A plain indexed range with a literal limit: wrapped in a union or given the limit as a
        // parameter, SQLite took 10–20 times longer.
        statement = this.db.prepare(
          `SELECT id, priority, seq, inputs, queued_at FROM tasks
           WHERE state = ${state.queued} AND kind = ? ORDER BY priority DESC, seq LIMIT ${window}`,
        )
        this.candidates.set(key, statement)
      }
      rows.push(...(statement.all(kind) as unknown as Candidate[]))
    }
    if (rows.length > 1) rows.sort((a, b) => b.priority - a.priority || a.seq - b.seq)
    return rows
  }

  /** The best ready task at `priority` with one of these affinities, through the `local` index. */
  private localFor(
    kinds: readonly string[],
    holds: readonly string[],
    priority: number,
  ): Candidate | undefined {
    let best: Candidate | undefined
    for (const kind of new Set(kinds))
      for (const affinity of holds) {
        const row = this.statements.local!.get(kind, affinity, priority) as Candidate | undefined
        if (row !== undefined && (best === undefined || row.seq < best.seq)) best = row
      }
    return best
  }

  /** Commits the writes a group commit holds (a no-op when every write commits at once). */
  flush(): void {
    if (this.pending === 0) return
    this.pending = 0
    this.db.exec('COMMIT')
  }

  /**
   * Runs `work` in the open transaction (opened if none), and commits once `groupCommit` writes
   * are held. A failure rolls back every write since the last commit: the tasks they leased are
   * queued again, and leases they completed are refused, so a result is counted at most once.
   */
  private transaction(work: () => void): void {
    if (this.pending === 0) this.db.exec('BEGIN IMMEDIATE')
    try {
      work()
    } catch (error) {
      this.pending = 0
      this.db.exec('ROLLBACK')
      throw error
    }
    if (++this.pending >= this.limits.groupCommit) this.flush()
  }
}
/** Adds a column to a table made before it existed. */
function addColumn(db: DatabaseSync, table: string, column: string, definition: string): void {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as unknown as { name: string }[]
  if (!columns.some((c) => c.name === column))
    db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`)
}

function toTask(row: TaskRow): PoolTask {
  return {
    id: row.id,
    run: row.run,
    kind: row.kind,
    priority: row.priority,
    inputs: JSON.parse(row.inputs) as string[],
    affinity: row.affinity,
    payload: row.payload,
    timeoutMs: row.timeout_ms,
    attempts: row.attempts,
  }
}
