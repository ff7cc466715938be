import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { Match } from '../jobs/match/matcher.ts'

/*
 * Where match runs' results end up (issue 15): a SQLite file (WAL) that result writers fill in
 * batches. A task's result is written once: its task id is the key, so a result computed twice (a
 * lease taken back, then both finished) or delivered again after a writer crashed mid-batch adds
 * nothing. A batch is one transaction: a writer killed in the middle of it leaves none of it, and
 * the batch is delivered again.
 *
 * A task reopened because an identity answerable for it was caught (README, "Trust") comes again:
 * first the withdrawal of its output (`withdrawn`, its matches leave the store), then the output of
 * its next generation. Each task keeps the newest it was sent, whatever order they arrive in: a
 * later generation over an earlier one, a withdrawal over the result of its own generation.
 */

/** One task's result, as a writer receives it. */
export interface TaskResult {
  /** The pool task it answers (its id is the key of exactly-once). */
  task: string
  run: string
  /** 1 (the default), and one more each time the task was reopened. */
  generation?: number
  /** This generation's output is withdrawn: the task's matches leave the store. */
  withdrawn?: boolean
  matches: readonly Match[]
  /** Owners, for queries by owner (optional). */
  ugcOwners?: Readonly<Record<string, string>>
  refOwners?: Readonly<Record<string, string>>
}

/** A stored match, with where it came from. */
export interface StoredMatch extends Match {
  run: string
  task: string
  ugcOwner: string | null
  refOwner: string | null
}

/** What a query asks: matches of a user video, of a reference, or of an owner's videos (either side). */
export type MatchQuery = { ugc: string } | { ref: string } | { owner: string }

export class ResultsStore {
  private readonly db: DatabaseSync
  private readonly statements: Record<
    'task' | 'stored' | 'forget' | 'match' | 'byUgc' | 'byRef' | 'byOwner' | 'tasks' | 'runs',
    StatementSync
  >

