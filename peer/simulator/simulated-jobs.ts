import type { CoordinatorInit, JobInit } from '../coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../coordinator/frame-sink.ts'
import type { AnyJobKind, JobSpec, PriorityClass, RoundPlan, TaskBase } from '../jobs/kind.ts'
import { defaultJob, jobKinds } from '../jobs/registry.ts'
import { InvalidOptionError, UnknownJobKindError } from '../protocol/errors.ts'
import { resultLies, simulatedValidator, taskHash, truthAt, wrongAt } from './adversaries.ts'
import type { CrowdProfile } from './profile.ts'
import type { SimulatedJob, SimulationInit } from './simulation-types.ts'

/*
 * The jobs of a simulated event: what each one is (its kind, spec, class and round size), when its
 * rounds arrive, and what the simulation counts of it. The crowd and the event loop are in
 * `simulation.ts`; nothing here knows what a kind's tasks compute.
 */

/** Share of the crowd's nominal capacity an automatic grid (or live round size) keeps busy. */
export const autoGridLoad = 0.5

/** A queued batch job's automatic round: what the whole crowd computes in this long at its nominal capacity, s. */
export const autoBatchRoundSeconds = 10

/** Identities a simulated person's own join link holds (a caught rejoiner comes back at most 3 times). */
export const personalLinkIdentities = 4

/** Rounds a topped-up batch job keeps open at least. */
const minOpenRounds = 2

/** Most rounds one top-up adds (a kind whose rounds come out far smaller than asked cannot loop). */
export const maxRoundsPerTopUp = 64

/** A job of the simulation as it runs: what it is, when its rounds arrive, and its counters. */
export interface JobRun {
  readonly jobId: string
  /** Its kind as registered (the simulator computes costs and fakes results with it). */
  readonly kind: AnyJobKind
  readonly spec: JobSpec
  readonly class: PriorityClass
  readonly weight: number
  readonly unitsPerRound: number
  /** Each round leased whole (`SimulatedJob.wholeRounds`). */
  readonly wholeRounds: boolean
  /** Its outcomes are kept and taken back once an identity answering for them is caught (`SimulatedJob.kept`). */
  readonly kept: boolean
  /** Rounds per second of a streamed job (they arrive through the event); undefined: queued. */
  readonly fps: number | undefined
  /** Rounds it gets: a streamed job's during the event, a queued job's `rounds`; undefined: topped up. */
  readonly roundCount: number | undefined
  /** Plans of its open rounds (the jobs form): a topped-up job counts their units not yet cut. */
  readonly open: Map<number, RoundPlan<TaskBase>>
  roundsAdded: number
  readonly latencies: number[]
  downgraded: number
  doubleCounted: number
  unitsCounted: number
  unitsComputed: number
  /** Compute time of its tasks within the event, ms. */
  busyMs: number
  topUpScheduled: boolean
}

/** Reference units (threads) per second of a mean participant of the profile, at its duty cycle. */
export function meanParticipantRate(profile: CrowdProfile): number {
  const classes = profile.classes
  const weights = classes.reduce((a, c) => a + c.weight, 0)
  return classes.reduce((a, c) => {
    const ms = (c.msPerThread[0] + c.msPerThread[1]) / 2
    return a + (c.weight / weights) * ((c.cores * 1000) / ms) * c.dutyCycle
  }, 0)
}

/** Reference units a round of a live job at `fps` asks for to keep `autoGridLoad` of the crowd busy. */
export function autoLiveUnits(init: Pick<SimulationInit, 'peers' | 'profile'>, fps: number): number {
  return (autoGridLoad * meanParticipantRate(init.profile) * init.peers) / fps
}

/** `name@version`, as a participant states the kinds it runs. */
export const kindTag = (kind: AnyJobKind): string => `${kind.name}@${kind.version}`

/** The registered kind of `name`; throws `UnknownJobKindError`. */
export function registeredKind(name: string): AnyJobKind {
  const kind = jobKinds.get(name)
  if (kind === undefined)
    throw new UnknownJobKindError(
      `no job kind named ${JSON.stringify(name.slice(0, 64))} (${[...jobKinds.keys()].join(', ')})`,
    )
  return kind
}

function newRun(
  fields: Pick<
    JobRun,
    'jobId' | 'kind' | 'spec' | 'class' | 'weight' | 'unitsPerRound' | 'fps' | 'roundCount'
  > &
    Partial<Pick<JobRun, 'wholeRounds' | 'kept'>>,
): JobRun {
  return {
    wholeRounds: false,
    kept: false,
    ...fields,
    open: new Map(),
    roundsAdded: 0,
    latencies: [],
    downgraded: 0,
    doubleCounted: 0,
    unitsCounted: 0,
    unitsComputed: 0,
    busyMs: 0,
    topUpScheduled: false,
  }
}

