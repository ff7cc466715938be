import { z } from 'zod'
import { BlockMismatchError, InvalidMessageError, InvalidOptionError } from '../../protocol/errors.ts'
import { jsonBytes, parseJsonBytes, parseMessage, passes } from '../../protocol/schemas.ts'
import type { AddOutcome, JobKind, JobSpec, RoundPlan, RoundSink, TaskSpan } from '../kind.ts'
import { matchDefaults } from './defaults.ts'
import { decodeFingerprints } from './fingerprint-file.ts'
import { fingerprintFormat } from './format.ts'
import { defaultLayout } from './lsh-index.ts'
import { defaultMatchRule, type Match, matchVideo, ReferenceSet } from './matcher.ts'
import { matchValidation } from './match-validation.ts'

/*
 * Matching as a job kind: a round is one UGC video (its fingerprints already computed), a task a
 * slice of the references (the seed's slice of the N × M match space: one query × Y references), a
 * unit one reference video. A result lists the query's matches in its slice, by reference index, so
 * the coordinator can check each lies in the slice leased; the round's outcome is the query's
 * matches against every reference.
 */

const id = z.string().min(1).max(256)
const url = z.string().min(1).max(4096)
const duration = z.number().gt(0).max(matchDefaults.maxVideoSeconds)
/** Most references one match run holds. */
export const maxReferences = 100_000
/** Most matches one task may report (a query against its slice). */
const maxMatchesPerTask = 4096

/** The match run: where its reference list is, how many, and how it matches. */
export const matchJobSchema = z.strictObject({
  format: z.literal(fingerprintFormat.version),
  /** A JSON file `{ references: [{ id, url, duration }] }`: `url` of each reference's fingerprint file. */
  referencesUrl: url,
  references: z.number().int().min(1).max(maxReferences),
  rule: z.strictObject({
    maxHammingBits: z
      .number()
      .int()
      .min(0)
      .max(fingerprintFormat.bytes * 8),
    minRunSegments: z.number().int().min(1).max(3600),
    maxGapSegments: z.number().int().min(0).max(3600),
  }),
  layout: z.strictObject({
    bandBits: z.union([z.literal(8), z.literal(16), z.literal(32)]),
    probeRadius: z.union([z.literal(0), z.literal(1)]),
  }),
})
export type MatchJob = z.infer<typeof matchJobSchema>

/** The reference list a match run's `referencesUrl` serves. */
export const referenceListSchema = z.strictObject({
  references: z.array(z.strictObject({ id, url, duration })).min(1).max(maxReferences),
})
export type ReferenceList = z.infer<typeof referenceListSchema>

/** A shard of references (a match run's slice): what a participant's snapshot cache holds. */
const shard = z.string().min(1).max(128)

/**
 * A round's input: the query video's fingerprints, matched against every reference of the run, or
 * (a pooled run's slice) against the references `refs.first` to `refs.first + refs.count`, which
 * form the shard `shard`.
 */
export const queryInputSchema = z.strictObject({
  index: z.number().int().min(0).max(0xffff_ffff),
  videoId: id,
  fingerprintsUrl: url,
  duration,
  refs: z
    .strictObject({
      first: z.number().int().min(0).max(maxReferences),
      count: z.number().int().min(1).max(maxReferences),
    })
    .optional(),
  shard: shard.optional(),
})
export type QueryInput = z.infer<typeof queryInputSchema>

/** A task: the query against references [firstRef, firstRef + refCount). */
export const matchTaskSchema = z.strictObject({
  jobId: z.string().min(1).max(128),
  frameIndex: z.number().int().min(0).max(0xffff_ffff),
  videoId: id,
  fingerprintsUrl: url,
  duration,
  firstRef: z.number().int().min(0).max(maxReferences),
  refCount: z.number().int().min(1).max(maxReferences),
  /** The shard its references belong to, where the run has shards (its snapshot). */
  shard: shard.optional(),
})
export type MatchTask = z.infer<typeof matchTaskSchema>

const seconds = z.number().min(0).max(matchDefaults.maxVideoSeconds)
/** One match as a task reports it: the reference by its index in the run's list. */
const taskMatchSchema = z.strictObject({
  ref: z.number().int().min(0).max(maxReferences),
  ugcStart: seconds,
  ugcEnd: seconds,
  refStart: z.number().min(-matchDefaults.maxVideoSeconds).max(matchDefaults.maxVideoSeconds),
  refEnd: z
    .number()
    .min(-matchDefaults.maxVideoSeconds)
    .max(2 * matchDefaults.maxVideoSeconds),
  score: z.number().min(-1).max(1),
})
export type TaskMatch = z.infer<typeof taskMatchSchema>
/** A task's result: which task (its identity), and its matches. */
const taskResultSchema = z.strictObject({
  videoId: id,
  firstRef: z.number().int().min(0).max(maxReferences),
  refCount: z.number().int().min(1).max(maxReferences),
  matches: z.array(taskMatchSchema).max(maxMatchesPerTask),
})
export type MatchTaskResult = z.infer<typeof taskResultSchema>

