import { z } from 'zod'
import { BlockMismatchError, InvalidMessageError, InvalidOptionError } from '../../protocol/errors.ts'
import { jsonBytes, parseJsonBytes, parseMessage, passes } from '../../protocol/schemas.ts'
import type { AddOutcome, JobKind, JobSpec, RoundPlan, RoundSink, TaskSpan } from '../kind.ts'
import { matchDefaults } from './defaults.ts'
import { decodeFingerprints, encodeFingerprints, type FingerprintFile } from './fingerprint-file.ts'
import { allPhases, fingerprintsIn } from './fingerprint.ts'
import { fingerprintFormat } from './format.ts'
import { fingerprintValidation } from './fingerprint-validation.ts'

/*
 * Fingerprinting as a job kind: a round is one video, a task a range of its segments, a unit one
 * segment (all four phases of a query's, phase 0 of a reference's). The seed runs this
 * "pre-computation of shared data" before matching: a match run's queries and references are
 * fingerprinted by the crowd, and each video's fingerprints are the round's outcome.
 */

const id = z.string().min(1).max(256)
const url = z.string().min(1).max(4096)
const duration = z.number().gt(0).max(matchDefaults.maxVideoSeconds)
const maxSegments = Math.ceil(matchDefaults.maxVideoSeconds / fingerprintFormat.segmentSeconds) + 1

/** The job: fingerprints of this format version (nothing else to say: the rounds name the videos). */
export const fingerprintJobSchema = z.strictObject({ format: z.literal(fingerprintFormat.version) })
export type FingerprintJob = z.infer<typeof fingerprintJobSchema>

/** A round's input: the video, its probed duration, and whether it is queried (all phases) or a reference (phase 0). */
export const videoInputSchema = z.strictObject({
  index: z.number().int().min(0).max(0xffff_ffff),
  videoId: id,
  videoUrl: url,
  duration,
  role: z.enum(['query', 'reference']),
})
export type VideoInput = z.infer<typeof videoInputSchema>

/** A task: segments [first, first + count) of a video, at `phases`. */
export const fingerprintTaskSchema = z.strictObject({
  jobId: z.string().min(1).max(128),
  frameIndex: z.number().int().min(0).max(0xffff_ffff),
  videoId: id,
  videoUrl: url,
  duration,
  first: z.number().int().min(0).max(maxSegments),
  count: z.number().int().min(1).max(maxSegments),
  phases: z
    .array(
      z
        .number()
        .int()
        .min(0)
        .max(fingerprintFormat.phases - 1),
    )
    .min(1)
    .max(fingerprintFormat.phases),
})
export type FingerprintTask = z.infer<typeof fingerprintTaskSchema>

/** A round's outcome: one video's fingerprints. */
export interface VideoFingerprintOutcome {
  frameIndex: number
  videoId: string
  role: VideoInput['role']
  file: FingerprintFile
}

/** What is gossiped of it: which video, how many fingerprints (the fingerprints stay with the operator). */
const snapshotSchema = z.strictObject({
  frameIndex: z.number().int().min(0),
  videoId: id,
  fingerprints: z.number().int().min(0),
})
export type FingerprintSnapshot = z.infer<typeof snapshotSchema>

const phasesOf = (role: VideoInput['role']): number[] => (role === 'query' ? [...allPhases] : [0])

/** Segments of a video of `duration` s. */
export const segmentsOf = (seconds: number): number =>
  Math.floor(seconds / fingerprintFormat.segmentSeconds + 0.5)

/** Cuts one video into segment ranges. */
export class FingerprintRoundPlan implements RoundPlan<FingerprintTask> {
  readonly frameIndex: number
  private readonly jobId: string
  private video: VideoInput | undefined
  private next = 0

  constructor(job: JobSpec<FingerprintJob>, frameIndex: number) {
    this.jobId = job.jobId
    this.frameIndex = frameIndex
  }

  get input(): VideoInput | undefined {
    return this.video
  }

