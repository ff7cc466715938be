import { generateCatalogue } from '../../peer/pool/catalogue.ts'
import { partitionRun, type Slice } from '../../peer/pool/partition.ts'
import { chooseSnapshot, filesToCopy, type Snapshot, type SnapshotFile } from '../../peer/pool/snapshots.ts'
import { SqliteTaskPool } from '../../peer/pool/task-pool.ts'

/*
 * What snapshot caches save (issue 15's `locality.*` figures): one simulated match run, the same
 * catalogue, slices and crowd, leased through the real task pool (SQLite in memory) with
 * locality-aware grants (a participant is given tasks of the reference shards it holds) and
 * without; each participant keeps `folders` snapshot folders chosen by the seed's similarity
 * function, and copies only what the chosen folder lacks. Participants differ in speed and
 * bandwidth (log-normal); time is virtual. Also the tail (95 % to 100 % of tasks done) with and
 * without length grouping.
 */

/** One way of running the simulated run. */
export interface LocalityOutcome {
  tasks: number
  /** Bytes copied to participants, in all. */
  bytesCopied: number
  /** Virtual seconds from start to the last task done. */
  seconds: number
  /** Virtual seconds from 95 % of tasks done to all. */
  tailSeconds: number
  /** Share of tasks whose reference shard the participant already held. */
  referenceHits: number
}

export interface LocalityBench {
  participants: number
  ugc: number
  references: number
  slices: number
  withLocality: LocalityOutcome
  without: LocalityOutcome
  /** Locality on, user videos not grouped by length. */
  ungrouped: LocalityOutcome
  bytesSavedRatio: number
}

/** Fingerprint bytes a second of video: a reference keeps phase 0, a query all four (108 B each). */
const referenceBytesPerSecond = 108
const queryBytesPerSecond = 4 * 108

export async function runLocalityBench(init: {
  participants?: number
  ugc?: number
  references?: number
  folders?: number
  seed?: number
  onProgress?: (done: number, total: number) => void
}): Promise<LocalityBench> {
  const participants = init.participants ?? 1000
  const catalogue = generateCatalogue({
    ugc: init.ugc ?? 100_000,
    references: init.references ?? 10_000,
    seed: init.seed ?? 1,
  })
  const everything = [{ ugc: {}, references: {} }]
  const cut = (groupByLength: boolean) =>
    partitionRun(catalogue, everything, { targetWork: 200, maxReferences: 2000, groupByLength })
  const grouped = cut(true)
  const durations = new Map<string, number>([
    ...catalogue.ugc.map((v) => [v.id, v.duration] as const),
    ...catalogue.references.map((r) => [r.id, r.duration] as const),
  ])
  const ways: [keyof Pick<LocalityBench, 'withLocality' | 'without' | 'ungrouped'>, Slice[], boolean][] = [
    ['withLocality', grouped, true],
    ['without', grouped, false],
    ['ungrouped', cut(false), true],
  ]
  const out: Partial<LocalityBench> = {}
  let step = 0
  for (const [name, slices, locality] of ways) {
    out[name] = simulate(slices, durations, participants, init.folders ?? 2, locality, init.seed ?? 1)
    init.onProgress?.(++step, ways.length)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const result = out as LocalityBench
  return {
    ...result,
    participants,
    ugc: catalogue.ugc.length,
    references: catalogue.references.length,
    slices: grouped.length,
    bytesSavedRatio: Math.round((result.without.bytesCopied / result.withLocality.bytesCopied) * 10) / 10,
  }
}

function simulate(
  slices: readonly Slice[],
  durations: ReadonlyMap<string, number>,
  participants: number,
  folders: number,
  locality: boolean,
  seed: number,
): LocalityOutcome {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const lognormal = (median: number, sigma: number) =>
    median * Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()))
  const seconds = (ids: readonly string[]) => ids.reduce((sum, id) => sum + durations.get(id)!, 0)
  const pool = new SqliteTaskPool({ path: ':memory:', groupCommit: 512, enforceAfterMs: 3_600_000 })
  const sizes = new Map<string, number>()
  pool.add(
    slices.map((slice) => {
      const shard = `refs:${slice.references[0]}:${slice.references.length}`
      sizes.set(shard, seconds(slice.references) * referenceBytesPerSecond)
      sizes.set(slice.id, seconds(slice.ugc) * queryBytesPerSecond)
      return {
        id: slice.id,
        run: 'bench',
        kind: 'video-match',
        inputs: [shard, slice.id],
        affinity: shard,
        payload: String(slice.work),
      }
    }),
    0,
  )
  // A typical slice (200 hours² of brute-force work) takes about 3 minutes on a median participant.
  const crowd = Array.from({ length: participants }, (_, i) => ({
    id: `p${i}`,
    speed: lognormal(200 / 180, 0.6),
    bandwidth: lognormal(5e6, 0.8),
    snapshots: Array.from({ length: folders }, (_, f): Snapshot => ({ id: `f${f}`, files: [], usedAt: -f })),
    lease: undefined as string | undefined,
  }))
  // Events: when each participant is next free (a binary heap by time).
  const heap: [number, number][] = crowd.map((_, i) => [i * 1e-6, i])
  const pop = () => {
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
  const push = (item: [number, number]) => {
    heap.push(item)
    for (let i = heap.length - 1; i > 0;) {
      const p = (i - 1) >> 1
      if (heap[p]![0] <= heap[i]![0]) break
      ;[heap[i], heap[p]] = [heap[p]!, heap[i]!]
      i = p
    }
  }
  let bytesCopied = 0
  let hits = 0
  const done: number[] = []
  while (heap.length > 0) {
    const [now, index] = pop()
    const participant = crowd[index]!
    if (participant.lease !== undefined) {
      pool.complete(participant.lease, Math.round(now * 1000))
      done.push(now)
      participant.lease = undefined
    }
    const holds = locality
      ? participant.snapshots.flatMap((s) =>
          s.files.filter((f) => f.class === 'reference').map((f) => f.location),
        )
      : undefined
    const grant = pool.grant({
      worker: participant.id,
      kinds: ['video-match'],
      now: Math.round(now * 1000),
      ...(holds !== undefined && { holds }),
    })
    if (grant === undefined) continue
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
    push([now + bytes / participant.bandwidth + Number(grant.task.payload) / participant.speed, index])
  }
  pool.close()
  done.sort((a, b) => a - b)
  const end = done.at(-1) ?? 0
  return {
    tasks: done.length,
    bytesCopied: Math.round(bytesCopied),
    seconds: Math.round(end),
    tailSeconds: Math.round(end - (done[Math.floor(done.length * 0.95)] ?? 0)),
    referenceHits: Math.round((hits / Math.max(1, done.length)) * 1000) / 1000,
  }
}
