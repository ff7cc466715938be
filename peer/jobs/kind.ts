import type { z } from 'zod'
import type { FrameSource } from '../participant/frame-source.ts'

/*
 * The job plug-in seam. A job kind (vertex colouring, image filtering, video matching, …) is one
 * object of type `JobKind`: the coordinator, the work protocol, the participant loop and the
 * simulator handle every kind through it, and nothing outside a kind's folder (`peer/jobs/<kind>/`)
 * knows what its tasks compute. See docs/writing-a-job.md.
 *
 * Vocabulary. A *job* is one piece of work an event runs (a show's live 3D result, a batch of
 * images to filter); its *kind* says how. A job's work comes in *rounds* (a moment of a show, one
 * image, a slice of a match run): the coordinator opens a round when its first input arrives, cuts
 * it into *tasks* on demand at each participant's size, counts every task's result once in the
 * round's *sink*, and publishes the sink's *outcome*. Sizes, speeds and costs are in the kind's
 * *units* (a vertex seen from one camera; an output pixel): the scheduler only adds and divides them.
 */

/** What every task carries whatever its kind: the core routes and indexes by these alone. */
export interface TaskBase {
  readonly jobId: string
  /** The round (a show's frame index, an image's index): rounds complete in this order. */
  readonly frameIndex: number
}

/**
 * Where a task's units lie in its round: `count` units from `first` on lane `lane`. The tasks of a
 * round tile its lanes without overlap; a generic ledger (the simulator's) counts units by span.
 */
export interface TaskSpan {
  readonly lane: number
  readonly first: number
  readonly count: number
}

/** A job as an event announces it: its kind and version, and the kind's description of it. */
export interface JobSpec<D = unknown> {
  readonly jobId: string
  readonly kind: string
  readonly version: number
  readonly description: D
}

/**
 * Live work (the frames of a show) is latency-bound and always goes first; batch work (a match
 * run, a folder of images) is throughput-bound and uses the capacity live work leaves idle.
 */
export type PriorityClass = 'live' | 'batch'

/** How a job shares the crowd: its class, and its weight among the jobs of that class. */
export interface JobShare {
  readonly class: PriorityClass
  /** Relative share among jobs of the same class (default 1). */
  readonly weight: number
}

/**
 * One round's work, cut on demand. The core keeps the redo list, the keys of counted tasks and the
 * order of rounds; the plan only hands out new tasks, in the order they are best computed.
 */
export interface RoundPlan<T extends TaskBase> {
  readonly frameIndex: number
  /** Units of the round with every input in (the work's size, for progress and admission). */
  readonly totalUnits: number
  /** Every input the round needs has arrived (no more tasks will appear). */
  readonly inputsComplete: boolean
  /** Units not yet cut into a task. */
  unitsLeft(): number
  /** The next new task, of at most `maxUnits` units (at least one), or undefined when all are cut. */
  cut(maxUnits: number): T | undefined
  /**
   * One more input of the round (a camera's frame of a moment). False when the round already has it
   * (the caller logs and ignores it). Throws a `CrowdmeshError` for an input the job cannot take.
   */
  addInput(input: unknown): boolean
}

/** Whether a result counted or repeated one that already had. */
export type AddOutcome = 'added' | 'duplicate'

/**
 * Where a round's task results go, in any order. `add` counts each task once: it throws a
 * `CrowdmeshError` (and changes nothing) for a result that overlaps another, lies outside the round
 * or holds impossible values, and says `duplicate` for a copy of one already counted.
 */
export interface RoundSink<T extends TaskBase, R, O> {
  add(task: T, result: R): AddOutcome
  /**
   * Takes back a counted task's result (its participant was caught lying): the round is no longer
   * complete until the task is counted again. A task not counted is ignored.
   */
  withdraw(task: T): void
  readonly complete: boolean
  /**
   * Called once, when complete: the round's outcome. May throw; the round is then dropped. A promise
   * decides off the coordinator's event loop (a kind whose decision takes long: the vertex kind's
   * `FrameDecider`): the round's tasks end at once, its outcome comes when the promise settles,
   * and a rejected one drops the round. A job's rounds are decided one at a time, in round order
   * (the coordinator calls a waiting round's `finish` when its turn comes). The sink is not used
   * again after this call, so it may hand its buffers over (transfer them to a thread).
   */
  finish(): O | Promise<O>
}