/** A round's outcome: a query's matches against every reference. */
export interface QueryMatches {
  frameIndex: number
  videoId: string
  matches: TaskMatch[]
}

const snapshotSchema = z.strictObject({
  frameIndex: z.number().int().min(0),
  videoId: id,
  matches: z.number().int().min(0),
})
export type MatchSnapshot = z.infer<typeof snapshotSchema>

/** Cuts one query into reference slices. */
export class MatchRoundPlan implements RoundPlan<MatchTask> {
  readonly frameIndex: number
  private readonly job: JobSpec<MatchJob>
  private query: QueryInput | undefined
  private next = 0
  private first = 0
  private total: number

  constructor(job: JobSpec<MatchJob>, frameIndex: number) {
    this.job = job
    this.frameIndex = frameIndex
    this.total = job.description.references
  }

  /** The first reference of the round (0 unless it is a slice of the references). */
  get firstRef(): number {
    return this.first
  }

  get input(): QueryInput | undefined {
    return this.query
  }

  get totalUnits(): number {
    return this.total
  }

  get inputsComplete(): boolean {
    return this.query !== undefined
  }

  unitsLeft(): number {
    return this.query === undefined ? 0 : this.first + this.total - this.next
  }

  addInput(input: unknown): boolean {
    const query = parseMessage(queryInputSchema, input)
    if (query.index !== this.frameIndex)
      throw new InvalidOptionError(`query ${query.videoId} is round ${query.index}, not ${this.frameIndex}`)
    if (this.query !== undefined) return false
    if (query.refs !== undefined) {
      if (query.refs.first + query.refs.count > this.job.description.references)
        throw new InvalidOptionError(
          `references ${query.refs.first}+${query.refs.count} lie past the run's ${this.job.description.references}`,
        )
      this.first = query.refs.first
      this.total = query.refs.count
    }
    this.next = this.first
    this.query = query
    return true
  }

  cut(maxUnits: number): MatchTask | undefined {
    const query = this.query
    if (query === undefined || this.unitsLeft() <= 0) return undefined
    const refCount = Math.max(1, Math.min(Math.floor(maxUnits), this.unitsLeft()))
    const task: MatchTask = {
      jobId: this.job.jobId,
      frameIndex: this.frameIndex,
      videoId: query.videoId,
      fingerprintsUrl: query.fingerprintsUrl,
      duration: query.duration,
      firstRef: this.next,
      refCount,
      ...(query.shard !== undefined && { shard: query.shard }),
    }
    this.next += refCount
    return task
  }
}

/** Collects a query's slices: each counted once, none overlapping, every match inside its slice and the query. */
export class MatchSink implements RoundSink<MatchTask, MatchTaskResult, QueryMatches> {
  private readonly plan: MatchRoundPlan
  private readonly counted = new Map<number, { count: number; matches: TaskMatch[] }>()
  private covered = 0

  constructor(plan: MatchRoundPlan) {
    this.plan = plan
  }

  get complete(): boolean {
    return this.plan.input !== undefined && this.covered === this.plan.totalUnits
  }

  add(task: MatchTask, result: MatchTaskResult): AddOutcome {
    if (this.counted.has(task.firstRef)) return 'duplicate'
    const query = this.plan.input
    if (query === undefined || task.videoId !== query.videoId)
      throw new BlockMismatchError(`a task of another query (${task.videoId.slice(0, 64)})`)
    const first = this.plan.firstRef
    if (task.firstRef < first || task.firstRef + task.refCount > first + this.plan.totalUnits)
      throw new BlockMismatchError(
        `references ${task.firstRef}+${task.refCount} lie outside the round's ${first}+${this.plan.totalUnits}`,
      )
    for (const [first, slice] of this.counted)
      if (task.firstRef < first + slice.count && first < task.firstRef + task.refCount)
        throw new BlockMismatchError(
          `references ${task.firstRef}+${task.refCount} overlap a counted slice from ${first}`,
        )
    checkMatches(task, result)
    this.counted.set(task.firstRef, { count: task.refCount, matches: result.matches })
    this.covered += task.refCount
    return 'added'
  }