/** The jobs of a simulation: its `jobs`, or the default job (`defaultJob`, the show). */
export function jobRuns(init: SimulationInit): JobRun[] {
  const streamed = (fps: number) => Math.floor((init.durationMs / 1000) * fps)
  if (init.jobs === undefined) {
    const { kind } = defaultJob
    const spec = defaultJob.simulated({ ...init, unitsPerFrame: autoLiveUnits(init, init.fps) })
    return [
      newRun({
        jobId: spec.jobId,
        kind,
        spec,
        class: init.live !== undefined ? 'live' : 'batch',
        weight: 1,
        unitsPerRound: kind.levels?.unitsAt(spec, 0) ?? 0,
        fps: init.fps,
        roundCount: streamed(init.fps),
      }),
    ]
  }
  if (init.jobs.length === 0)
    throw new InvalidOptionError('jobs: give at least one job, or none for the default show')
  const seen = new Map<string, number>()
  return init.jobs.map((job) => {
    const kind = registeredKind(job.kind)
    check(job)
    const nth = (seen.get(job.kind) ?? 0) + 1
    seen.set(job.kind, nth)
    const jobId = nth === 1 ? job.kind : `${job.kind}-${nth}`
    const fps = job.fps ?? (job.class === 'live' ? init.fps : undefined)
    const unitsPerRound = job.units > 0 ? job.units : autoUnits(init, kind, fps)
    return newRun({
      jobId,
      kind,
      spec: {
        jobId,
        kind: kind.name,
        version: kind.version,
        description: kind.simulation.job(jobId, unitsPerRound),
      },
      class: job.class,
      weight: job.weight ?? 1,
      unitsPerRound,
      fps,
      roundCount: fps !== undefined ? streamed(fps) : job.rounds,
      wholeRounds: job.wholeRounds === true,
      kept: job.kept ?? (job.class === 'batch' && kind.validation?.sparseLies === true),
    })
  })
}

function check(job: SimulatedJob): void {
  const where = `job ${job.kind}:${job.class}`
  if (job.class !== 'live' && job.class !== 'batch')
    throw new InvalidOptionError(`${where}: class must be live or batch`)
  if (!(Number.isFinite(job.units) && job.units >= 0))
    throw new InvalidOptionError(`${where}: units must be a count (0: chosen from the crowd)`)
  if (job.fps !== undefined && !(Number.isFinite(job.fps) && job.fps > 0))
    throw new InvalidOptionError(`${where}: fps must be above 0`)
  if (job.rounds !== undefined && !(Number.isInteger(job.rounds) && job.rounds >= 1))
    throw new InvalidOptionError(`${where}: rounds must be a positive integer`)
  if (job.weight !== undefined && !(Number.isFinite(job.weight) && job.weight > 0))
    throw new InvalidOptionError(`${where}: weight must be above 0`)
}

/** See `SimulatedJob.units`. */
function autoUnits(init: SimulationInit, kind: AnyJobKind, fps: number | undefined): number {
  const crowd = meanParticipantRate(init.profile) * init.peers
  const reference = fps !== undefined ? (autoGridLoad * crowd) / fps : crowd * autoBatchRoundSeconds
  return Math.max(1, Math.floor(reference / kind.cost.relativeCost))
}

/**
 * The coordinator's options for these jobs: the single-job form as it always was, or one job each,
 * counted by a ledger sink. Their kinds are wrapped to keep each open round's plan (`JobRun.open`).
 */
export function coordinatorInit(
  init: SimulationInit,
  runs: readonly JobRun[],
): CoordinatorInit<LedgerSummary> {
  const common = {
    ...(init.scheduling !== undefined && { scheduling: init.scheduling }),
    ...(init.mode !== undefined && { mode: init.mode }),
    // Each simulated person joins through a link of their own, which holds a few identities.
    ...(init.validation !== undefined && {
      validation: { identitiesPerLink: personalLinkIdentities, ...init.validation },
    }),
  }
  // Results carry their lies (`resultLies`): the ledger counts the wrong units that get published.
  const wrong = (result: unknown) => {
    const lie = resultLies.get(result as object)
    return lie === undefined ? undefined : (unit: number) => wrongAt(lie, unit)
  }
  const jobs = runs.map((run): JobInit<LedgerSummary> => {
    // A sparse kind's truth (where a match is): the ledger tells hidden from invented.
    const truth = isSparse(run)
      ? (task: TaskBase) => {
          const key = taskHash(run.kind.taskKey(task))
          return (unit: number) => truthAt(key, unit)
        }
      : undefined
    return {
      spec: run.spec,
      kind: observed(run),
      class: run.class,
      weight: run.weight,
      ...(run.class === 'live' && init.live !== undefined && { live: init.live }),
      ...(run.wholeRounds && {
        taskUnits: { min: run.unitsPerRound, max: run.unitsPerRound, calibration: run.unitsPerRound },
      }),
      // The default job keeps its kind's own task sizes; `jobs` take theirs from their cost model too.
      sinks: ledgerSinks({ wrong, ...(truth !== undefined && { truth }) }),
      ...(init.validation !== undefined && {
        validator: simulatedValidator(
          (task) => run.kind.taskUnits(task),
          (task) => run.kind.taskKey(task),
          init.checkers ?? run.kind.validation?.checker !== undefined,
          run.kind.validation ?? {},
        ),
      }),
    }
  })
  return { jobs, ...common }
}

/** Whether a job's kind reports sparse findings (matches), whose lies hide or invent. */
export const isSparse = (run: JobRun): boolean => run.kind.validation?.sparseLies === true

/** The run's kind, noting the plan of each round it opens. */
function observed(run: JobRun): AnyJobKind {
  const { kind } = run
  return {
    ...kind,
    openRound(job, frameIndex, level) {
      const plan = kind.openRound(job, frameIndex, level)
      run.open.set(frameIndex, plan)
      return plan
    },
  }
}

/**
 * Whether a topped-up job needs another round now, so that it cannot run dry before the next top-up:
 * it keeps at least two rounds open, and a round's units not yet cut into tasks.
 */
export function needsRound(run: JobRun): boolean {
  if (run.open.size < minOpenRounds) return true
  let uncut = 0
  for (const plan of run.open.values()) uncut += plan.unitsLeft()
  return uncut < run.unitsPerRound
}
