import { EventEmitter } from 'node:events'
import type { ChildProcess } from 'node:child_process'
import type { Coordinator, FrameReport } from '../coordinator/coordinator.ts'
import { spawnGuarded } from '../protocol/child-process.ts'
import type { Clock } from '../protocol/clock.ts'
import { dedicatedDefaults } from '../protocol/defaults.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import type { ConnectedParticipant } from './coordinator-host.ts'

/** A dedicated participant started by the pool: stopped when the crowd has enough again. */
export interface DedicatedHandle {
  stop(): Promise<unknown>
  /** Settles when it ended by itself (it crashed, or could not join). */
  readonly exited: Promise<unknown>
}

/** Starts one dedicated participant that joins with `link` (a process here, or anywhere). */
export type DedicatedLauncher = (link: string) => DedicatedHandle

/** Options of the pool; each number defaults from `dedicatedDefaults`. */
export interface DedicatedDevicesInit {
  coordinator: Coordinator
  /** The participants connected now (the host's `connected()`). */
  connected: () => ConnectedParticipant[]
  clock: Clock
  /** The link dedicated participants join with, and the label it gives them (its token's jti). */
  link: string
  label: string
  launch: DedicatedLauncher
  /** Dedicated participants at most. */
  max: number
  /** Floors set by the operator, reference units per second, by live job. */
  floors?: Record<string, number>
  checkMs?: number
  startAfterMs?: number
  stopAfterMs?: number
  hysteresis?: number
  headroom?: number
  measureTimeoutMs?: number
  logger?: Logger
}

/** What the pool reports. */
export interface DedicatedEvents {
  started: [{ count: number; reason: string }]
  stopped: [{ count: number; reason: string }]
}

interface Running {
  handle: DedicatedHandle
  startedAt: number
  /** Why it ended, once it did: a dedicated participant that dies is replaced if still needed. */
  ended: boolean
}

/**
 * Dedicated devices (the seed's FIG. 7): when the crowd's measured capacity stays below a live
 * job's floor, the pool starts dedicated participants, one at a time, each measured before the
 * next, up to `max`; when the crowd alone (without the newest dedicated one) has the floor plus
 * `hysteresis` for `stopAfterMs`, it stops that one. Two thresholds and two delays keep them from
 * flapping as browsers come and go.
 *
 * A job's floor is the operator's (`setFloor`), or its own: the rate its rounds arrive at times the
 * units one round costs, times `headroom`. Capacity is what the coordinator observed participants
 * compute per second, in reference units, over those that run the job's kind; a participant not
 * measured yet adds nothing. Dedicated participants join with their own link, so the table can show
 * them as such and they never count as crowd.
 */
export class DedicatedDevices extends EventEmitter<DedicatedEvents> {
  private readonly init: DedicatedDevicesInit
  private readonly options: Required<
    Pick<
      DedicatedDevicesInit,
      'checkMs' | 'startAfterMs' | 'stopAfterMs' | 'hysteresis' | 'headroom' | 'measureTimeoutMs'
    >
  >
  private readonly log: Logger
  private readonly floorsSet = new Map<string, number>()
  private readonly running: Running[] = []
  /** Per job: arrival times of its last rounds, and the units its rounds cost. */
  private readonly arrivals = new Map<string, number[]>()
  private readonly roundUnits = new Map<string, number>()
  private belowSince: number | undefined
  private aboveSince: number | undefined
  private timer: unknown
  private stopped = false
  private readonly onRound = (report: FrameReport) => {
    const list = this.arrivals.get(report.jobId) ?? []
    list.push(report.arrivedAt)
    if (list.length > 64) list.shift()
    this.arrivals.set(report.jobId, list)
    this.roundUnits.set(report.jobId, Math.max(this.roundUnits.get(report.jobId) ?? 0, report.threads))
  }
  private readonly onComplete = (_outcome: unknown, report: FrameReport) => this.onRound(report)

