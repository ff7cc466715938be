import { existsSync } from 'node:fs'
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Coordinator, FrameReport, JobInit, RoundSource } from '../coordinator/coordinator.ts'
import type { AnyJobKind, JobSpec } from '../jobs/kind.ts'
import { encodeFingerprints } from '../jobs/match/fingerprint-file.ts'
import {
  type FingerprintJob,
  fingerprintKind,
  type VideoFingerprintOutcome,
  type VideoInput,
} from '../jobs/match/fingerprint-kind.ts'
import { fingerprintFormat } from '../jobs/match/format.ts'
import {
  type MatchJob,
  matchKind,
  type QueryInput,
  type QueryMatches,
  type ReferenceList,
} from '../jobs/match/match-kind.ts'
import type { Match } from '../jobs/match/matcher.ts'
import type { Clock } from '../protocol/clock.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { extendList, loadList, type ReferenceShards, saveList } from './reference-list.ts'
import { loadRun, type RunDefinition, type RunEntry, runEntries, taskIds } from './run-definition.ts'
import type { PoolCounts, PoolTaskInit, TaskPool } from './task-pool.ts'

/*
 * Match runs fed to a coordinator from the durable task pool (issue 15). Every run of a workspace
 * lives in the pool as tasks: one fingerprint task per distinct video, then, once every reference
 * of the run is fingerprinted, one match task per user video and reference shard. Nothing of a run
 * lives only in memory: the coordinator draws a round from the pool when a participant asks
 * (`RoundSource`: the participant's cached shards are preferred), writes what a round produced
 * (a fingerprint file, or a match list into the pool's outbox) before it marks the task done, and a
 * coordinator restarted after a crash reloads the runs and takes back the dead one's leases.
 *
 * The workspace: `pool.db`, and `runs/<run>/` with each run's `run.json`, its fingerprint files and
 * its reference list.
 */

/** Kinds of pool tasks (the job kinds that compute them). */
const fingerprintTask = fingerprintKind.name
const matchTask = matchKind.name

/** The coordinator job every run's fingerprinting goes through. */
export const poolFingerprintJob = 'pool-fingerprints'
/** A run's match job (version 1), and the jobs of its extended reference lists. */
export const runMatchJob = (run: string, version = 1): string =>
  version === 1 ? `${run}-matches` : `${run}-matches-v${version}`

/** How often the workspace is looked at for new runs and extended ones, ms. */
const watchMs = 2_000

/** A done match task's output, as it waits in the outbox for a result writer. */
export interface MatchOutput {
  matches: Match[]
}

/** A run's progress: its pool counts by kind, and what it found. */
export interface RunProgress {
  run: string
  priority: number
  fingerprints: PoolCounts
  matches: PoolCounts
  /** Whether every reference is fingerprinted (or failed) and the match tasks are out. */
  matching: boolean
  /** Every task settled. */
  finished: boolean
  failedVideos: number
}

/** A participant as a run sees it: the slices it was given, and how many of their shards it held. */
export interface RunWorker {
  participant: string
  slices: number
  /** Slices whose reference shard it already held (its snapshot cache), of `slices`. */
  held: number
  /** When it was last given one (coordinator clock, ms). */
  lastAt: number
}

/** A drawn round: the pool lease it computes. */
interface DrawnRound {
  run: string
  task: string
  lease: string
  entry: number
}

/** A run loaded in memory: its definition, files, and where its reference list stands. */
interface LoadedRun {
  definition: RunDefinition
  folder: string
  entries: RunEntry[]
  /** Fingerprint URLs of done entries, as participants fetch them now. */
  urls: Map<number, string>
  /**
   * The reference list once made: entries in list order, and the shards it is cut into. An
   * extension appends references and shards (a new version); what is there never moves.
   */
  list?: ReferenceShards
  failedVideos: number
  /** When its run.json was last read (an extension rewrites it). */
  readAt: number
}

/** Options of a match pool. */
export interface MatchPoolInit {
  pool: TaskPool
  /** The workspace folder (`runs/<run>/` for each run). */
  root: string
  /** Publishes a local file (a file: URL) where participants can fetch it (the event's frame store). */
  publish: (fileUrl: string) => string
  clock: Clock
  logger?: Logger
}