  withdraw(task: MatchTask): void {
    const slice = this.counted.get(task.firstRef)
    if (slice === undefined) return
    this.counted.delete(task.firstRef)
    this.covered -= slice.count
  }

  finish(): QueryMatches {
    const query = this.plan.input
    if (query === undefined || !this.complete)
      throw new BlockMismatchError(`round ${this.plan.frameIndex} is not complete: it has no outcome yet`)
    const matches = [...this.counted.entries()]
      .sort((a, b) => a[0] - b[0])
      .flatMap(([, slice]) => slice.matches)
    return { frameIndex: this.plan.frameIndex, videoId: query.videoId, matches }
  }
}

/** A match as a task reports it: its reference by index (a slice's references are named by theirs). */
export function taskMatch(m: Match): TaskMatch {
  return {
    ref: Number(m.refId),
    ugcStart: m.ugcStart,
    ugcEnd: m.ugcEnd,
    refStart: m.refStart,
    refEnd: m.refEnd,
    score: m.score,
  }
}

/** Impossible matches are refused: outside the slice, outside the query, or backwards. */
function checkMatches(task: MatchTask, result: MatchTaskResult): void {
  if (
    result.videoId !== task.videoId ||
    result.firstRef !== task.firstRef ||
    result.refCount !== task.refCount
  )
    throw new InvalidMessageError('(result)', 'the result of another task')
  result.matches.forEach((m, i) => {
    if (m.ref < task.firstRef || m.ref >= task.firstRef + task.refCount)
      throw new InvalidMessageError(`matches[${i}].ref`, `reference ${m.ref} is not in the slice leased`)
    if (!(m.ugcStart < m.ugcEnd) || m.ugcEnd > task.duration + fingerprintFormat.segmentSeconds)
      throw new InvalidMessageError(`matches[${i}]`, 'a range outside the query')
    if (Math.abs(m.refEnd - m.refStart - (m.ugcEnd - m.ugcStart)) > 1e-6)
      throw new InvalidMessageError(`matches[${i}]`, 'the two ranges differ in length')
  })
}

/** Bytes a task's result may take. */
const resultLimit = 64 + maxMatchesPerTask * 160

/** A bounded, cached fetch of the files a match task needs, and the slice last indexed (the seed's snapshot). */
interface SliceCache {
  list?: { url: string; list: ReferenceList }
  slice?: { key: string; references: ReferenceSet; offset: number; shard: string | undefined }
}

