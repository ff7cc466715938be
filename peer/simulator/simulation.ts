import { Coordinator } from '../coordinator/coordinator.ts'
import type { LedgerSummary } from '../coordinator/frame-sink.ts'
import type { TaskBase } from '../jobs/kind.ts'
import { jobKinds } from '../jobs/registry.ts'
import type { Lease } from '../protocol/job.ts'
import type { DeviceClass } from './profile.ts'
import { LinkExhaustedError } from '../protocol/errors.ts'
import { type Behaviour, behaviour, resultLies, wrongAt } from './adversaries.ts'
import { Random } from './random.ts'
import { KeptOutcomes } from './kept-outcomes.ts'
import { report, trustCounters } from './report.ts'
import {
  coordinatorInit,
  isSparse,
  type JobRun,
  jobRuns,
  kindTag,
  maxRoundsPerTopUp,
  needsRound,
  registeredKind,
} from './simulated-jobs.ts'
import type { Computation, SimulationInit, SimulationReport, VirtualParticipant } from './simulation-types.ts'
import { VirtualClock } from './virtual-clock.ts'

export type {
  LatencyPercentiles,
  SimulatedJob,
  SimulatedJobRow,
  SimulatedParticipantRow,
  SimulationInit,
  SimulationReport,
  VirtualParticipant,
} from './simulation-types.ts'
export { autoBatchRoundSeconds, autoGridLoad, autoLiveUnits } from './simulated-jobs.ts'

/** Defaults of a simulation, for the CLI and tests. */
export const simulationDefaults = {
  peers: 100,
  durationMs: 60_000,
  fps: 2,
  churnPerMinute: 0,
  failRate: 0,
  seed: 1,
  grid: 0,
  cameras: 8,
  disconnectDetectMs: 5_000,
  drainMs: 60_000,
} as const

/** The event's rounds start arriving this long into the run (the crowd arrives before), ms. */
const eventStart = 1000

/**
 * Runs a whole event in virtual time: each job's rounds arrive (a show's moments at its `fps`, a batch
 * queued or topped up); a crowd of virtual participants (drawn from the profile, seeded) joins,
 * computes each task in the time its kind's cost model gives at its own speed, link and duty cycle,
 * leaves, crashes and straggles; the real coordinator (`Coordinator`, with a ledger sink per job that
 * checks every unit is counted exactly once) schedules them through the same `handle*` interface a
 * network transport uses. The same seed gives the same report.
 */