export class MatchPool {
  private readonly pool: TaskPool
  private readonly root: string
  private readonly publish: (fileUrl: string) => string
  private readonly clock: Clock
  private readonly log: Logger
  private readonly runs = new Map<string, LoadedRun>()
  private readonly drawn = new Map<string, DrawnRound>()
  private coordinator: Coordinator | undefined
  private nextRound = 0
  private readonly listeners: {
    complete: (o: unknown, r: FrameReport) => void
    dropped: (r: FrameReport) => void
    quarantined: (q: { participantId: string }) => void
  }
  /** Written fingerprint files and match lists, settled in order (a completion waits for its file). */
  private writing: Promise<void> = Promise.resolve()
  private readonly changed = new Set<() => void>()
  /** Per run, per participant: slices drawn and shards held (the dashboard's cache hit rates). */
  private readonly workersByRun = new Map<string, Map<string, RunWorker>>()
  private watcher: unknown
  private watching: Promise<void> = Promise.resolve()
  /** The rounds of the fingerprint job come from here. */
  private readonly fingerprints: RoundSource
  /** The rounds of every run's match job come from here (one source: the pool orders the runs). */
  private readonly matchRounds: RoundSource

  constructor(init: MatchPoolInit) {
    this.pool = init.pool
    this.root = init.root
    this.publish = init.publish
    this.clock = init.clock
    this.log = init.logger ?? makeLogger('crowdmesh:match-pool')
    const refused = (jobId: string, frameIndex: number, reason: string) =>
      this.refuse(jobId, frameIndex, reason)
    this.fingerprints = new PoolSource(this.pool, fingerprintTask, (p) => this.drawFingerprint(p), refused)
    this.matchRounds = new PoolSource(this.pool, matchTask, (p, holds) => this.drawMatch(p, holds), refused)
    this.listeners = {
      complete: (outcome, report) => this.roundComplete(outcome, report),
      dropped: (report) => this.roundDropped(report),
      quarantined: ({ participantId }) => this.liarCaught(participantId),
    }
  }

  /** The runs' shared fingerprint job, drawn from the pool (an event's first job, say). */
  fingerprintJob(): JobInit {
    const spec: JobSpec<FingerprintJob> = {
      jobId: poolFingerprintJob,
      kind: fingerprintKind.name,
      version: fingerprintKind.version,
      description: { format: fingerprintFormat.version },
    }
    // The seed runs the shared pre-computation ahead of matching: fingerprints get the larger share.
    return { spec, kind: fingerprintKind as AnyJobKind, class: 'batch', weight: 4, source: this.fingerprints }
  }

  /**
   * Starts feeding `coordinator` (which runs `fingerprintJob()`): takes back the leases of an earlier
   * opening of the pool (a coordinator that crashed), and loads every run of the workspace.
   */
  async attach(coordinator: Coordinator): Promise<void> {
    this.coordinator = coordinator
    const reclaimed = this.pool.reclaim(this.clock.now())
    if (reclaimed > 0) this.log(`took back ${reclaimed} leases of the coordinator before this one`)
    coordinator.on('frameComplete', this.listeners.complete)
    coordinator.on('frameDropped', this.listeners.dropped)
    coordinator.on('participantQuarantined', this.listeners.quarantined)
    await this.scan()
    // Runs created, and runs extended, while this coordinator serves are picked up as they come.
    const watch = () => {
      this.watching = this.watching
        .then(() => this.scan())
        .catch((error: unknown) =>
          this.log.error(`the workspace could not be read: ${(error as Error).message}`),
        )
        .finally(() => {
          if (this.coordinator !== undefined) this.watcher = this.clock.setTimer(watch, watchMs)
        })
    }
    this.watcher = this.clock.setTimer(watch, watchMs)
  }

  /** Loads every run of the workspace that is new or whose definition changed. */
  private async scan(): Promise<void> {
    const folders = await readdir(join(this.root, 'runs')).catch(() => [] as string[])
    for (const name of folders.sort()) {
      const folder = join(this.root, 'runs', name)
      const changed = await stat(join(folder, 'run.json')).then(
        (info) => info.mtimeMs,
        () => undefined,
      )
      if (changed === undefined) continue
      const known = [...this.runs.values()].find((r) => r.folder === folder)
      if (known !== undefined && known.readAt >= changed) continue
      try {
        await this.load(folder)
      } catch (error) {
        this.log.error(`${folder}: ${(error as Error).message}`)
      }
    }
  }