/** The match kind. Its CPU worker fetches fingerprint files (`WorkerEnv.files`). */
export const matchKind: JobKind<MatchJob, MatchTask, MatchTaskResult, QueryMatches, MatchSnapshot> = {
  name: 'video-match',
  // 2: a round may be a slice of the references (`QueryInput.refs`), its tasks naming their shard.
  version: 2,
  needs: ['files'],
  schemas: { job: matchJobSchema, task: matchTaskSchema },
  limits: { maxTaskUnits: maxReferences, maxResultBytes: () => resultLimit },
  openRound(job, frameIndex, level) {
    if (level !== 0) throw new InvalidOptionError('matching has no coarser rounds')
    return new MatchRoundPlan(job, frameIndex)
  },
  taskUnits: (task) => task.refCount,
  taskKey: (task) => `${task.jobId}:${task.frameIndex}:${task.firstRef}`,
  taskSpan: (task): TaskSpan => ({ lane: 0, first: task.firstRef, count: task.refCount }),
  result: {
    encode: jsonBytes,
    decode: (bytes) => parseJsonBytes(taskResultSchema, bytes, resultLimit),
    matches: (task, result) => passes(() => checkMatches(task, result)),
  },
  openSink(_job, plan, level) {
    if (level !== 0 || !(plan instanceof MatchRoundPlan))
      throw new InvalidOptionError('a match sink needs the round plan the kind opened')
    return new MatchSink(plan)
  },
  outcome: {
    encode: (outcome) =>
      jsonBytes({
        frameIndex: outcome.frameIndex,
        videoId: outcome.videoId,
        matches: outcome.matches.length,
      }),
    decode: (bytes) => parseJsonBytes(snapshotSchema, bytes, 1024),
    summary: (snapshot) => ({ frameIndex: snapshot.frameIndex, items: snapshot.matches }),
  },
  workers: {
    cpu(env) {
      const files = env.files
      if (files === undefined) return Promise.reject(new InvalidOptionError('no file source here'))
      const cache: SliceCache = {}
      const snapshots = env.snapshots
      return Promise.resolve({
        backend: 'cpu',
        holds: () => snapshots?.labels() ?? (cache.slice?.shard === undefined ? [] : [cache.slice.shard]),
        async prefetch(job, task, signal) {
          // Into the file cache: the snapshot folder (or the task itself) then takes them from memory.
          const bytes = await files.bytes(job.description.referencesUrl, maxListBytes, signal)
          const list = parseJsonBytes(referenceListSchema, bytes, maxListBytes).references
          for (const reference of list.slice(task.firstRef, task.firstRef + task.refCount))
            await files.bytes(reference.url, maxFingerprintBytes, signal)
          await files.bytes(task.fingerprintsUrl, maxFingerprintBytes, signal)
        },
        async run(job, task, signal) {
          const { referencesUrl, rule, layout } = job.description
          if (cache.list?.url !== referencesUrl) {
            const bytes = await files.bytes(referencesUrl, maxListBytes, signal)
            cache.list = {
              url: referencesUrl,
              list: parseJsonBytes(referenceListSchema, bytes, maxListBytes),
            }
          }
          const list = cache.list.list.references
          if (list.length !== job.description.references)
            throw new InvalidMessageError(
              'references',
              `the list holds ${list.length}, the job says ${job.description.references}`,
            )
          // The slice's index is kept for the next query of the same slice (the seed's snapshot).
          const key = `${referencesUrl}#${task.firstRef}+${task.refCount}`
          // A task of a shard reads its files from a snapshot folder (the references it shares with
          // the shard's other tasks stay on disk between them); others through the file cache.
          let read = (url: string) => files.bytes(url, maxFingerprintBytes, signal)
          if (snapshots !== undefined && task.shard !== undefined) {
            const inputs = [
              ...list.slice(task.firstRef, task.firstRef + task.refCount).map((r, i) => ({
                class: 'reference',
                location: r.url,
                url: r.url,
                name: `ref-${task.firstRef + i}.cmfp`,
              })),
              { class: 'ugc', location: task.fingerprintsUrl, url: task.fingerprintsUrl, name: 'query.cmfp' },
            ]
            const folder = await snapshots.prepare(inputs, task.shard, signal)
            read = (url) => folder.read(url, maxFingerprintBytes)
          }
          if (cache.slice?.key !== key) {
            const references = new ReferenceSet(layout)
            for (let r = task.firstRef; r < task.firstRef + task.refCount; r++) {
              const reference = list[r]!
              const file = decodeFingerprints(await read(reference.url))
              references.add({ id: String(r), duration: reference.duration, fingerprints: file.fingerprints })
            }
            cache.slice = { key, references: references.freeze(), offset: task.firstRef, shard: task.shard }
          }
          const query = decodeFingerprints(await read(task.fingerprintsUrl))
          signal?.throwIfAborted()
          const { matches } = matchVideo(
            { id: task.videoId, duration: task.duration, fingerprints: query.fingerprints },
            cache.slice.references,
            rule,
          )
          return {
            videoId: task.videoId,
            firstRef: task.firstRef,
            refCount: task.refCount,
            matches: matches.slice(0, maxMatchesPerTask).map(taskMatch),
          }
        },
      })
    },
  },
  validation: matchValidation,
  cost: {
    // Measured on the shared samples: a 20 s query against one 20 s reference, some 0.4 ms.
    relativeCost: 2_000,
    inputBytesPerUnit: 30 * (8 + fingerprintFormat.bytes),
    resultBytesPerUnit: 8,
    minTaskUnits: 1,
    maxTaskUnits: maxReferences,
    calibrationUnits: 8,
  },
  simulation: {
    job: (_jobId, units) => ({
      format: fingerprintFormat.version,
      referencesUrl: 'data:,',
      references: Math.max(1, Math.min(maxReferences, Math.round(units))),
      rule: { ...defaultMatchRule },
      layout: {
        bandBits: defaultLayout.bandBits,
        probeRadius: defaultLayout.probeRadius === 2 ? 1 : defaultLayout.probeRadius,
      },
    }),
    inputs: (_job, frameIndex) => [
      {
        index: frameIndex,
        videoId: `query-${frameIndex}`,
        fingerprintsUrl: 'data:,',
        duration: 20,
      } satisfies QueryInput,
    ],
    fakeResult: (task) => ({
      videoId: task.videoId,
      firstRef: task.firstRef,
      refCount: task.refCount,
      matches: [],
    }),
  },
}

/** Largest reference list fetched. */
export const maxListBytes = 64 * 1024 * 1024

/** Largest fingerprint file fetched: an hour at every phase. */
export const maxFingerprintBytes = 20 + (3600 + 1) * fingerprintFormat.phases * (8 + fingerprintFormat.bytes)
