import { generateCatalogue } from '../pool/catalogue.ts'
import { partitionRun, type Slice } from '../pool/partition.ts'
import { chooseSnapshot, filesToCopy, type Snapshot, type SnapshotFile } from '../pool/snapshots.ts'
import { SqliteTaskPool } from '../pool/task-pool.ts'
import { Random } from './random.ts'

/*
 * A match run in virtual time (issue 15): a generated catalogue cut into slices by the real
 * partitioning, leased through the real task pool (SQLite in memory) to a crowd of virtual
 * participants that differ in speed, bandwidth and disk (log-normal), come and go (churn), and keep
 * snapshot folders chosen by the seed's similarity function, copying only what the chosen folder
 * lacks. A participant that leaves gives its task back (its connection closed); a task held past
 * its timeout (a very slow participant) is taken back by the pool's timer; a newcomer replaces the
 * one that left, with empty folders. Deterministic for a seed.
 */

/** Fingerprint bytes a second of video: a reference keeps phase 0, a query all four (108 B each). */
export const referenceBytesPerSecond = 108
export const queryBytesPerSecond = 4 * 108

/** Options of a simulated match run. */
export interface MatchRunSimulationInit {
  participants: number
  ugc: number
  references: number
  seed?: number
  /** Locality-aware grants: a participant states the shards it holds (default true). */
  locality?: boolean
  /** User videos of similar length share a slice (default true). */
  groupByLength?: boolean
  /** Snapshot folders of every participant; unset: from each one's disk (`diskBytes`). */
  folders?: number
  /** Median disk a participant lends its cache, bytes (log-normal, σ 0.8); default 2 GB. */
  diskBytes?: number
  /** Share of the crowd leaving per minute, each replaced by a newcomer (default 0). */
  churnPerMinute?: number
  /** The pool's lease timeout, s: a task held longer goes to another participant (default 600). */
  leaseTimeoutSeconds?: number
  /** Work of a slice aimed at, hours² (default 200). */
  targetWork?: number
  onProgress?: (done: number, total: number) => void
}

/** What a simulated match run did. */
export interface MatchRunSimulation {
  participants: number
  ugc: number
  references: number
  slices: number
  /** Slices done: every one, once. */
  tasksDone: number
  /** Slices failed for good (timed out on `maxAttempts` participants). */
  tasksFailed: number
  bytesCopied: number
  /** Virtual seconds from the start to the last slice done. */
  seconds: number
  /** Virtual seconds from 95 % of slices done to all. */
  tailSeconds: number
  /** Share of slices whose reference shard the participant already held. */
  referenceHits: number
  /** Participants that left mid-run (each replaced). */
  departures: number
  /** Slices granted again: their participant left, or held them past their timeout. */
  regranted: number
}

/** Runs the simulation. */
export function simulateMatchRun(init: MatchRunSimulationInit): MatchRunSimulation {
  const seed = init.seed ?? 1
  const catalogue = generateCatalogue({ ugc: init.ugc, references: init.references, seed })
  const slices = partitionRun(catalogue, [{ ugc: {}, references: {} }], {
    targetWork: init.targetWork ?? 200,
    maxReferences: 2000,
    groupByLength: init.groupByLength ?? true,
  })
  const durations = new Map<string, number>([
    ...catalogue.ugc.map((v) => [v.id, v.duration] as const),
    ...catalogue.references.map((r) => [r.id, r.duration] as const),
  ])
  return run(slices, durations, init, seed)
}

interface Participant {
  id: string
  /** Hours² of brute-force work a second. */
  speed: number
  bandwidth: number
  snapshots: Snapshot[]
  lease: string | undefined
  leavesAt: number
  /** Bumped when it leaves: events of the one it replaced are stale. */
  generation: number
}