  /** Stops listening to the coordinator. */
  detach(): void {
    if (this.watcher !== undefined) this.clock.clearTimer(this.watcher)
    this.watcher = undefined
    this.coordinator?.off('frameComplete', this.listeners.complete)
    this.coordinator?.off('frameDropped', this.listeners.dropped)
    this.coordinator?.off('participantQuarantined', this.listeners.quarantined)
    this.coordinator = undefined
  }

  /**
   * Loads a run (new, resumed, or extended): every video's fingerprint task joins the pool (again:
   * the same ids add nothing), the reference list is restored from `list.json`, and what is ready
   * to match gets its match tasks.
   */
  load(folder: string): Promise<void> {
    // One change of a run's lists at a time: loads and recorded rounds go through one chain.
    const loading = this.writing.then(() => this.loadNow(folder))
    this.writing = loading.catch(() => {})
    return loading
  }

  private async loadNow(folder: string): Promise<void> {
    const readAt = Date.now()
    const definition = await loadRun(folder)
    const { run } = definition
    const entries = runEntries(definition)
    const known = this.runs.get(run)
    const loaded: LoadedRun = known ?? {
      definition,
      folder,
      entries,
      urls: new Map(),
      failedVideos: 0,
      readAt,
    }
    loaded.definition = definition
    loaded.entries = entries
    loaded.readAt = readAt
    this.runs.set(run, loaded)
    await mkdir(join(folder, 'fingerprints'), { recursive: true })
    const priority = this.pool.runs().find((r) => r.run === run)?.priority ?? definition.priority
    const added = this.pool.add(
      entries.map((entry) => ({
        id: taskIds.fingerprint(run, entry.index),
        run,
        kind: fingerprintTask,
        priority,
        inputs: [entry.path],
        payload: JSON.stringify({ run, entry: entry.index }),
      })),
      this.clock.now(),
    )
    if (added > 0) this.coordinator?.roundsAvailable()
    loaded.failedVideos = definition.failed.length
    for (const entry of entries) {
      const state = this.pool.stateOf(taskIds.fingerprint(run, entry.index))
      if (state === 'failed') loaded.failedVideos++
      if (state !== 'done' || loaded.urls.has(entry.index)) continue
      const path = this.fingerprintPath(loaded, entry.index)
      if (existsSync(path)) loaded.urls.set(entry.index, this.publish(pathToFileURL(path).href))
      else {
        // Done in the pool but its file is gone (the folder was cleaned): it cannot be matched.
        this.log(`run ${run}: the fingerprints of ${entry.path} are missing; it is left out`)
        loaded.failedVideos++
      }
    }
    if (known === undefined) {
      // Resumed: the list as it was, so the shards of tasks in the pool mean what they meant.
      const saved = await loadList(folder)
      if (saved !== undefined) await this.publishList(loaded, saved)
    }
    await this.referencesSettled(loaded)
    // Every user video fingerprinted has its match tasks (added again: the same ids add nothing).
    if (loaded.list !== undefined)
      this.addMatchTasks(
        loaded,
        entries.filter((e) => e.queryId !== undefined && loaded.urls.has(e.index)),
      )
    this.notify()
  }

  /** Every run's progress, in the pool's order. */
  progress(): RunProgress[] {
    return this.pool.runs().flatMap(({ run, priority }) => {
      const loaded = this.runs.get(run)
      if (loaded === undefined) return []
      const fingerprints = this.countsOf(run, fingerprintTask)
      const matches = this.countsOf(run, matchTask)
      const open = (c: PoolCounts) => c.waiting + c.queued + c.leased
      return [
        {
          run,
          priority,
          fingerprints,
          matches,
          matching: loaded.list !== undefined,
          finished: loaded.list !== undefined && open(fingerprints) === 0 && open(matches) === 0,
          failedVideos: loaded.failedVideos,
        },
      ]
    })
  }

  /** The participants given a run's slices since this coordinator started, most recent first. */
  workers(run: string): RunWorker[] {
    return [...(this.workersByRun.get(run)?.values() ?? [])].sort((a, b) => b.lastAt - a.lastAt)
  }