/** What a worker may use: the same in Node and in a browser (the participant builds it). */
export interface WorkerEnv {
  /** Fetches and decodes images by URL (file:, http(s):, data:), keyed or not, cached. */
  readonly frames: FrameSource
  /** Fingerprints videos by URL (Node: ffmpeg). Absent where the participant cannot decode video. */
  readonly videos?: VideoFingerprinter
  /** Fetches bytes by URL (file:, http(s):), bounded, cached. Absent where not offered. */
  readonly files?: FileSource
  /**
   * The participant's snapshot cache (a match run's reference shards kept between tasks, on disk in
   * Node). Absent: tasks fetch their inputs through `files` alone.
   */
  readonly snapshots?: SnapshotStore
}

/** An input file of a task, as a snapshot cache keeps it. */
export interface SnapshotInput {
  /** The class of space it defines (`reference`, `ugc`): the similarity function's classes. */
  readonly class: string
  /** Its identity (its remote location: a changed location is a changed file). */
  readonly location: string
  readonly url: string
  /** A name for it in its folder. */
  readonly name: string
}

/** A snapshot folder made ready for a task: its files, read by location. */
export interface SnapshotFolder {
  read(location: string, maxBytes: number): Promise<Uint8Array>
  /** Bytes copied to make it ready (0 when it held every file). */
  readonly copiedBytes: number
}

/** A participant's snapshot cache (see `peer/pool/snapshot-cache.ts`). */
export interface SnapshotStore {
  /** A folder holding `files`, picked by the similarity function, labelled with the task's shard. */
  prepare(files: readonly SnapshotInput[], label: string, signal?: AbortSignal): Promise<SnapshotFolder>
  /** The shards its folders hold (what the participant states when it asks for work). */
  labels(): string[]
}

/** What a participant's environment may offer beyond `frames`; a kind states what it `needs`. */
export type WorkerCapability = 'videos' | 'files'

/** Fingerprints a video's segments (see `peer/jobs/match/`). */
export interface VideoFingerprinter {
  fingerprint(
    url: string,
    range: {
      first: number
      count: number
      phases: readonly number[]
      duration: number
      signal?: AbortSignal
    },
  ): Promise<{
    duration: number
    fingerprints: { segment: number; phase: number; bits: Uint8Array; still: boolean }[]
  }>
}

/** Fetches bytes by URL, at most `maxBytes` (a `CrowdmeshError` past it). */
export interface FileSource {
  bytes(url: string, maxBytes: number, signal?: AbortSignal): Promise<Uint8Array>
}

/** Computes tasks of one kind. */
export interface TaskWorker<D, T extends TaskBase, R> {
  /** Which backend computes (`cpu` or `webgl1`/`webgl2`), for statistics. */
  readonly backend: string
  run(job: JobSpec<D>, task: T, signal?: AbortSignal): Promise<R>
  /** The shared inputs it holds (`Capability.holds`): a match worker's reference shards. */
  holds?(): readonly string[]
  /**
   * Fetches what `task` will read, while another task computes (the next lease arrives early): the
   * copying for the next task overlaps the current one's computing. Best effort: a failure here is
   * met again, and reported, when the task runs.
   */
  prefetch?(job: JobSpec<D>, task: T, signal?: AbortSignal): Promise<void>
  /** Releases what it holds (a WebGL context). */
  dispose?(): void
}

/** What a check found: the result agrees on every unit checked, or the first unit it does not. */
export type CheckVerdict =
  { readonly ok: true } | { readonly ok: false; readonly unit: number; readonly reason: string }