  get totalUnits(): number {
    return this.video === undefined ? 0 : segmentsOf(this.video.duration)
  }

  get inputsComplete(): boolean {
    return this.video !== undefined
  }

  unitsLeft(): number {
    return this.totalUnits - this.next
  }

  addInput(input: unknown): boolean {
    const video = parseMessage(videoInputSchema, input)
    if (video.index !== this.frameIndex)
      throw new InvalidOptionError(`video ${video.videoId} is round ${video.index}, not ${this.frameIndex}`)
    if (this.video !== undefined) return false
    this.video = video
    return true
  }

  cut(maxUnits: number): FingerprintTask | undefined {
    const video = this.video
    if (video === undefined || this.unitsLeft() <= 0) return undefined
    const count = Math.max(1, Math.min(Math.floor(maxUnits), this.unitsLeft()))
    const task: FingerprintTask = {
      jobId: this.jobId,
      frameIndex: this.frameIndex,
      videoId: video.videoId,
      videoUrl: video.videoUrl,
      duration: video.duration,
      first: this.next,
      count,
      phases: phasesOf(video.role),
    }
    this.next += count
    return task
  }
}

/** Collects a video's segment ranges; each counted once, none overlapping, every fingerprint the one asked for. */
export class FingerprintSink implements RoundSink<FingerprintTask, FingerprintFile, VideoFingerprintOutcome> {
  private readonly plan: FingerprintRoundPlan
  private readonly counted = new Map<number, FingerprintFile>()
  private segments = 0

  constructor(plan: FingerprintRoundPlan) {
    this.plan = plan
  }

  get complete(): boolean {
    return this.plan.input !== undefined && this.segments === this.plan.totalUnits
  }

  add(task: FingerprintTask, result: FingerprintFile): AddOutcome {
    if (this.counted.has(task.first)) return 'duplicate'
    const video = this.plan.input
    if (video === undefined || task.videoId !== video.videoId || task.duration !== video.duration)
      throw new BlockMismatchError(`a task of another video (${task.videoId.slice(0, 64)})`)
    if (task.first + task.count > this.plan.totalUnits)
      throw new BlockMismatchError(
        `segments ${task.first}+${task.count} lie past the video's ${this.plan.totalUnits}`,
      )
    for (const [first, file] of this.counted) {
      const last = file.fingerprints.at(-1)?.segment ?? first
      if (task.first <= last && first < task.first + task.count)
        throw new BlockMismatchError(
          `segments ${task.first}+${task.count} overlap a counted range from ${first}`,
        )
    }
    checkResult(task, result)
    this.counted.set(task.first, result)
    this.segments += task.count
    return 'added'
  }

  withdraw(task: FingerprintTask): void {
    if (!this.counted.delete(task.first)) return
    this.segments -= task.count
  }

  finish(): VideoFingerprintOutcome {
    const video = this.plan.input
    if (video === undefined || !this.complete)
      throw new BlockMismatchError(`round ${this.plan.frameIndex} is not complete: it has no outcome yet`)
    const fingerprints = [...this.counted.entries()]
      .sort((a, b) => a[0] - b[0])
      .flatMap(([, file]) => file.fingerprints)
    return {
      frameIndex: this.plan.frameIndex,
      videoId: video.videoId,
      role: video.role,
      file: { duration: video.duration, fingerprints },
    }
  }
}

/** A result must hold exactly the task's fingerprints, in order. */
function checkResult(task: FingerprintTask, result: FingerprintFile): void {
  const expected = fingerprintsIn(task.duration, task)
  if (result.fingerprints.length !== expected.length)
    throw new InvalidMessageError(
      'fingerprints',
      `${result.fingerprints.length} fingerprints, not ${expected.length}`,
    )
  expected.forEach((e, i) => {
    const got = result.fingerprints[i]!
    if (got.segment !== e.segment || got.phase !== e.phase)
      throw new InvalidMessageError(
        `[${i}]`,
        `segment ${got.segment} phase ${got.phase}, not ${e.segment}/${e.phase}`,
      )
  })
}