  /** Opens (or creates) the store at `path` (`:memory:` for a throwaway one). */
  constructor(path: string) {
    this.db = new DatabaseSync(path)
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS results (task TEXT PRIMARY KEY, run TEXT NOT NULL, matches INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS matches (
        task TEXT NOT NULL, run TEXT NOT NULL,
        ugc_id TEXT NOT NULL, ref_id TEXT NOT NULL,
        ugc_start REAL NOT NULL, ugc_end REAL NOT NULL, ref_start REAL NOT NULL, ref_end REAL NOT NULL,
        score REAL NOT NULL, ugc_owner TEXT, ref_owner TEXT
      );
      CREATE INDEX IF NOT EXISTS by_ugc ON matches (ugc_id);
      CREATE INDEX IF NOT EXISTS by_ref ON matches (ref_id);
      CREATE INDEX IF NOT EXISTS by_ugc_owner ON matches (ugc_owner);
      CREATE INDEX IF NOT EXISTS by_ref_owner ON matches (ref_owner);
      CREATE INDEX IF NOT EXISTS by_task ON matches (task);
    `)
    // Stores made before outputs had generations gain them (every result so far is the first).
    const known = this.db.prepare(`PRAGMA table_info(results)`).all() as unknown as { name: string }[]
    if (!known.some((c) => c.name === 'generation'))
      this.db.exec(`ALTER TABLE results ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE results ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;`)
    const columns = `task, run, ugc_id AS ugcId, ref_id AS refId, ugc_start AS ugcStart, ugc_end AS ugcEnd,
      ref_start AS refStart, ref_end AS refEnd, score, ugc_owner AS ugcOwner, ref_owner AS refOwner`
    const order = 'ORDER BY ugc_id, ref_id, ugc_start'
    this.statements = {
      task: this.db.prepare(
        `INSERT OR REPLACE INTO results (task, run, matches, generation, withdrawn) VALUES (?, ?, ?, ?, ?)`,
      ),
      stored: this.db.prepare(`SELECT generation, withdrawn FROM results WHERE task = ?`),
      forget: this.db.prepare(`DELETE FROM matches WHERE task = ?`),
      match: this.db.prepare(
        `INSERT INTO matches (task, run, ugc_id, ref_id, ugc_start, ugc_end, ref_start, ref_end, score, ugc_owner, ref_owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      byUgc: this.db.prepare(`SELECT ${columns} FROM matches WHERE ugc_id = ? ${order}`),
      byRef: this.db.prepare(`SELECT ${columns} FROM matches WHERE ref_id = ? ${order}`),
      byOwner: this.db.prepare(
        `SELECT ${columns} FROM matches WHERE ugc_owner = ?1
         UNION SELECT ${columns} FROM matches WHERE ref_owner = ?1 ORDER BY ugcId, refId, ugcStart`,
      ),
      tasks: this.db.prepare(
        `SELECT COUNT(*) AS n, COALESCE(SUM(matches), 0) AS m FROM results WHERE withdrawn = 0`,
      ),
      runs: this.db.prepare(
        `SELECT run, COUNT(*) AS tasks, SUM(matches) AS matches FROM results WHERE withdrawn = 0 GROUP BY run`,
      ),
    }
  }

  /**
   * Writes a batch in one transaction; returns the results it took (those already written, or
   * superseded by a newer generation or a withdrawal, are skipped). `afterEach` is called after each
   * task's rows, inside the transaction (tests crash a writer there).
   */
  writeBatch(batch: readonly TaskResult[], afterEach?: (task: string) => void): number {
    let added = 0
    this.db.exec('BEGIN IMMEDIATE')
    try {
      for (const result of batch) {
        const withdrawn = result.withdrawn === true
        const generation = result.generation ?? 1
        const stored = this.statements.stored.get(result.task) as
          { generation: number; withdrawn: number } | undefined
        // Newest first: a later generation, then a withdrawal over its own generation's result.
        const rank = (generation: number, gone: boolean) => generation * 2 + (gone ? 1 : 0)
        if (
          stored !== undefined &&
          rank(stored.generation, stored.withdrawn === 1) >= rank(generation, withdrawn)
        )
          continue
        if (stored !== undefined) this.statements.forget.run(result.task)
        const matches = withdrawn ? [] : result.matches
        this.statements.task.run(result.task, result.run, matches.length, generation, withdrawn ? 1 : 0)
        for (const m of matches)
          this.statements.match.run(
            result.task,
            result.run,
            m.ugcId,
            m.refId,
            m.ugcStart,
            m.ugcEnd,
            m.refStart,
            m.refEnd,
            m.score,
            result.ugcOwners?.[m.ugcId] ?? null,
            result.refOwners?.[m.refId] ?? null,
          )
        added++
        afterEach?.(result.task)
      }
      this.db.exec('COMMIT')
    } catch (error) {
      this.db.exec('ROLLBACK')
      throw error
    }
    return added
  }

  query(query: MatchQuery): StoredMatch[] {
    const rows =
      'ugc' in query
        ? this.statements.byUgc.all(query.ugc)
        : 'ref' in query
          ? this.statements.byRef.all(query.ref)
          : this.statements.byOwner.all(query.owner)
    return rows as unknown as StoredMatch[]
  }

  /** Tasks written, and their matches. */
  totals(): { tasks: number; matches: number } {
    const row = this.statements.tasks.get() as { n: number; m: number }
    return { tasks: row.n, matches: row.m }
  }

  /** Tasks written and their matches, per run. */
  byRun(): Map<string, { tasks: number; matches: number }> {
    const rows = this.statements.runs.all() as unknown as { run: string; tasks: number; matches: number }[]
    return new Map(rows.map((r) => [r.run, { tasks: r.tasks, matches: r.matches }]))
  }

  close(): void {
    if (this.db.isOpen) this.db.close()
  }
}

/**
 * Every match of a results store and how many tasks it holds, read without taking a write lock (the
 * writers may be writing it): for checks and benchmarks.
 */
export function readResults(path: string): { matches: Match[]; tasks: number } {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const matches = db
      .prepare(
        `SELECT ugc_id AS ugcId, ref_id AS refId, ugc_start AS ugcStart, ugc_end AS ugcEnd,
           ref_start AS refStart, ref_end AS refEnd, score FROM matches`,
      )
      .all() as unknown as Match[]
    const tasks = (db.prepare(`SELECT COUNT(*) AS n FROM results WHERE withdrawn = 0`).get() as { n: number })
      .n
    return { matches, tasks }
  } finally {
    db.close()
  }
}