/**
 * The coordinator's own computation of a job's tasks, a few units at a time: the root of trust. Only
 * a check proves a lie (two participants disagreeing prove nothing about which of them lied).
 */
export interface ResultChecker<T extends TaskBase, R> {
  /**
   * Recomputes units `units` (offsets from 0 to the task's units, in its span's order) of `task`
   * and compares them with `result`'s within the kind's tolerance. May throw (an input it cannot
   * fetch): the result is then replicated instead, and nobody is accused.
   */
  check(
    task: T,
    result: R,
    units: readonly number[],
    signal?: AbortSignal,
  ): CheckVerdict | Promise<CheckVerdict>
  dispose?(): void
}

/** How a job's results are validated (JobInit.validator): compared, and checked where possible. */
export interface ResultValidator<T extends TaskBase = TaskBase, R = unknown> {
  /** Whether two results of `task` agree within the kind's tolerance (vertex: every channel ±1). */
  agree(task: T, a: R, b: R): boolean
  /** Units where two results of `task` disagree, at most `max` (where a check looks first). */
  disputed(task: T, a: R, b: R, max: number): number[]
  /** The coordinator's checker; absent: results are replicated and decided by a quorum. */
  readonly checker?: ResultChecker<T, R>
  /**
   * Units a check so cheap that every result of a trusted identity gets one (vertex: 32 threads
   * beside blocks of thousands; matching: 0, the references a result reports and no others);
   * absent: trusted results are checked at `trustedCheckShare` only.
   */
  readonly cheapCheckUnits?: number
  /** Units a full check samples (default: the policy's `sampleUnits`). */
  readonly fullCheckUnits?: number
  /**
   * A wrong result is wrong on few units (a hidden match is one reference in thousands), so a sample
   * rarely meets the lie: an untrusted identity's full check is followed by a replica on another
   * identity (a trusted one meets ringers, `findings`).
   */
  readonly sparseLies?: boolean
  /**
   * Whether a result reports something (a sparse kind: a match). A trusted identity's result that
   * does is replicated now and then all the same (`ValidationPolicy.ringerShare`): its task, with a
   * finding the check confirmed, is a ringer for whoever computes the replica, and one that hides
   * every finding disagrees with it.
   */
  findings?(task: T, result: R): boolean
}

/** How a kind validates its results: what a coordinator's `ResultValidator` is built from. */
export interface KindValidation<D, T extends TaskBase, R> {
  agree(task: T, a: R, b: R): boolean
  disputed(task: T, a: R, b: R, max: number): number[]
  /** The coordinator's checker of a job, over the environment a worker would have (undefined: it lacks what the checker reads). */
  checker?(job: JobSpec<D>, env: WorkerEnv): ResultChecker<T, R> | undefined
  readonly cheapCheckUnits?: number
  readonly fullCheckUnits?: number
  readonly sparseLies?: boolean
  findings?(task: T, result: R): boolean
}

/** A kind's cost model: what the scheduler's sizer and the simulator know of a unit. */
export interface UnitCost {
  /** CPU time of one unit relative to one vertex seen from one camera (the reference unit). */
  readonly relativeCost: number
  /** Bytes a participant fetches per unit (beyond inputs it caches). */
  readonly inputBytesPerUnit: number
  /** Bytes of result per unit (an estimate where results vary in length). */
  readonly resultBytesPerUnit: number
  /** Smallest and largest task, and the first (calibration) task of a participant, units. */
  readonly minTaskUnits: number
  readonly maxTaskUnits: number
  readonly calibrationUnits: number
}

/**
 * A job kind. `D` is its job description, `T` its task, `R` a task's result, `O` a round's outcome,
 * `S` what is gossiped of an outcome (decoded).
 */