const recordBytes = 8 + fingerprintFormat.bytes

/** The fingerprint kind. Its CPU worker needs a video decoder (`WorkerEnv.videos`). */
export const fingerprintKind: JobKind<
  FingerprintJob,
  FingerprintTask,
  FingerprintFile,
  VideoFingerprintOutcome,
  FingerprintSnapshot
> = {
  name: 'video-fingerprint',
  version: 1,
  needs: ['videos'],
  schemas: { job: fingerprintJobSchema, task: fingerprintTaskSchema },
  limits: {
    maxTaskUnits: maxSegments,
    maxResultBytes: (task) => 20 + task.count * task.phases.length * recordBytes,
  },
  openRound(job, frameIndex, level) {
    if (level !== 0) throw new InvalidOptionError('fingerprinting has no coarser rounds')
    return new FingerprintRoundPlan(job, frameIndex)
  },
  taskUnits: (task) => task.count,
  taskKey: (task) => `${task.jobId}:${task.frameIndex}:${task.first}`,
  taskSpan: (task): TaskSpan => ({ lane: 0, first: task.first, count: task.count }),
  result: {
    encode: encodeFingerprints,
    decode: (bytes) => decodeFingerprints(bytes),
    matches: (task, result) => passes(() => checkResult(task, result)),
  },
  openSink(_job, plan, level) {
    if (level !== 0 || !(plan instanceof FingerprintRoundPlan))
      throw new InvalidOptionError('a fingerprint sink needs the round plan the kind opened')
    return new FingerprintSink(plan)
  },
  outcome: {
    encode: (outcome) =>
      jsonBytes({
        frameIndex: outcome.frameIndex,
        videoId: outcome.videoId,
        fingerprints: outcome.file.fingerprints.length,
      }),
    decode: (bytes) => parseJsonBytes(snapshotSchema, bytes, 1024),
    summary: (snapshot) => ({ frameIndex: snapshot.frameIndex, items: snapshot.fingerprints }),
  },
  validation: fingerprintValidation,
  workers: {
    cpu(env) {
      const videos = env.videos
      if (videos === undefined) return Promise.reject(new InvalidOptionError('no video decoder here'))
      return Promise.resolve({
        backend: 'cpu',
        run: (_job, task, signal) =>
          videos.fingerprint(task.videoUrl, {
            first: task.first,
            count: task.count,
            phases: task.phases,
            duration: task.duration,
            ...(signal !== undefined && { signal }),
          }),
      })
    },
  },
  cost: {
    // Measured: a segment (16 frames decoded, transformed and pooled at four phases) takes about 45 ms
    // on one core, some 225,000 vertex views.
    relativeCost: 225_000,
    inputBytesPerUnit: 100_000,
    resultBytesPerUnit: 4 * recordBytes,
    // A task decodes 4.5 s of video beyond its own segments (the windows at its edges) and starts
    // ffmpeg: short tasks would spend most of their time on that, so a task is at least 30 s of
    // video (a short clip is one task).
    minTaskUnits: 30,
    maxTaskUnits: 600,
    calibrationUnits: 30,
  },
  simulation: {
    job: () => ({ format: fingerprintFormat.version }),
    inputs: (_job, frameIndex, units) => [
      {
        index: frameIndex,
        videoId: `video-${frameIndex}`,
        videoUrl: 'data:,',
        duration: Math.min(matchDefaults.maxVideoSeconds, Math.max(1, Math.round(units))),
        role: 'query',
      } satisfies VideoInput,
    ],
    fakeResult: (task) => ({
      duration: task.duration,
      fingerprints: fingerprintsIn(task.duration, task).map((f) => ({
        ...f,
        still: false,
        bits: new Uint8Array(fingerprintFormat.bytes),
      })),
    }),
  },
}