function run(
  slices: readonly Slice[],
  durations: ReadonlyMap<string, number>,
  init: MatchRunSimulationInit,
  seed: number,
): MatchRunSimulation {
  const rng = new Random(seed)
  const random = () => rng.next()
  const lognormal = (median: number, sigma: number) =>
    median * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()))
  const seconds = (ids: readonly string[]) => ids.reduce((sum, id) => sum + durations.get(id)!, 0)
  const locality = init.locality ?? true
  const timeout = (init.leaseTimeoutSeconds ?? 600) * 1000
  const pool = new SqliteTaskPool({
    path: ':memory:',
    groupCommit: 512,
    enforceAfterMs: 3_600_000,
    timeoutMs: timeout,
  })
  const sizes = new Map<string, number>()
  // A typical slice (200 hours² of brute-force work) takes about 3 minutes on a median participant.
  const medianSpeed = 200 / 180
  let largestShard = 0
  pool.add(
    slices.map((slice) => {
      const shard = `refs:${slice.references[0]}:${slice.references.length}`
      const bytes = seconds(slice.references) * referenceBytesPerSecond
      largestShard = Math.max(largestShard, bytes)
      sizes.set(shard, bytes)
      sizes.set(slice.id, seconds(slice.ugc) * queryBytesPerSecond)
      return {
        id: slice.id,
        run: 'simulated',
        kind: 'video-match',
        inputs: [shard, slice.id],
        affinity: shard,
        payload: String(slice.work),
        // Five times what the median participant takes, and never under the pool's timeout: a
        // participant that left is waited for that long; a very slow one may lose its task.
        timeoutMs: Math.max(timeout, Math.round((5 * slice.work * 1000) / medianSpeed)),
      }
    }),
    0,
  )
  const churn = init.churnPerMinute ?? 0
  const meanSession = churn > 0 ? 60 / churn : Number.POSITIVE_INFINITY
  let joined = 0
  const newcomer = (now: number): Participant => {
    // Folders its disk holds: at least one (a task's own inputs), at most eight.
    const folders =
      init.folders ??
      Math.max(1, Math.min(8, Math.floor(lognormal(init.diskBytes ?? 2e9, 0.8) / Math.max(1, largestShard))))
    return {
      id: `p${joined++}`,
      speed: lognormal(medianSpeed, 0.6),
      bandwidth: lognormal(5e6, 0.8),
      snapshots: Array.from({ length: folders }, (_, f): Snapshot => ({
        id: `f${f}`,
        files: [],
        usedAt: -f,
      })),
      lease: undefined,
      leavesAt: now + (Number.isFinite(meanSession) ? rng.exponential(meanSession) : Infinity),
      generation: 0,
    }
  }
  const crowd = Array.from({ length: init.participants }, () => newcomer(0))
  const heap = new EventHeap()
  crowd.forEach((_, i) => heap.push(i * 1e-6, i, 0))
  let bytesCopied = 0
  let hits = 0
  let departures = 0
  let regranted = 0
  const granted = new Set<string>()
  const done: number[] = []
  let lastExpiry = 0
  let settled = 0
  let events = 0
  while (heap.size > 0 && settled < slices.length) {
    // Done or failed for good (a slice every participant timed out on): the run is over when all are.
    if (++events % 4096 === 0) {
      const counts = pool.counts()
      settled = counts.done + counts.failed
    }
    const [now, index, generation] = heap.pop()
    let participant = crowd[index]!
    if (generation !== participant.generation) continue
    if (now >= participant.leavesAt) {
      // It left before this moment, its task unfinished: its connection closed, so the coordinator
      // gives the task back at once (a participant that vanished silently would wait for the timer).
      if (participant.lease !== undefined) pool.release(participant.lease, Math.round(now * 1000))
      departures++
      participant = { ...newcomer(participant.leavesAt), generation: participant.generation + 1 }
      crowd[index] = participant
      heap.push(now, index, participant.generation)
      continue
    }
    const ms = Math.round(now * 1000)
    if (ms - lastExpiry >= 10_000) {
      pool.expire(ms)
      lastExpiry = ms
    }
    if (participant.lease !== undefined) {
      if (pool.complete(participant.lease, ms)) {
        done.push(now)
        settled++
      }
      participant.lease = undefined
      if (done.length % 1000 === 0) init.onProgress?.(done.length, slices.length)
    }
    const holds = locality
      ? participant.snapshots.flatMap((s) =>
          s.files.filter((f) => f.class === 'reference').map((f) => f.location),
        )
      : undefined
    const grant = pool.grant({
      worker: participant.id,
      kinds: ['video-match'],
      now: ms,
      ...(holds !== undefined && { holds }),
    })
    if (grant === undefined) {
      // Nothing now (the rest is leased): ask again a little later, as a participant on standby does.
      heap.push(Math.min(now + 30, participant.leavesAt), index, participant.generation)
      continue
    }
    if (granted.has(grant.task.id)) regranted++
    granted.add(grant.task.id)
    const [shard, ugc] = grant.task.inputs as [string, string]
    const files: SnapshotFile[] = [
      { class: 'reference', location: shard },
      { class: 'ugc', location: ugc },
    ]
    const choice = chooseSnapshot(participant.snapshots, files)!
    const snapshot = choice.snapshot
    const missing = choice.wipe ? files : filesToCopy(snapshot, files)
    if (!missing.some((f) => f.class === 'reference')) hits++
    const bytes = missing.reduce((sum, f) => sum + sizes.get(f.location)!, 0)
    bytesCopied += bytes
    // The folder now holds exactly the task's files.
    participant.snapshots = participant.snapshots.map((s) =>
      s.id === snapshot.id ? { ...s, files, usedAt: now } : s,
    )
    participant.lease = grant.lease
    // Its next moment: the task done, or its departure if that comes first.
    const finishes = now + bytes / participant.bandwidth + Number(grant.task.payload) / participant.speed
    heap.push(Math.min(finishes, participant.leavesAt), index, participant.generation)
  }
  const { done: tasksDone, failed: tasksFailed } = pool.counts()
  pool.close()
  done.sort((a, b) => a - b)
  const end = done.at(-1) ?? 0
  return {
    participants: init.participants,
    ugc: init.ugc,
    references: init.references,
    slices: slices.length,
    tasksDone,
    tasksFailed,
    bytesCopied: Math.round(bytesCopied),
    seconds: Math.round(end),
    tailSeconds: Math.round(end - (done[Math.floor(done.length * 0.95)] ?? 0)),
    referenceHits: Math.round((hits / Math.max(1, done.length)) * 1000) / 1000,
    departures,
    regranted,
  }
}

/** Participants' next moments, earliest first (a binary heap): [time, participant, generation]. */
class EventHeap {
  private readonly items: [number, number, number][] = []

  get size(): number {
    return this.items.length
  }

  push(time: number, index: number, generation: number): void {
    const heap = this.items
    heap.push([time, index, generation])
    for (let i = heap.length - 1; i > 0;) {
      const p = (i - 1) >> 1
      if (heap[p]![0] <= heap[i]![0]) break
      ;[heap[i], heap[p]] = [heap[p]!, heap[i]!]
      i = p
    }
  }

  pop(): [number, number, number] {
    const heap = this.items
    const top = heap[0]!
    const last = heap.pop()!
    if (heap.length > 0) {
      heap[0] = last
      for (let i = 0; ;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && heap[l]![0] < heap[m]![0]) m = l
        if (r < heap.length && heap[r]![0] < heap[m]![0]) m = r
        if (m === i) break
        ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
        i = m
      }
    }
    return top
  }
}