export interface JobKind<D, T extends TaskBase, R, O, S = unknown> {
  /** Registry name, e.g. 'vertex'. */
  readonly name: string
  /** Wire version: a participant states the versions it runs; a change of any schema bumps it. */
  readonly version: number
  /** Schemas of what crosses the wire: the job description, a task (a lease's `block`). */
  readonly schemas: {
    readonly job: z.ZodType<D>
    readonly task: z.ZodType<T>
  }
  readonly limits: {
    /** Largest task a lease may carry, units (the task schema enforces it). */
    readonly maxTaskUnits: number
    /** Largest encoded result of this task, bytes: longer ones are refused before decoding. */
    maxResultBytes(task: T): number
  }
  /** Opens a round of `job` at index `frameIndex`; `level` > 0 asks for a coarser round (see `levels`). */
  openRound(job: JobSpec<D>, frameIndex: number, level: number): RoundPlan<T>
  /** A task's size in units: the scheduler's hot path, so a field read. */
  taskUnits(task: T): number
  /**
   * A stable key, unique among the job's tasks of every round (so it names the round): a task counts
   * once however many copies of its result return, and copies of it are found by it.
   */
  taskKey(task: T): string
  taskSpan(task: T): TaskSpan
  /** Optional coarser rounds for live work behind schedule (vertex: each grid axis halved per level). */
  readonly levels?: {
    readonly maxLevel: number
    unitsAt(job: JobSpec<D>, level: number): number
  }
  readonly result: {
    encode(result: R): Uint8Array
    /** Decodes a result for `task`; throws `InvalidMessageError` naming the field at fault. */
    decode(bytes: Uint8Array, task: T): R
    /**
     * Whether a result describes this task (its identity fields), whoever built it: in-process
     * transports hand results over as objects, never through `decode`.
     */
    matches(task: T, result: R): boolean
  }
  /** A round's sink. */
  openSink(job: JobSpec<D>, plan: RoundPlan<T>, level: number): RoundSink<T, R, O>
  readonly outcome: {
    /** What is gossiped of an outcome, at most `maxBytes` long (thinned if need be). */
    encode(outcome: O, job: JobSpec<D>, maxBytes: number): Uint8Array
    /** Reads a gossiped outcome; throws for anything malformed (it comes from strangers). */
    decode(bytes: Uint8Array): S
    /** For logs and counters: the round it is of, and how many items it holds. */
    summary(snapshot: S): { frameIndex: number; items: number }
    /**
     * Optional: a small picture of an outcome for a participant's screen (an image job's thumbnail).
     * A kind without one is shown by its summary; a kind with a view of its own (the vertex job's 3D
     * viewer) is drawn by the app that knows it.
     */
    picture?(snapshot: S): OutcomePicture
  }
  /**
   * What its workers need of the participant's environment beyond `frames` (`WorkerEnv`): a
   * participant without it does not state the kind, and is never leased its tasks.
   */
  readonly needs?: readonly WorkerCapability[]
  /** Its workers: a CPU one (Node and browser) and optionally a WebGL one, equal within `reference.tolerance`. */
  readonly workers: {
    cpu(env: WorkerEnv): Promise<TaskWorker<D, T, R>>
    webgl?(env: WorkerEnv & { canvas?: HTMLCanvasElement | OffscreenCanvas }): Promise<TaskWorker<D, T, R>>
  }
  readonly cost: UnitCost
  /** How its results are validated against lying or broken participants (README, "Trust"). */
  readonly validation?: KindValidation<D, T, R>
  /** For the simulator: a job of about `unitsPerRound` units a round, and a round's inputs. */
  readonly simulation: {
    job(jobId: string, unitsPerRound: number): D
    inputs(job: JobSpec<D>, frameIndex: number, unitsPerRound: number): unknown[]
    /** A result of the right shape for `task`, contents irrelevant. */
    fakeResult(task: T): R
  }
}

/** An outcome drawn as an image: `width`×`height` pixels of RGBA, row-major, opaque or not. */
export interface OutcomePicture {
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
}

/** Any kind, as the core holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobKind = JobKind<any, TaskBase, any, any, any>