  constructor(init: DedicatedDevicesInit) {
    super()
    this.init = init
    this.options = {
      checkMs: init.checkMs ?? dedicatedDefaults.checkMs,
      startAfterMs: init.startAfterMs ?? dedicatedDefaults.startAfterMs,
      stopAfterMs: init.stopAfterMs ?? dedicatedDefaults.stopAfterMs,
      hysteresis: init.hysteresis ?? dedicatedDefaults.hysteresis,
      headroom: init.headroom ?? dedicatedDefaults.headroom,
      measureTimeoutMs: init.measureTimeoutMs ?? dedicatedDefaults.measureTimeoutMs,
    }
    this.log = init.logger ?? makeLogger('crowdmesh:dedicated')
    for (const [jobId, floor] of Object.entries(init.floors ?? {})) this.floorsSet.set(jobId, floor)
    init.coordinator.on('frameComplete', this.onComplete)
    init.coordinator.on('frameDropped', this.onRound)
    this.schedule()
  }

  /** Dedicated participants started and not stopped (some may still be joining). */
  get count(): number {
    return this.running.filter((r) => !r.ended).length
  }

  /** The dedicated participants connected now. */
  participants(): ReadonlySet<string> {
    const ids = new Set<string>()
    for (const p of this.init.connected()) if (p.label === this.init.label) ids.add(p.participantId)
    return ids
  }

  /** Sets a job's floor, reference units per second (null: back to its own). */
  setFloor(jobId: string, unitsPerSec: number | null): void {
    if (unitsPerSec === null) this.floorsSet.delete(jobId)
    else this.floorsSet.set(jobId, unitsPerSec)
  }

  /** Each live job with a floor: what it needs, and what the crowd (dedicated ones apart) computes. */
  floors(): Map<string, { needed: number; capacity: number }> {
    const out = new Map<string, { needed: number; capacity: number }>()
    for (const [jobId, { needed, capacity }] of this.floorsOf(this.capacities()))
      out.set(jobId, { needed, capacity })
    return out
  }

  /** `floors()` from capacities measured once, with each job's kind. */
  private floorsOf(
    capacities: ReturnType<DedicatedDevices['capacities']>,
  ): Map<string, { needed: number; capacity: number; kind: string }> {
    const out = new Map<string, { needed: number; capacity: number; kind: string }>()
    for (const job of this.init.coordinator.jobStates()) {
      if (job.class !== 'live' || job.paused) continue
      const needed = this.floorOf(job.jobId)
      if (needed > 0)
        out.set(job.jobId, { needed, capacity: capacities.crowd.get(job.kind) ?? 0, kind: job.kind })
    }
    return out
  }

  /** Stops every dedicated participant and the checks. Safe twice. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.init.clock.clearTimer(this.timer)
    this.init.coordinator.off('frameComplete', this.onComplete)
    this.init.coordinator.off('frameDropped', this.onRound)
    await Promise.all(this.running.splice(0).map((r) => r.handle.stop()))
  }

  /** One check: start one, stop one, or wait. */
  check(): void {
    if (this.stopped) return
    const now = this.init.clock.now()
    const capacities = this.capacities()
    const { dedicated, newest, measured } = capacities
    const floors = this.floorsOf(capacities)
    let below = false
    let surplus = floors.size > 0
    for (const { kind, ...floor } of floors.values()) {
      const withDedicated = floor.capacity + (dedicated.get(kind) ?? 0)
      if (withDedicated < floor.needed) below = true
      // Without the newest dedicated participant, the job would still have its floor and the margin.
      if (withDedicated - (newest.get(kind) ?? 0) < floor.needed * (1 + this.options.hysteresis))
        surplus = false
    }
    if (this.count === 0) surplus = false
    this.belowSince = below ? (this.belowSince ?? now) : undefined
    this.aboveSince = surplus ? (this.aboveSince ?? now) : undefined
    // One at a time: the next waits until the last one joined and computed, or gave up trying.
    const settling = this.running.some(
      (r) => !r.ended && !measured.has(r) && now - r.startedAt < this.options.measureTimeoutMs,
    )
    if (
      below &&
      !settling &&
      this.count < this.init.max &&
      now - this.belowSince! >= this.options.startAfterMs
    ) {
      this.start(now, floors)
      this.belowSince = now
    } else if (surplus && now - this.aboveSince! >= this.options.stopAfterMs) {
      void this.stopNewest()
      this.aboveSince = now
    }
  }

