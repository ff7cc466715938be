import type { AnyJobKind, JobSpec, TaskBase, TaskWorker, WorkerCapability, WorkerEnv } from '../jobs/kind.ts'
import { jobKinds } from '../jobs/registry.ts'
import { InvalidMessageError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'
import type { FrameSource } from './frame-source.ts'

/** A worker of any kind, as the participant loop holds it. */
export type AnyTaskWorker = TaskWorker<unknown, TaskBase, unknown>

/** Makes the worker of a kind (the CPU one in Node; WebGL where a browser has a usable GPU). */
export type WorkerFactory = (kind: AnyJobKind) => Promise<AnyTaskWorker>

/** Every kind's CPU worker over one frame source and what else the environment offers (Node participants, participant threads). */
export function cpuWorkers(frames: FrameSource, more: Omit<WorkerEnv, 'frames'> = {}): WorkerFactory {
  return (kind) => kind.workers.cpu({ frames, ...more }) as Promise<AnyTaskWorker>
}

/** A job this participant can run, with its kind. */
export interface KnownJob {
  readonly spec: JobSpec
  readonly kind: AnyJobKind
}

/**
 * The event's jobs as a participant knows them, and its workers. It states every kind it has
 * (`tags`), but loads a kind's worker (its code, its WebGL programs) only when a task of that kind
 * first arrives, and keeps it for the next. A job announced with a kind (or version) it lacks is
 * noted and never leased to it; a task is checked against its job's kind before it runs.
 */
export class JobDirectory {
  private readonly kinds: ReadonlyMap<string, AnyJobKind>
  private readonly capabilities: ReadonlySet<WorkerCapability>
  private readonly makeWorker: WorkerFactory
  private readonly known = new Map<string, KnownJob>()
  private readonly workers = new Map<string, Promise<AnyTaskWorker>>()
  /** Workers made, once ready (what they hold is read synchronously, on every lease request). */
  private readonly ready = new Map<string, AnyTaskWorker>()

  /**
   * @param init.capabilities what its environment offers beyond frames (`WorkerEnv`): a kind that
   *   `needs` more is neither stated nor run (a browser without a video decoder, say)
   */
  constructor(init: {
    workers: WorkerFactory
    kinds?: ReadonlyMap<string, AnyJobKind>
    capabilities?: readonly WorkerCapability[]
  }) {
    this.capabilities = new Set(init.capabilities ?? [])
    this.kinds = new Map(
      [...(init.kinds ?? jobKinds)].filter(([, kind]) =>
        (kind.needs ?? []).every((need) => this.capabilities.has(need)),
      ),
    )
    this.makeWorker = init.workers
  }

  /** What the participant states it runs: `name@version` of every kind it has and can run here. */
  get tags(): string[] {
    return [...this.kinds.values()].map((kind) => `${kind.name}@${kind.version}`)
  }

  /** The jobs it can run, in the order announced. */
  get jobs(): KnownJob[] {
    return [...this.known.values()]
  }

  /** Replaces the jobs with those of a welcome. Returns the ids of those it cannot run. */
  set(specs: readonly JobSpec[]): string[] {
    this.known.clear()
    return specs.filter((spec) => !this.add(spec)).map((spec) => spec.jobId)
  }

  /**
   * A job the coordinator announced. False when this participant lacks its kind or version (it is
   * never leased its tasks); throws `InvalidMessageError` for a description its kind refuses.
   */
  add(spec: JobSpec): boolean {
    const kind = this.kinds.get(spec.kind)
    if (kind === undefined || kind.version !== spec.version) return false
    parseMessage(kind.schemas.job, spec.description)
    this.known.set(spec.jobId, { spec, kind })
    return true
  }

  /** A job ended. */
  remove(jobId: string): void {
    this.known.delete(jobId)
  }

  /** A lease's task, checked against its job's kind; throws `InvalidMessageError` otherwise. */
  task(block: TaskBase): KnownJob & { task: TaskBase } {
    const job = this.known.get(block.jobId)
    if (job === undefined)
      throw new InvalidMessageError('block.jobId', `no job ${block.jobId.slice(0, 128)} here`)
    return { ...job, task: parseMessage(job.kind.schemas.task, block) }
  }

  /** The worker of a kind, made on its first task; a failure to make one is not kept. */
  worker(kind: AnyJobKind): Promise<AnyTaskWorker> {
    const tag = `${kind.name}@${kind.version}`
    let worker = this.workers.get(tag)
    if (worker === undefined) {
      worker = this.makeWorker(kind)
      this.workers.set(tag, worker)
      worker.then(
        (made) => this.ready.set(tag, made),
        () => {
          if (this.workers.get(tag) === worker) this.workers.delete(tag)
        },
      )
    }
    return worker
  }

  /**
   * Starts fetching what a lease's task will read (`TaskWorker.prefetch`), if its kind's worker is
   * made and has a use for it; never throws.
   */
  prefetch(block: TaskBase, signal: AbortSignal): void {
    try {
      const { spec, kind, task } = this.task(block)
      const worker = this.ready.get(`${kind.name}@${kind.version}`)
      worker?.prefetch?.(spec, task, signal).catch(() => {})
    } catch {
      // A task its kind refuses is reported when it runs.
    }
  }

  /** The shared inputs its workers hold (`Capability.holds`), at most 64. */
  holds(): string[] {
    const held: string[] = []
    for (const worker of this.ready.values()) held.push(...(worker.holds?.() ?? []))
    return held.slice(0, 64)
  }

  /** Frees every worker made (WebGL contexts). */
  dispose(): void {
    this.ready.clear()
    for (const worker of this.workers.values()) void worker.then((w) => w.dispose?.()).catch(() => {})
    this.workers.clear()
  }
}
