import { Coordinator } from '../coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../coordinator/frame-sink.ts'
import { ringJob } from '../jobs/vertex/index.ts'
import { type BlockResult, blockResult, type Lease, type VertexJob } from '../protocol/job.ts'
import { Random } from './random.ts'
import { report } from './report.ts'
import type { SimulationInit, SimulationReport, VirtualParticipant } from './simulation-types.ts'

export type {
  SimulatedParticipantRow,
  SimulationInit,
  SimulationReport,
  VirtualParticipant,
} from './simulation-types.ts'
import { VirtualClock } from './virtual-clock.ts'

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

/** One shared buffer of zeros: a simulated result has no pixels, only its range. */
let zeros = new Uint8Array(0)

/**
 * Runs a whole event in virtual time: cameras send frames at `fps`; a crowd of virtual participants
 * (drawn from the profile, seeded) joins, computes with its own speed, link and duty cycle, leaves,
 * crashes and straggles; the real coordinator (`Coordinator`, with a ledger sink that checks every
 * thread is counted exactly once) schedules them through the same `handle*` interface a network
 * transport uses. The same seed gives the same report.
 */
export function simulate(init: SimulationInit): SimulationReport {
  const started = performance.now()
  const clock = new VirtualClock()
  const random = new Random(init.seed)
  const job = simulatedJob(init.grid > 0 ? init.grid : autoGrid(init), init.cameras)
  const coordinator = new Coordinator<LedgerSummary>(
    {
      job,
      frameSinks: ledgerSinks(),
      ...(init.live !== undefined && { live: init.live }),
      ...(init.scheduling !== undefined && { scheduling: init.scheduling }),
      ...(init.mode !== undefined && { mode: init.mode }),
    },
    { clock },
  )
  const participants = new Map<string, VirtualParticipant>()
  /** Participants present, for drawing who leaves (order is irrelevant; removal swaps with the last). */
  const present: VirtualParticipant[] = []
  const standby: VirtualParticipant[] = []
  const latencies: number[] = []
  let doubleCounted = 0
  let downgraded = 0
  let framesAdded = 0
  let threadsComputed = 0
  let joins = 0
  let leaves = 0
  let crashes = 0
  let nextId = 0
  let wakeScheduled = false
  const maxLeases = init.scheduling?.maxLeasesPerParticipant ?? 2
  const push = init.mode === 'push'
  coordinator.on('leaseOffered', ({ participantId, lease }) => {
    const p = participants.get(participantId)!
    clock.setTimer(() => {
      if (!p.alive) return
      p.queue.push(lease)
      startNext(p)
    }, p.rtt / 2)
  })

  coordinator.on('frameComplete', (summary, report) => {
    latencies.push(report.latencyMs)
    doubleCounted += summary.doubleCounted
  })
  coordinator.on('frameDowngraded', () => downgraded++)
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

  /**
   * Wakes standby participants until their blocks would cover the queue; with nothing queued, wakes
   * the fastest few to take backup copies of a frame's slowest blocks.
   */
  function wake(): void {
    wakeScheduled = false
    const waiting = standby.filter((p) => p.alive && p.standby)
    standby.length = 0
    let queued = coordinator.queuedVertices
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

  function join(): void {
    const device = random.weighted(init.profile.classes)
    const msPerThread = random.between(device.msPerThread[0], device.msPerThread[1])
    const rate = ((device.cores * 1000) / msPerThread) * device.dutyCycle
    const bandwidth = (random.between(device.bandwidthMbps[0], device.bandwidthMbps[1]) * 1e6) / 8
    const rtt = random.between(device.rttMs[0], device.rttMs[1])
    const p: VirtualParticipant = {
      id: `p${nextId++}`,
      device,
      // What it states: measured on its calibration block, so it is its true rate (the coordinator checks it anyway).
      capability: {
        cores: device.cores,
        threadsPerSec: rate,
        bandwidthBytesPerSec: bandwidth,
        rttMs: rtt,
        dutyCycle: device.dutyCycle,
      },
      rate,
      bandwidth,
      rtt,
      alive: true,
      standby: false,
      asking: false,
      queue: [],
      computing: undefined,
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
    if (
      held > 0 &&
      p.computing !== undefined &&
      (p.computing.lease.block.vertexCount / p.rate) * 1000 > 4 * p.rtt
    )
      return
    p.asking = true
    const lease = coordinator.handleLeaseRequest(p.id, p.capability)
    clock.setTimer(() => {
      p.asking = false
      if (!p.alive) return
      if (lease === undefined) {
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
    const computeMs = (lease.block.vertexCount / p.rate) * 1000 * slow
    const timer = clock.setTimer(() => finish(p, lease), computeMs)
    p.computing = { lease, startedAt: clock.now(), timer }
  }

  function finish(p: VirtualParticipant, lease: Lease): void {
    p.computing = undefined
    threadsComputed += lease.block.vertexCount
    const transferMs = ((lease.block.vertexCount * 4) / p.bandwidth) * 1000 + p.rtt / 2
    clock.setTimer(() => {
      if (!p.alive) return
      coordinator.handleBlockResult(p.id, lease.leaseId, resultOf(lease))
    }, transferMs)
    startNext(p)
    ask(p)
  }

  function cancel(p: VirtualParticipant, leaseId: number): void {
    const queued = p.queue.findIndex((l) => l.leaseId === leaseId)
    if (queued >= 0) {
      p.queue.splice(queued, 1)
      ask(p)
      return
    }
    if (p.computing?.lease.leaseId !== leaseId) return
    // Abort: the part already computed is wasted work.
    const elapsed = clock.now() - p.computing.startedAt
    threadsComputed += Math.min(p.computing.lease.block.vertexCount, Math.round((elapsed / 1000) * p.rate))
    clock.clearTimer(p.computing.timer)
    p.computing = undefined
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
    if (p.computing !== undefined) {
      clock.clearTimer(p.computing.timer)
      const elapsed = clock.now() - p.computing.startedAt
      threadsComputed += Math.min(p.computing.lease.block.vertexCount, Math.round((elapsed / 1000) * p.rate))
      p.computing = undefined
    }
    if (kind === 'leave') {
      leaves++
      clock.setTimer(() => coordinator.handleParticipantGone(p.id), p.rtt / 2)
    } else {
      crashes++
      clock.setTimer(() => coordinator.handleParticipantGone(p.id), init.disconnectDetectMs)
    }
    clock.setTimer(join, random.exponential(5_000))
  }

  /** A Poisson process of departures at `perMinute` of the crowd, during the event. */
  function departures(kind: 'leave' | 'crash', perMinute: number): void {
    if (perMinute <= 0) return
    const meanMs = 60_000 / (perMinute * init.peers)
    const next = random.exponential(meanMs)
    if (clock.now() + next > 1000 + init.durationMs) return
    clock.setTimer(() => {
      depart(kind)
      departures(kind, perMinute)
    }, next)
  }

  // The crowd arrives over the first second; cameras send every 1/fps from then on.
  for (let i = 0; i < init.peers; i++) clock.setTimer(join, random.next() * 1000)
  departures('leave', init.churnPerMinute)
  departures('crash', init.failRate)
  const frameInterval = 1000 / init.fps
  const frameCount = Math.floor((init.durationMs / 1000) * init.fps)
  for (let k = 0; k < frameCount; k++) {
    clock.setTimer(
      () => {
        for (const camera of job.cameras) {
          coordinator.addFrame({
            cameraId: camera.id,
            index: k,
            captureTime: k * frameInterval,
            imageUrl: 'data:,',
          })
        }
        framesAdded++
      },
      1000 + k * frameInterval,
    )
  }

  const end = 1000 + init.durationMs + init.drainMs
  const step = Math.max(1000, end / 100)
  let events = 0
  for (let t = step; ; t += step) {
    const target = Math.min(t, end)
    events += clock.runUntil(target, () => framesAdded === frameCount && coordinator.idle)
    init.onProgress?.(Math.min(clock.now(), end), end)
    if ((framesAdded === frameCount && coordinator.idle) || target >= end) break
  }
  const audit = coordinator.audit()
  const stats = coordinator.statistics()
  coordinator.stop()
  const wallSeconds = (performance.now() - started) / 1000
  return report(init, stats, {
    audit,
    latencies,
    doubleCounted,
    downgraded,
    framesAdded,
    threadsComputed,
    joins,
    leaves,
    crashes,
    events,
    wallSeconds,
    virtualMs: clock.now(),
    participants,
  })
}

/** Share of the crowd's nominal capacity an automatic grid keeps busy. */
export const autoGridLoad = 0.5

/** The grid an automatic simulation uses: see `SimulationInit.grid`. */
export function autoGrid(init: Pick<SimulationInit, 'peers' | 'profile' | 'fps' | 'cameras'>): number {
  const classes = init.profile.classes
  const weights = classes.reduce((a, c) => a + c.weight, 0)
  const meanRate = classes.reduce((a, c) => {
    const ms = (c.msPerThread[0] + c.msPerThread[1]) / 2
    return a + (c.weight / weights) * ((c.cores * 1000) / ms) * c.dutyCycle
  }, 0)
  const threadsPerFrame = (autoGridLoad * meanRate * init.peers) / init.fps
  return Math.max(4, Math.floor(Math.cbrt(threadsPerFrame / init.cameras)))
}

function resultOf(lease: Lease): BlockResult {
  const bytes = lease.block.vertexCount * 4
  if (zeros.length < bytes) zeros = new Uint8Array(Math.max(bytes, zeros.length * 2))
  return blockResult(lease.block, zeros.subarray(0, bytes))
}

/** A job over a 4 m stage seen by cameras on a ring: only its sizes matter to the scheduler. */
export function simulatedJob(grid: number, cameraCount: number): VertexJob {
  return ringJob('simulation', grid, cameraCount)
}