  private start(now: number, floors: Map<string, { needed: number; capacity: number }>): void {
    const handle = this.init.launch(this.init.link)
    const record: Running = { handle, startedAt: now, ended: false }
    this.running.push(record)
    void handle.exited.then(() => {
      record.ended = true
      const at = this.running.indexOf(record)
      if (at >= 0) this.running.splice(at, 1)
    })
    const reason = [...floors]
      .filter(([, f]) => f.capacity < f.needed)
      .map(([jobId, f]) => `job ${jobId}: crowd ${Math.round(f.capacity)} of ${Math.round(f.needed)} units/s`)
      .join('; ')
    this.log(`dedicated participant ${this.count} of ${this.init.max} started (${reason})`)
    this.emit('started', { count: this.count, reason })
  }

  private async stopNewest(): Promise<void> {
    const record = this.running.pop()
    if (record === undefined) return
    record.ended = true
    this.log(`dedicated participant stopped: the crowd has enough (${this.count} left)`)
    this.emit('stopped', { count: this.count, reason: 'the crowd has enough' })
    await record.handle.stop()
  }

  /**
   * Observed speed, reference units per second, by kind tag: of the crowd, of the dedicated
   * participants, and of the newest of them; and which dedicated processes have been measured.
   */
  private capacities(): {
    crowd: Map<string, number>
    dedicated: Map<string, number>
    newest: Map<string, number>
    measured: Set<Running>
  } {
    const crowd = new Map<string, number>()
    const dedicated = new Map<string, number>()
    const newest = new Map<string, number>()
    const measured = new Set<Running>()
    const connected = new Map(this.init.connected().map((p) => [p.participantId, p]))
    const jobs = this.init.coordinator.jobStates()
    let latest: { at: number; rate: number; kinds: string[] } | undefined
    let measuredDedicated = 0
    for (const row of this.init.coordinator.participantRows()) {
      const link = connected.get(row.id)
      if (link === undefined || row.threadsPerSec <= 0) continue
      const isDedicated = link.label === this.init.label
      const kinds = jobs.map((j) => j.kind).filter((k) => row.kinds === undefined || row.kinds.includes(k))
      for (const kind of kinds) {
        const into = isDedicated ? dedicated : crowd
        into.set(kind, (into.get(kind) ?? 0) + row.threadsPerSec)
      }
      if (isDedicated) {
        measuredDedicated++
        if (latest === undefined || link.connectedAt > latest.at)
          latest = { at: link.connectedAt, rate: row.threadsPerSec, kinds }
      }
    }
    if (latest !== undefined) for (const kind of latest.kinds) newest.set(kind, latest.rate)
    // Processes are not tied to peer ids: the oldest ones count as the measured ones.
    for (const r of this.running.slice(0, measuredDedicated)) measured.add(r)
    return { crowd, dedicated, newest, measured }
  }

  /** The operator's floor, or the job's own from its measured round rate and round size. */
  private floorOf(jobId: string): number {
    const set = this.floorsSet.get(jobId)
    if (set !== undefined) return set
    const arrivals = this.arrivals.get(jobId) ?? []
    if (arrivals.length < 3) return 0
    const span = (arrivals.at(-1)! - arrivals[0]!) / 1000
    if (span <= 0) return 0
    const roundsPerSec = (arrivals.length - 1) / span
    const cost = this.init.coordinator.kindOf(jobId)?.cost.relativeCost ?? 1
    return roundsPerSec * (this.roundUnits.get(jobId) ?? 0) * cost * this.options.headroom
  }

  private schedule(): void {
    this.timer = this.init.clock.setTimer(() => {
      this.check()
      if (!this.stopped) this.schedule()
    }, this.options.checkMs)
  }
}

/**
 * A launcher that runs `command` through the shell with the link in `$CROWDMESH_LINK` (never pasted
 * into the command's text), e.g. one that starts a participant on another machine:
 * `ssh gpu-box crowdmesh join "$CROWDMESH_LINK"`. Stopping it sends SIGTERM, then SIGKILL.
 */
export function commandLauncher(command: string): DedicatedLauncher {
  return (link) => {
    const child: ChildProcess = spawnGuarded('/bin/sh', ['-c', command], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: { ...process.env, CROWDMESH_LINK: link },
    })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    return {
      exited,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(timer)
      },
    }
  }
}