export function simulate(init: SimulationInit): SimulationReport {
  const started = performance.now()
  const clock = new VirtualClock()
  const random = new Random(init.seed)
  const runs = jobRuns(init)
  const byJob = new Map(runs.map((run) => [run.jobId, run]))
  const runOf = (lease: Lease<TaskBase>) => byJob.get(lease.block.jobId)!
  const kindsOf = statedKinds(init)
  // Adversaries and the coordinator's checks draw from their own streams: the crowd's devices are
  // drawn as in a run without them.
  const adversaryRandom = new Random(init.seed * 7919 + 17)
  const checkRandom = new Random(init.seed * 104729 + 3)
  const coordinator = new Coordinator<LedgerSummary, TaskBase>(coordinatorInit(init, runs), {
    clock,
    random: () => checkRandom.next(),
  })
  const trust = trustCounters()
  let nextLink = 0
  const participants = new Map<string, VirtualParticipant>()
  /** Participants present, for drawing who leaves (order is irrelevant; removal swaps with the last). */
  const present: VirtualParticipant[] = []
  const standby: VirtualParticipant[] = []
  const eventEnd = eventStart + init.durationMs
  /**
   * Jobs whose rounds are not all in: a streamed or queued one until its last round is added, a
   * topped-up one until the event ends. The run ends once none is and the coordinator is idle.
   */
  let awaitingInput = runs.filter((run) => run.roundCount !== 0).length
  let threadsComputed = 0
  let joins = 0
  let leaves = 0
  let crashes = 0
  let nextId = 0
  let wakeScheduled = false
  const maxLeases = init.scheduling?.maxLeasesPerParticipant ?? 2
  const push = init.mode === 'push'
  const askAfterResult = init.askAfterResult ?? init.jobs !== undefined
  coordinator.on('leaseOffered', ({ participantId, lease }) => {
    const p = participants.get(participantId)!
    leased(lease)
    clock.setTimer(() => {
      if (!p.alive) return
      p.queue.push(lease)
      startNext(p)
    }, p.rtt / 2)
  })

  // Kept rounds an identity answers for: taken back and computed again once it is caught.
  const kept = new KeptOutcomes()
  const tally = (summary: LedgerSummary, sign: 1 | -1) => {
    trust.wrongUnits += sign * summary.wrongUnits
    trust.wrongItems += sign * summary.wrongItems
    trust.items += sign * summary.items
    trust.trueUnits += sign * summary.trueUnits
    trust.missingUnits += sign * summary.missingUnits
    trust.inventedUnits += sign * summary.inventedUnits
  }
  coordinator.on('frameComplete', (summary, frame) => {
    const run = byJob.get(frame.jobId)!
    run.latencies.push(frame.latencyMs)
    run.doubleCounted += summary.doubleCounted
    tally(summary, 1)
    run.open.delete(frame.frameIndex)
    trust.lastOutcomeMs = Math.max(trust.lastOutcomeMs, clock.now())
    kept.keep(frame.jobId, frame.frameIndex, { run, summary, answerable: frame.answerable ?? [] })
  })
  coordinator.on('frameDropped', (frame) => byJob.get(frame.jobId)!.open.delete(frame.frameIndex))
  coordinator.on('frameDowngraded', ({ jobId }) => byJob.get(jobId)!.downgraded++)
  coordinator.on('blockDone', ({ block, threads }) => (byJob.get(block.jobId)!.unitsCounted += threads))
  coordinator.on('resultWithdrawn', ({ jobId, units }) => (byJob.get(jobId)!.unitsCounted -= units))
  coordinator.on('participantQuarantined', ({ participantId }) => {
    caught(participants.get(participantId)!)
    recompute(participantId)
  })
  coordinator.on('leaseCancelled', ({ participantId, leaseId }) => {
    const p = participants.get(participantId)
    if (p === undefined) return
    clock.setTimer(() => cancel(p, leaseId), p.rtt / 2)
  })
  const scheduleWake = () => {
    if (wakeScheduled) return
    wakeScheduled = true
    clock.setTimer(wake, 0)
  }
  coordinator.on('workQueued', scheduleWake)
  coordinator.on('backupsWanted', scheduleWake)

  /** Compute time of a task of `job` on `p`: its units at its kind's relative cost, at `p`'s rate, ms. */
  function computeMs(p: VirtualParticipant, job: JobRun, lease: Lease<TaskBase>): number {
    const { kind } = job
    return ((kind.taskUnits(lease.block) * kind.cost.relativeCost) / p.rate) * 1000
  }

  /** Adds the part of a computation that lies within the event to its job's busy time. */
  function busy(run: JobRun, from: number, to: number): void {
    run.busyMs += Math.max(0, Math.min(to, eventEnd) - Math.max(from, eventStart))
  }

  /**
   * Wakes standby participants until their blocks would cover the queue; with nothing queued, wakes
   * the fastest few to take backup copies of a frame's slowest blocks.
   */
  function wake(): void {
    wakeScheduled = false
    const waiting = standby.filter((p) => p.alive && p.standby)
    standby.length = 0
    let queued = coordinator.queuedUnits
    let backups = queued > 0 ? 0 : coordinator.backupsWanted
    if (backups > 0) waiting.sort((a, b) => b.rate - a.rate)
    for (const p of waiting) {
      if (queued <= 0 && backups <= 0) {
        standby.push(p)
        continue
      }
      p.standby = false
      if (queued > 0) queued -= Math.max(16, p.rate * 0.15)
      else backups--
      clock.setTimer(() => ask(p), p.rtt / 2)
    }
  }

  /**
   * A participant walks in: a newcomer (an adversary with the mix's share, through a link of its own),
   * or `as`, a caught rejoiner under a new peer id through its old link. A link with no identity left
   * turns it away, and a newcomer takes its place.
   */
  function join(as?: { link: string; behaviour: Behaviour }): void {
    const mix = init.adversaries
    const adversary =
      as?.behaviour ??
      (mix !== undefined && mix.models.length > 0 && adversaryRandom.chance(mix.share)
        ? behaviour(mix.models[Math.floor(adversaryRandom.next() * mix.models.length)]!, adversaryRandom)
        : undefined)
    const link = as?.link ?? `l${nextLink++}`
    const id = `p${nextId++}`
    if (init.validation !== undefined) {
      try {
        coordinator.admit(id, link)
      } catch (error) {
        if (!(error instanceof LinkExhaustedError)) throw error
        trust.turnedAway++
        join()
        return
      }
    }
    if (adversary !== undefined) trust.adversariesJoined++
    else trust.honestJoined++
    const device = random.weighted(init.profile.classes)
    const msPerThread = random.between(device.msPerThread[0], device.msPerThread[1])
    const rate = ((device.cores * 1000) / msPerThread) * device.dutyCycle
    const bandwidth = (random.between(device.bandwidthMbps[0], device.bandwidthMbps[1]) * 1e6) / 8
    const rtt = random.between(device.rttMs[0], device.rttMs[1])
    const p: VirtualParticipant = {
      id,
      device,
      // What it states: measured on its calibration block, so it is its true rate (the coordinator checks it anyway).
      capability: {
        cores: device.cores,
        threadsPerSec: rate,
        bandwidthBytesPerSec: bandwidth,
        rttMs: rtt,
        dutyCycle: device.dutyCycle,
        kinds: kindsOf(device),
      },
      rate,
      bandwidth,
      rtt,
      joinedAt: clock.now(),
      leftAt: undefined,
      alive: true,
      standby: false,
      asking: false,
      resultsInFlight: 0,
      askOnDelivery: false,
      queue: [],
      computing: undefined,
      link,
      behaviour: adversary,
      returned: 0,
      firstLieAt: undefined,
    }
    participants.set(p.id, p)
    present.push(p)
    joins++
    clock.setTimer(() => (push ? coordinator.handleParticipantJoined(p.id, p.capability) : ask(p)), rtt / 2)
  }

  function ask(p: VirtualParticipant): void {
    if (push || !p.alive || p.asking) return
    const held = p.queue.length + (p.computing !== undefined ? 1 : 0)
    if (held >= maxLeases) return
    // Like a real participant, it asks for a second lease only where that hides a round trip worth hiding.
    if (held > 0 && p.computing !== undefined && p.computing.computeMs > 4 * p.rtt) return
    p.asking = true
    const lease = coordinator.handleLeaseRequest(p.id, p.capability)
    if (lease !== undefined) leased(lease)
    const resultOnItsWay = p.resultsInFlight > 0
    clock.setTimer(() => {
      p.asking = false
      if (!p.alive) return
      if (lease === undefined) {
        if (askAfterResult && resultOnItsWay) {
          // The coordinator counted that result's lease as held: ask again once it has the result.
          if (p.resultsInFlight > 0) p.askOnDelivery = true
          else ask(p)
          return
        }
        if (p.queue.length === 0 && p.computing === undefined && !p.standby) {
          p.standby = true
          standby.push(p)
        }
        return
      }
      p.queue.push(lease)
      startNext(p)
      ask(p)
    }, p.rtt / 2)
  }

  function startNext(p: VirtualParticipant): void {
    if (p.computing !== undefined || !p.alive) return
    const lease = p.queue.shift()
    if (lease === undefined) {
      ask(p)
      return
    }
    const slow = random.chance(p.device.stragglerChance) ? p.device.stragglerSlowdown : 1
    const job = runOf(lease)
    // A lazy device returns at once what it did not compute.
    const ms = computeMs(p, job, lease) * (p.behaviour?.lazy === true ? 0.05 : 1)
    const computation: Computation = {
      lease,
      job,
      startedAt: clock.now(),
      computeMs: ms,
      timer: clock.setTimer(() => finish(p, computation), ms * slow),
    }
    p.computing = computation
  }

  function finish(p: VirtualParticipant, { lease, job: run, startedAt }: Computation): void {
    p.computing = undefined
    const { kind } = run
    const units = kind.taskUnits(lease.block)
    threadsComputed += units
    run.unitsComputed += units
    busy(run, startedAt, clock.now())
    const bytes = units * (kind.cost.resultBytesPerUnit + kind.cost.inputBytesPerUnit)
    const transferMs = (bytes / p.bandwidth) * 1000 + p.rtt / 2
    p.resultsInFlight++
    clock.setTimer(() => {
      p.resultsInFlight--
      if (!p.alive) return
      coordinator.handleBlockResult(p.id, lease.leaseId, resultOf(p, run, lease))
      if (p.askOnDelivery && p.resultsInFlight === 0) {
        p.askOnDelivery = false
        ask(p)
      }
    }, transferMs)
    startNext(p)
    ask(p)
  }

  /**
   * Published rounds `participantId` is answerable for are taken back (their figures with them) and
   * computed again as new rounds: the identity was caught, so what it vouched for is suspect.
   */
  function recompute(participantId: string): void {
    for (const round of kept.takeBack(participantId)) {
      tally(round.summary, -1)
      trust.roundsRecomputed++
      trust.unitsRecomputed += round.summary.threads
      round.run.unitsCounted -= round.summary.threads
      // Not inside the coordinator's event: once this moment's events are done. The run waits for it.
      awaitingInput++
      clock.setTimer(() => {
        addRound(round.run, round.run.roundsAdded)
        awaitingInput--
      }, 0)
    }
  }

  /** What `p` returns for a lease: a result of the right shape, carrying its lie if it tells one. */
  function resultOf(p: VirtualParticipant, run: JobRun, lease: Lease<TaskBase>): unknown {
    const result = run.kind.simulation.fakeResult(lease.block) as object
    const lie = p.behaviour?.lie(run.kind.taskKey(lease.block), p.returned, isSparse(run))
    p.returned++
    if (lie === undefined) return result
    // A lie wrong at no unit (a share that misses every unit of a small task, an empty result where
    // there is nothing to find) is the right result: it counts as a lie once a unit is wrong.
    const units = run.kind.taskUnits(lease.block)
    let wrong = false
    for (let unit = 0; unit < units && !wrong; unit++) wrong = wrongAt(lie, unit)
    if (!wrong) return result
    p.firstLieAt ??= clock.now()
    const told = { ...result }
    resultLies.set(told, lie)
    return told
  }

  /**
   * The coordinator quarantined `p`: its connection is closed (it is gone at once, its work lost). A
   * rejoiner comes back under a new id through the same link; anyone else is replaced by a newcomer.
   */
  function caught(p: VirtualParticipant): void {
    const now = clock.now()
    if (p.behaviour === undefined) trust.falseAccusations++
    else if (p.firstLieAt !== undefined) trust.quarantineMs.push(now - p.firstLieAt)
    trust.caught.add(p.id)
    if (!p.alive) return
    const at = present.indexOf(p)
    if (at >= 0) {
      present[at] = present[present.length - 1]!
      present.pop()
    }
    p.alive = false
    p.leftAt = now
    if (p.computing !== undefined) abort(p, p.computing)
    clock.setTimer(() => coordinator.handleParticipantGone(p.id), p.rtt / 2)
    const again = p.behaviour?.model === 'rejoiner' ? { link: p.link, behaviour: p.behaviour } : undefined
    clock.setTimer(() => join(again), random.exponential(5_000))
  }

  /** Stops the task `p` computes: the part already computed is wasted work. */
  function abort(p: VirtualParticipant, { lease, job: run, startedAt, timer }: Computation): void {
    clock.clearTimer(timer)
    const elapsed = clock.now() - startedAt
    const units = Math.min(
      run.kind.taskUnits(lease.block),
      Math.round(((elapsed / 1000) * p.rate) / run.kind.cost.relativeCost),
    )
    threadsComputed += units
    run.unitsComputed += units
    busy(run, startedAt, clock.now())
    p.computing = undefined
  }

  function cancel(p: VirtualParticipant, leaseId: number): void {
    const queued = p.queue.findIndex((l) => l.leaseId === leaseId)
    if (queued >= 0) {
      p.queue.splice(queued, 1)
      ask(p)
      return
    }
    if (p.computing?.lease.leaseId !== leaseId) return
    abort(p, p.computing)
    startNext(p)
  }

  /**
   * A participant goes: `leave` says goodbye (the coordinator hears at once), `crash` vanishes in
   * the middle of its block (only a timeout or the transport's disconnect detection will tell).
   * Either way a newcomer walks in a little later: the crowd keeps its size.
   */
  function depart(kind: 'leave' | 'crash'): void {
    if (present.length === 0) return
    const at = Math.floor(random.next() * present.length)
    const p = present[at]!
    present[at] = present[present.length - 1]!
    present.pop()
    p.alive = false
    p.leftAt = clock.now()
    if (p.computing !== undefined) abort(p, p.computing)
    if (kind === 'leave') {
      leaves++
      clock.setTimer(() => coordinator.handleParticipantGone(p.id), p.rtt / 2)
    } else {
      crashes++
      clock.setTimer(() => coordinator.handleParticipantGone(p.id), init.disconnectDetectMs)
    }
    clock.setTimer(() => join(), random.exponential(5_000))
  }

  /** A Poisson process of departures at `perMinute` of the crowd, during the event. */
  function departures(kind: 'leave' | 'crash', perMinute: number): void {
    if (perMinute <= 0) return
    const meanMs = 60_000 / (perMinute * init.peers)
    const next = random.exponential(meanMs)
    if (clock.now() + next > eventEnd) return
    clock.setTimer(() => {
      depart(kind)
      departures(kind, perMinute)
    }, next)
  }

  /** Opens round `index` of a job with every input it needs. */
  function addRound(run: JobRun, index: number): void {
    for (const input of run.kind.simulation.inputs(run.spec, index, run.unitsPerRound))
      coordinator.addInput(run.jobId, index, input)
    if (++run.roundsAdded === run.roundCount) awaitingInput--
  }

  /** A task of a topped-up job was leased: once this moment's events are done, see whether it needs rounds. */
  function leased(lease: Lease<TaskBase>): void {
    const run = runOf(lease)
    if (run.fps !== undefined || run.roundCount !== undefined || run.topUpScheduled) return
    run.topUpScheduled = true
    clock.setTimer(() => topUp(run), 0)
  }

  /** Adds rounds to a topped-up job until it cannot run dry (`needsRound`); none after the event. */
  function topUp(run: JobRun): void {
    run.topUpScheduled = false
    if (clock.now() >= eventEnd) return
    for (let i = 0; i < maxRoundsPerTopUp && needsRound(run); i++) addRound(run, run.roundsAdded)
  }

  // The crowd arrives over the first second; then each job's rounds arrive, streamed or queued.
  for (let i = 0; i < init.peers; i++) clock.setTimer(() => join(), random.next() * 1000)
  departures('leave', init.churnPerMinute)
  departures('crash', init.failRate)
  for (const run of runs) {
    if (run.fps !== undefined) {
      const interval = 1000 / run.fps
      for (let k = 0; k < run.roundCount!; k++)
        clock.setTimer(() => addRound(run, k), eventStart + k * interval)
    } else {
      const queued = run.roundCount
      clock.setTimer(() => {
        if (queued === undefined) topUp(run)
        else for (let k = 0; k < queued; k++) addRound(run, k)
      }, eventStart)
      if (queued === undefined) clock.setTimer(() => awaitingInput--, eventEnd)
    }
  }

  const finished = () => awaitingInput === 0 && coordinator.idle
  const end = eventEnd + init.drainMs
  const step = Math.max(1000, end / 100)
  let events = 0
  for (let t = step; ; t += step) {
    const target = Math.min(t, end)
    events += clock.runUntil(target, finished)
    init.onProgress?.(Math.min(clock.now(), end), end)
    if (finished() || target >= end) break
  }
  const audit = coordinator.audit()
  const stats = coordinator.statistics()
  coordinator.stop()
  // Tasks still being computed (copies no longer wanted) kept their participants busy until now.
  for (const p of present)
    if (p.computing !== undefined) busy(p.computing.job, p.computing.startedAt, clock.now())
  const wallSeconds = (performance.now() - started) / 1000
  for (const p of participants.values())
    if (p.firstLieAt !== undefined && !trust.caught.has(p.id)) trust.liarsUncaught++
  return report(init, stats, {
    trust,
    audit,
    runs,
    threadsComputed,
    joins,
    leaves,
    crashes,
    events,
    wallSeconds,
    virtualMs: clock.now(),
    window: { start: eventStart, end: Math.min(eventEnd, clock.now()) },
    participants,
  })
}

/**
 * The kinds a participant of each device class states it runs: its class's `kinds`, or every
 * registered kind. Checked before the run: an unknown name throws `UnknownJobKindError`.
 */
function statedKinds(init: SimulationInit): (device: DeviceClass) => string[] {
  const every = [...jobKinds.values()].map(kindTag)
  const byClass = new Map(
    init.profile.classes.map((c) => [c, c.kinds?.map((name) => kindTag(registeredKind(name))) ?? every]),
  )
  return (device) => byClass.get(device) ?? every
}
