/*
 * What the durable task pool of match runs is (issue 15): its tasks, grants, outputs and the
 * `TaskPool` interface, apart from the SQLite pool (`task-pool.ts`) so that another store can
 * implement it and its users depend on the contract alone.
 */

/** Where a task is, in the order of its state's number in the pool. */
export const stateNames = ['waiting', 'queued', 'leased', 'done', 'failed'] as const
/** Where a task is: waiting for others, queued, leased, done or failed for good. */
export type TaskState = (typeof stateNames)[number]

/** A task as a run adds it. */
export interface PoolTaskInit {
  /** Stable id: the same task added twice is one task (a run extended, a coordinator restarted). */
  id: string
  /** The run it belongs to. */
  run: string
  /** Its kind (`video-fingerprint`, `video-match`, …): workers pull the kinds they run. */
  kind: string
  /** Higher first (default 0). */
  priority?: number
  /** Ids of tasks that must be done first. */
  after?: readonly string[]
  /** Locations of its input files (fingerprint shards): what a snapshot cache holds. */
  inputs?: readonly string[]
  /**
   * The input that is costly to copy and shared by many tasks (a slice's reference shard): a
   * worker that holds it is given this run's tasks with it first (locality, `GrantRequest.holds`).
   */
  affinity?: string
  /** Its description, opaque to the pool (JSON text, say). */
  payload: string
  /** How long a lease may be held before the timer takes it back, ms (default the pool's). */
  timeoutMs?: number
}

/** A task as the pool holds it. */
export interface PoolTask extends Required<Omit<PoolTaskInit, 'after' | 'affinity'>> {
  affinity: string
  attempts: number
}

/** What a worker is granted. */
export interface PoolGrant {
  task: PoolTask
  /** The lease's id: completion and failure name it. */
  lease: string
  /** The task had waited longer than `enforceAfterMs`: granted whatever the worker prefers. */
  enforced: boolean
}

/** Counts of a run's tasks (or all runs'). */
export interface PoolCounts {
  waiting: number
  queued: number
  leased: number
  done: number
  failed: number
}

/** A worker asking for a task. */
export interface GrantRequest {
  worker: string
  kinds: readonly string[]
  now: number
  /** Whether the worker would rather have a task with these inputs (it holds them). */
  prefers?: (inputs: readonly string[]) => boolean
  /**
   * The affinities it holds (its cached reference shards): a top-priority task with one of them
   * goes first, found through an index wherever it is in the queue (at most 16 are looked up).
   */
  holds?: readonly string[]
}

/** A done task's output waiting for a result writer: its result, or the withdrawal of one. */
export interface PoolOutput {
  task: string
  run: string
  /** The output's generation: 1, and one more each time the task was reopened. */
  generation: number
  /** The output (`complete`'s), or `withdrawnOutput` once the task was reopened. */
  body: string
}

/** An outbox body saying the task's output of that generation is withdrawn. */
export const withdrawnOutput = '{"withdrawn":true}'

/** A writer's acknowledgement: it stored this generation of a task's output. */
export interface OutputWritten {
  task: string
  generation: number
}

/** A run in the pool. */
export interface PoolRun {
  run: string
  /** Its priority: its first task's, or the last one set. */
  priority: number
}

/** The durable task pool: SQLite by default, any store implementing it later. */
export interface TaskPool {
  /** Adds tasks; returns how many were new. */
  add(tasks: readonly PoolTaskInit[], now: number): number
  grant(request: GrantRequest): PoolGrant | undefined
  /** Whether a task of these kinds is queued (cheap). */
  hasQueued(kinds: readonly string[]): boolean
  /**
   * The lease's task is done, and its `output` (if any) joins the outbox in the same transaction,
   * with the identities `answerable` for it; false when the lease is no longer current (taken
   * back, or done).
   */
  complete(lease: string, now: number, output?: string, answerable?: readonly string[]): boolean
  /**
   * `identity` was caught lying: every done task it is answerable for is queued again under its
   * next generation, its output withdrawn. Only tasks nothing comes after are reopened (their
   * dependents would have read what is now suspect). Returns the tasks reopened.
   */
  reopen(identity: string, now: number): string[]
  /** Outputs no writer has acknowledged yet, oldest first. */
  outputs(limit: number): PoolOutput[]
  /** How many outputs wait for a writer (a count: no output is read). */
  unwritten(): number
  /** A writer stored these outputs: they leave the outbox (a newer generation stays). Returns how many did. */
  acknowledge(written: readonly OutputWritten[]): number
  /** Takes back every lease of an earlier opening (not counted as an attempt). Returns how many. */
  reclaim(now: number): number
  /** The runs in the pool. */
  runs(): PoolRun[]
  /** A task's state, or undefined for a task the pool does not hold. */
  stateOf(id: string): TaskState | undefined
  /** The lease's task failed; it is queued again until `maxAttempts`. False for a stale lease. */
  fail(lease: string, reason: string, now: number): boolean
  /**
   * The lease's worker went away (its connection closed): the task is queued again at once, not
   * counted as an attempt (it was not the task's fault). False for a stale lease.
   */
  release(lease: string, now: number): boolean
  /** Whether a lease is current: completing it now would count. */
  current(lease: string): boolean
  /** The timer: leases held past their task's timeout go back to the queue. Returns how many. */
  expire(now: number): number
  /** Changes a run's priority (its queued tasks keep their order within it). */
  setPriority(run: string, priority: number): number
  /** Counts of every task, a run's, or a run's of one kind. */
  counts(run?: string, kind?: string): PoolCounts
  /** A task's reason for failing for good, if it did. */
  failure(id: string): string | undefined
  /** Makes every write so far durable (a store that groups commits). */
  flush(): void
  close(): void
}