  /** Resolves once every loaded run has finished (or `signal` aborts). */
  async finished(signal?: AbortSignal): Promise<void> {
    for (;;) {
      await this.writing
      if (this.progress().every((p) => p.finished)) return
      signal?.throwIfAborted()
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.changed.delete(wake)
          signal?.removeEventListener('abort', wake)
          resolve()
        }
        this.changed.add(wake)
        signal?.addEventListener('abort', wake, { once: true })
      })
    }
  }

  /** Changes a run's priority: its tasks not yet granted go ahead of (or behind) other runs'. */
  setPriority(run: string, priority: number): number {
    const changed = this.pool.setPriority(run, priority)
    this.notify()
    return changed
  }

  private drawFingerprint(participantId: string): { frameIndex: number; input: unknown } | undefined {
    const grant = this.pool.grant({ worker: participantId, kinds: [fingerprintTask], now: this.clock.now() })
    if (grant === undefined) return undefined
    const { run, entry } = JSON.parse(grant.task.payload) as { run: string; entry: number }
    const loaded = this.runs.get(run)
    const file = loaded?.entries[entry]
    if (loaded === undefined || file === undefined) {
      this.pool.fail(grant.lease, `run ${run} is not loaded here`, this.clock.now())
      return undefined
    }
    const frameIndex = this.nextRound++
    this.drawn.set(`${poolFingerprintJob}#${frameIndex}`, {
      run,
      task: grant.task.id,
      lease: grant.lease,
      entry,
    })
    const input: VideoInput = {
      index: frameIndex,
      videoId: file.queryId ?? file.refId!,
      videoUrl: this.publish(pathToFileURL(file.path).href),
      duration: file.duration,
      role: file.queryId !== undefined ? 'query' : 'reference',
    }
    return { frameIndex, input }
  }

  private drawMatch(
    participantId: string,
    holds: readonly string[],
  ): { jobId: string; frameIndex: number; input: unknown } | undefined {
    const now = this.clock.now()
    const grant = this.pool.grant({ worker: participantId, kinds: [matchTask], now, holds })
    if (grant === undefined) return undefined
    const { run, entry, shard } = JSON.parse(grant.task.payload) as {
      run: string
      entry: number
      shard: number
    }
    const loaded = this.runs.get(run)
    const range = loaded?.list?.shards[shard]
    const url = loaded?.urls.get(entry)
    if (loaded === undefined || range === undefined || url === undefined) {
      this.pool.fail(grant.lease, `run ${run} is not ready here`, now)
      return undefined
    }
    const shardId = taskIds.shard(run, shard)
    let workers = this.workersByRun.get(run)
    if (workers === undefined) this.workersByRun.set(run, (workers = new Map<string, RunWorker>()))
    const worker = workers.get(participantId) ?? {
      participant: participantId,
      slices: 0,
      held: 0,
      lastAt: now,
    }
    worker.slices++
    if (holds.includes(shardId)) worker.held++
    worker.lastAt = now
    workers.set(participantId, worker)
    // The newest list holds every shard at the place it always had.
    const jobId = runMatchJob(run, loaded.list!.version)
    const frameIndex = this.nextRound++
    this.drawn.set(`${jobId}#${frameIndex}`, { run, task: grant.task.id, lease: grant.lease, entry })
    const file = loaded.entries[entry]!
    const input: QueryInput = {
      index: frameIndex,
      videoId: file.queryId!,
      fingerprintsUrl: url,
      duration: file.duration,
      refs: range,
      shard: shardId,
    }
    return { jobId, frameIndex, input }
  }

  private refuse(jobId: string, frameIndex: number, reason: string): void {
    const round = this.drawn.get(`${jobId}#${frameIndex}`)
    if (round === undefined) return
    this.drawn.delete(`${jobId}#${frameIndex}`)
    if (this.pool.fail(round.lease, reason, this.clock.now())) this.coordinator?.roundsAvailable()
    this.notify()
  }

  private roundComplete(outcome: unknown, report: FrameReport): void {
    const key = `${report.jobId}#${report.frameIndex}`
    const round = this.drawn.get(key)
    if (round === undefined) return
    this.drawn.delete(key)
    const loaded = this.runs.get(round.run)
    if (loaded === undefined) return
    const settle =
      report.jobId === poolFingerprintJob
        ? () => this.fingerprinted(loaded, round, outcome as VideoFingerprintOutcome)
        : () => Promise.resolve(this.matched(loaded, round, outcome as QueryMatches, report.answerable))
    this.writing = this.writing
      .then(settle)
      .catch((error: unknown) => {
        // The task stays leased: the pool's timer gives it to someone else.
        this.log.error(`run ${round.run}: ${round.task} could not be recorded: ${(error as Error).message}`)
      })
      .finally(() => this.notify())
  }

  private roundDropped(report: FrameReport): void {
    const key = `${report.jobId}#${report.frameIndex}`
    const round = this.drawn.get(key)
    if (round === undefined) return
    this.drawn.delete(key)
    if (this.pool.fail(round.lease, report.error ?? 'dropped', this.clock.now()))
      this.coordinator?.roundsAvailable()
    const loaded = this.runs.get(round.run)
    if (loaded !== undefined && this.pool.stateOf(round.task) === 'failed') {
      loaded.failedVideos += report.jobId === poolFingerprintJob ? 1 : 0
      this.log(`run ${round.run}: ${round.task} failed for good: ${report.error ?? 'dropped'}`)
      if (report.jobId === poolFingerprintJob)
        this.writing = this.writing.then(() => this.referencesSettled(loaded)).catch(() => {})
    }
    this.notify()
  }

  /** A video's fingerprints: written to the run's folder first, then the task is done. */
  private async fingerprinted(
    loaded: LoadedRun,
    round: DrawnRound,
    outcome: VideoFingerprintOutcome,
  ): Promise<void> {
    const path = this.fingerprintPath(loaded, round.entry)
    await writeFile(`${path}.tmp`, encodeFingerprints(outcome.file))
    await rename(`${path}.tmp`, path)
    if (!this.pool.complete(round.lease, this.clock.now())) return
    loaded.urls.set(round.entry, this.publish(pathToFileURL(path).href))
    const entry = loaded.entries[round.entry]!
    if (entry.refId !== undefined) await this.referencesSettled(loaded)
    if (entry.queryId !== undefined && loaded.list !== undefined) this.addMatchTasks(loaded, [entry])
  }

  /**
   * A participant was caught lying (README, "Trust"): every slice whose matches it is answerable
   * for is matched again, its matches withdrawn from the results store meanwhile. Through the
   * chain of writes, after any completion already on its way.
   */
  private liarCaught(participantId: string): void {
    this.writing = this.writing
      .then(() => {
        const reopened = this.pool.reopen(participantId, this.clock.now())
        if (reopened.length === 0) return
        this.log(`${reopened.length} slices matched again: ${participantId} was answerable for them`)
        this.coordinator?.roundsAvailable()
      })
      .catch((error: unknown) =>
        this.log.error(`slices of ${participantId} could not be reopened: ${(error as Error).message}`),
      )
      .finally(() => this.notify())
  }

  /**
   * A slice's matches, by reference id, into the outbox with the task's completion, with the
   * identities answerable for them (a slice is matched again if one is caught later).
   */
  private matched(
    loaded: LoadedRun,
    round: DrawnRound,
    outcome: QueryMatches,
    answerable: readonly string[] = [],
  ): void {
    const { list, entries, definition } = loaded
    const query = entries[round.entry]!
    const matches: Match[] = []
    for (const m of outcome.matches) {
      const refEntry = list?.order[m.ref]
      if (refEntry === undefined) continue
      if (definition.skipSelf && refEntry === round.entry) continue
      matches.push({
        ugcId: query.queryId!,
        refId: entries[refEntry]!.refId!,
        ugcStart: m.ugcStart,
        ugcEnd: m.ugcEnd,
        refStart: m.refStart,
        refEnd: m.refEnd,
        score: m.score,
      })
    }
    const output: MatchOutput = { matches }
    this.pool.complete(round.lease, this.clock.now(), JSON.stringify(output), answerable)
  }

  /**
   * Once every reference of a run is fingerprinted or failed for good: its reference list (shards of
   * `shardSize`, contiguous), its match job, and the match tasks of every user video fingerprinted.
   * References added later (an extension) are appended as new shards in a new version of the list,
   * with a job of its own; the shards before them stay as they were.
   */
  private async referencesSettled(loaded: LoadedRun): Promise<void> {
    const { run, shardSize } = loaded.definition
    const refs = loaded.entries.filter((e) => e.refId !== undefined)
    const settled = (e: RunEntry) => {
      const state = this.pool.stateOf(taskIds.fingerprint(run, e.index))
      return state === 'failed' || state === 'done'
    }
    if (!refs.every(settled)) return
    const listed = new Set(loaded.list?.order ?? [])
    const added = refs.filter((e) => loaded.urls.has(e.index) && !listed.has(e.index)).map((e) => e.index)
    if (loaded.list !== undefined && added.length === 0) return
    const list = extendList(loaded.list, added, shardSize)
    if (list.order.length === 0) {
      this.log(`run ${run}: no reference could be fingerprinted; nothing to match`)
      loaded.list = list
      return
    }
    // Kept before any task names its shards: a restart restores exactly this list.
    await saveList(loaded.folder, list)
    const before = loaded.list?.shards.length ?? 0
    await this.publishList(loaded, list)
    this.addMatchTasks(
      loaded,
      loaded.entries.filter((e) => e.queryId !== undefined && loaded.urls.has(e.index)),
      list.shards.map((_, i) => i).slice(before),
    )
  }

  /**
   * Writes the list's references (with the URLs of this opening), adds its match job, and only then
   * makes it the run's list: a slice drawn meanwhile names the job of the list before, which exists
   * (drawn under a version whose job is not added yet, it would be refused and count as an attempt).
   */
  private async publishList(loaded: LoadedRun, list: ReferenceShards): Promise<void> {
    const { run } = loaded.definition
    const jobId = runMatchJob(run, list.version)
    const coordinator = this.coordinator
    if (list.order.length > 0 && coordinator === undefined)
      throw new CrowdmeshError('the match pool is not attached to a coordinator')
    if (coordinator === undefined || list.order.length === 0 || coordinator.kindOf(jobId) !== undefined) {
      loaded.list = list
      return
    }
    const references: ReferenceList = {
      references: list.order.map((index) => ({
        id: loaded.entries[index]!.refId!,
        url: loaded.urls.get(index)!,
        duration: loaded.entries[index]!.duration,
      })),
    }
    const path = join(loaded.folder, `references-v${list.version}.json`)
    await writeFile(path, JSON.stringify(references))
    const description: MatchJob = {
      format: fingerprintFormat.version,
      referencesUrl: this.publish(pathToFileURL(path).href),
      references: list.order.length,
      rule: loaded.definition.rule,
      layout: loaded.definition.layout,
    }
    coordinator.addJob({
      spec: { jobId, kind: matchKind.name, version: matchKind.version, description },
      kind: matchKind as AnyJobKind,
      class: 'batch',
      weight: 1,
      source: this.matchRounds,
    })
    loaded.list = list
  }

  /**
   * User videos' match tasks, one per shard (`shards`: these only): after its fingerprints, near the
   * shard's other tasks, at the run's priority.
   */
  private addMatchTasks(loaded: LoadedRun, queries: readonly RunEntry[], shards?: readonly number[]): void {
    const { run } = loaded.definition
    const priority = this.pool.runs().find((r) => r.run === run)?.priority ?? loaded.definition.priority
    const tasks: PoolTaskInit[] = []
    for (const query of queries)
      for (const shard of shards ?? loaded.list!.shards.map((_, i) => i))
        tasks.push({
          id: taskIds.match(run, query.index, shard),
          run,
          kind: matchTask,
          priority,
          after: [taskIds.fingerprint(run, query.index)],
          inputs: [taskIds.shard(run, shard), taskIds.fingerprint(run, query.index)],
          affinity: taskIds.shard(run, shard),
          payload: JSON.stringify({ run, entry: query.index, shard }),
        })
    if (tasks.length > 0 && this.pool.add(tasks, this.clock.now()) > 0) this.coordinator?.roundsAvailable()
  }

  private fingerprintPath(loaded: LoadedRun, entry: number): string {
    return join(loaded.folder, 'fingerprints', `${entry}.cmfp`)
  }

  private countsOf(run: string, kind: string): PoolCounts {
    return this.pool.counts(run, kind)
  }

  private notify(): void {
    for (const wake of [...this.changed]) wake()
  }
}

/** Rounds of one pool kind, drawn for the participant asking. */
class PoolSource implements RoundSource {
  private readonly pool: TaskPool
  private readonly kind: string
  readonly draw: RoundSource['draw']
  readonly refused: RoundSource['refused']

  constructor(pool: TaskPool, kind: string, draw: RoundSource['draw'], refused: RoundSource['refused']) {
    this.pool = pool
    this.kind = kind
    this.draw = draw
    this.refused = refused
  }

  get ready(): boolean {
    return this.pool.hasQueued([this.kind])
  }
}
