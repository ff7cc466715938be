import type { EventEmitter } from 'node:events'
import { listen } from '../protocol/listen.ts'
import type { Coordinator, FrameReport } from '../coordinator/coordinator.ts'
import type { CoordinatorHost } from '../mesh/coordinator-host.ts'
import type { Clock } from '../protocol/clock.ts'
import { consoleDefaults } from '../protocol/defaults.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { CrowdmeshError, UnknownJobError } from '../protocol/errors.ts'
import type {
  ConsoleAction,
  ConsoleAlert,
  ConsoleJob,
  ConsoleRecording,
  ConsoleSnapshot,
  DeviceRow,
  SeriesPoint,
} from './console-protocol.ts'
import { JobTracks } from './job-tracks.ts'

/** The participant named in an action is not connected (any more). */
export class UnknownParticipantError extends CrowdmeshError {}

/** The state of the event's parts that an operator must hear about (`EventConsole` alerts on it). */
export interface EventHealth {
  /** coturn: running, down (its supervisor is restarting it), or not run at all. */
  turn: 'up' | 'down' | 'off'
  /** The circuit relay, and the coordinator's reservation on it. */
  relay: 'up' | 'down'
}

/** The server peer for recordings, as the console lists its recordings and watches its disk. */
export interface ConsoleRecordings {
  list(max: number): Promise<ConsoleRecording[]>
  /** Bytes the recordings take, and their quota. */
  storage(): { usedBytes: number; maxTotalBytes: number }
}

/** Dedicated devices (`DedicatedDevices`), as the console shows and sets them. */
export interface ConsoleDedicated {
  /** Participant ids of the dedicated participants connected now. */
  participants(): ReadonlySet<string>
  /** Per live job with a floor: the capacity it needs and the crowd's, reference units per second. */
  floors(): Map<string, { needed: number; capacity: number }>
  /** Sets a job's floor (null: back to its own, from its rate and size). */
  setFloor(jobId: string, unitsPerSec: number | null): void
}

/**
 * The participants connected, as the coordinator's host knows them (`CoordinatorHost`; the console
 * benchmark's simulated crowd): listed, removed, and `participantJoined`/`participantLeft` events.
 */
export type ParticipantDirectory = Pick<CoordinatorHost, 'connected' | 'remove'> &
  Pick<EventEmitter, 'on' | 'off'>

/** What the console reads and acts on. */
export interface EventConsoleInit {
  event: string
  coordinator: Coordinator
  host: ParticipantDirectory
  clock: Clock
  /** Mints a join link of the event (the signaling server's), valid for `ttlSeconds`. */
  mintLink(role: 'participant' | 'recorder', ttlSeconds: number): string
  health?: () => EventHealth
  /**
   * Where a participant connects from (`ip:port`), when something beside the host knows (the relay
   * in this process sees each participant's own connection; the host's is relayed WebRTC).
   */
  addressOf?: (participantId: string) => string | undefined
  /** Alerts when fewer participants are connected (default `consoleDefaults.minParticipants`). */
  minParticipants?: number
}

type Listener = (snapshot: ConsoleSnapshot) => void

/** Participants' addresses remembered at most (the oldest forgotten first). */
const maxAddresses = 20_000

/**
 * The operator's console behind its page: builds the live snapshot (devices, jobs, alerts, each
 * job's diagram) from what the coordinator and its host already keep, hands one to each viewer
 * every `tickMs` and soon after a participant joins or leaves, and carries out the page's actions.
 * Its timers run on the injected clock and only while someone watches, except each job's diagram,
 * which is sampled always so that a console opened late shows the event's last minutes.
 */
export class EventConsole {
  readonly event: string
  private readonly init: EventConsoleInit
  private readonly clock: Clock
  private readonly log: Logger
  private readonly startedAt: number
  private readonly tracks: JobTracks
  private readonly listeners = new Set<Listener>()
  private readonly quarantines = new Map<string, { text: string; at: number }>()
  private readonly unlisten: (() => void)[] = []
  private readonly addresses = new Map<string, string>()
  /** Each job as last shown, so an ended one keeps its kind and class. */
  private readonly lastStates = new Map<string, ConsoleJob>()
  private recordings: ConsoleRecordings | undefined
  private dedicated: ConsoleDedicated | undefined
  private tickTimer: unknown
  private changeTimer: unknown
  private sampleTimer: unknown
  private closed = false

  constructor(init: EventConsoleInit) {
    this.event = init.event
    this.init = init
    this.clock = init.clock
    this.log = makeLogger('crowdmesh:console')
    this.startedAt = this.clock.now()
    this.tracks = new JobTracks(this.clock)
    const { coordinator, host } = init
    // Typed emitters of several event maps: each listener is registered and removed alike.
    const on = (emitter: object, name: string, listener: (...args: never[]) => void) =>
      this.unlisten.push(listen(emitter, name, listener))
    on(coordinator, 'frameComplete', (_outcome: unknown, report: FrameReport) => this.tracks.round(report))
    on(coordinator, 'frameDropped', (report: FrameReport) => this.tracks.round(report))
    on(coordinator, 'blockDone', ({ block, threads }: { block: { jobId: string }; threads: number }) =>
      this.tracks.units(block.jobId, threads),
    )
    on(coordinator, 'jobEnded', (jobId: string) => this.tracks.ended(jobId))
    on(
      coordinator,
      'participantQuarantined',
      ({ participantId, reason }: { participantId: string; reason: string }) => {
        this.quarantines.set(participantId, {
          text: `participant …${participantId.slice(-8)} quarantined: ${reason.slice(0, 200)}`,
          at: this.clock.now(),
        })
        this.changed()
      },
    )
    on(host, 'participantJoined', () => this.changed())
    on(host, 'participantLeft', () => this.changed())
    this.sample()
  }

  /** Lists the event's recordings on the console, and alerts on their disk quota. */
  attachRecordings(recordings: ConsoleRecordings): void {
    this.recordings = recordings
  }

  /** Shows dedicated devices as such, and each live job's floor. */
  attachDedicated(dedicated: ConsoleDedicated): void {
    this.dedicated = dedicated
  }

  /** Viewers watching now. */
  get viewers(): number {
    return this.listeners.size
  }

  /**
   * Calls `listener` with a whole snapshot now, then with one every tick (series: newest points)
   * until the returned function is called.
   */
  watch(listener: Listener): () => void {
    if (this.closed) throw new CrowdmeshError('the console is closed')
    if (this.listeners.size >= consoleDefaults.maxViewers)
      throw new CrowdmeshError(`${consoleDefaults.maxViewers} consoles are open already`)
    this.listeners.add(listener)
    listener(this.snapshot(true))
    if (this.listeners.size === 1) this.scheduleTick()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) {
        this.clock.clearTimer(this.tickTimer)
        this.clock.clearTimer(this.changeTimer)
        this.tickTimer = this.changeTimer = undefined
      }
    }
  }

  /** Everything the page shows now; `whole`: with each job's whole diagram. */
  snapshot(whole = false): ConsoleSnapshot {
    const now = this.clock.now()
    const { coordinator, host } = this.init
    const connected = host.connected()
    const byId = new Map(connected.map((c) => [c.participantId, c]))
    const trust = new Map(coordinator.validationState().trust.map((t) => [t.identity, t.state]))
    const dedicated = this.dedicated?.participants() ?? new Set<string>()
    const floors = this.dedicated?.floors() ?? new Map<string, { needed: number; capacity: number }>()
    // A device's outcome FPS: the rounds of the live job (else the first) its speed alone would finish.
    const states = coordinator.jobStates()
    const liveUnits = this.tracks.unitsPerRound((states.find((j) => j.class === 'live') ?? states[0])?.jobId)
    const devices: DeviceRow[] = []
    let browsers = 0
    for (const row of coordinator.participantRows()) {
      const link = byId.get(row.id)
      if (link === undefined) continue
      const browser = link.agent.startsWith('crowdmesh-web')
      if (browser) browsers++
      devices.push([
        row.id,
        this.addressOf(row.id) ?? link.address,
        agentName(link.agent),
        /webgl/i.test(link.agent) ? 'WebGL' : 'CPU',
        row.cores,
        round(row.dutyCycle, 2),
        Math.round(row.rttMs),
        round(row.meanMsPerThread, 4),
        Math.round(row.threadsProcessed),
        Math.round(row.threadsAssigned),
        liveUnits > 0 ? round(row.threadsPerSec / liveUnits, 2) : 0,
        trust.get(row.id) ?? '',
        (row.kinds ?? []).map((k) => k.split('@')[0]).join(' '),
        dedicated.has(row.id),
        Math.round((now - link.connectedAt) / 1000),
      ])
    }
    const jobs: ConsoleJob[] = states.map((job) => ({
      jobId: job.jobId,
      kind: job.kind,
      class: job.class,
      weight: job.weight,
      state: job.paused ? 'paused' : 'running',
      openRounds: job.openRounds,
      queuedUnits: Math.round(job.queuedUnits),
      ...this.tracks.figures(job.jobId),
      floor: floors.get(job.jobId) ?? null,
    }))
    for (const job of jobs) this.lastStates.set(job.jobId, job)
    // Ended jobs stay on the console as they last were, marked ended.
    for (const jobId of this.tracks.endedJobs()) {
      if (jobs.some((j) => j.jobId === jobId)) continue
      const last = this.lastStates.get(jobId)
      jobs.push({
        ...(last ?? { jobId, kind: '', class: 'batch', weight: 0, floor: null }),
        state: 'ended',
        openRounds: 0,
        queuedUnits: 0,
        ...this.tracks.figures(jobId),
        floor: null,
      })
    }
    return {
      event: this.event,
      atS: round((now - this.startedAt) / 1000, 1),
      devices,
      jobs,
      alerts: this.alerts(now, devices.length, floors),
      crowd: {
        participants: devices.length,
        browsers,
        nodes: devices.length - browsers,
        dedicated: devices.filter((d) => d[13]).length,
      },
      series: whole ? this.tracks.histories() : this.tracks.newest(),
      seriesWhole: whole,
    }
  }

  /** Carries out an action of the page; answers what the page shows of it. */
  act(action: ConsoleAction): Record<string, unknown> {
    const { coordinator, host } = this.init
    // The operator's acts are the event's audit trail.
    this.log(`operator: ${JSON.stringify(action)}`)
    switch (action.action) {
      case 'pause':
        coordinator.pauseJob(action.jobId)
        break
      case 'resume':
        coordinator.resumeJob(action.jobId)
        break
      case 'end':
        coordinator.endJob(action.jobId)
        break
      case 'weight':
        coordinator.setWeight(action.jobId, action.weight)
        break
      case 'remove':
        if (!host.remove(action.participantId, action.reason))
          throw new UnknownParticipantError(`participant ${action.participantId} is not connected`)
        break
      case 'link':
        return { link: this.init.mintLink(action.role, action.ttlSeconds), role: action.role }
      case 'floor':
        if (this.dedicated === undefined)
          throw new CrowdmeshError('this event runs no dedicated devices (crowdmesh start --dedicated N)')
        if (!coordinator.jobs.some((j) => j.jobId === action.jobId))
          throw new UnknownJobError(`job ${action.jobId} is not running`)
        this.dedicated.setFloor(action.jobId, action.unitsPerSec)
        break
    }
    this.changed()
    return { done: action.action }
  }

  /** The event's recordings, newest first, with their share links. */
  async listRecordings(): Promise<ConsoleRecording[]> {
    return (await this.recordings?.list(consoleDefaults.maxRecordingsListed)) ?? []
  }

  /** Stops its timers and listeners; viewers get nothing more. Safe twice. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const off of this.unlisten.splice(0)) off()
    this.listeners.clear()
    for (const timer of [this.tickTimer, this.changeTimer, this.sampleTimer]) this.clock.clearTimer(timer)
  }

  private alerts(
    now: number,
    participants: number,
    floors: Map<string, { needed: number; capacity: number }>,
  ): ConsoleAlert[] {
    const alerts: ConsoleAlert[] = []
    const since = (at: number) => round((at - this.startedAt) / 1000, 1)
    const raise = (id: string, level: ConsoleAlert['level'], text: string) =>
      alerts.push({ id, level, text, sinceS: since(this.tracks.conditionSince(id, now)) })
    const health = this.init.health?.()
    if (health?.turn === 'down')
      raise(
        'turn',
        'error',
        'coturn is down: participants behind strict NATs cannot connect until it restarts',
      )
    if (health?.relay === 'down')
      raise('relay', 'error', 'the circuit relay is down: nobody new can reach the coordinator')
    const min = this.init.minParticipants ?? consoleDefaults.minParticipants
    if (participants < min)
      raise('crowd', 'warning', `${participants} participants connected, below the ${min} wanted`)
    for (const [jobId, floor] of floors)
      if (floor.capacity < floor.needed)
        raise(
          `floor:${jobId}`,
          'warning',
          `job ${jobId}: the crowd computes ${Math.round(floor.capacity)} units/s of the ${Math.round(floor.needed)} it needs`,
        )
    const storage = this.recordings?.storage()
    if (storage !== undefined && storage.usedBytes >= consoleDefaults.diskWarnShare * storage.maxTotalBytes)
      raise(
        'disk',
        storage.usedBytes >= storage.maxTotalBytes ? 'error' : 'warning',
        `recordings take ${Math.round((100 * storage.usedBytes) / storage.maxTotalBytes)} % of their quota (${gib(storage.usedBytes)} of ${gib(storage.maxTotalBytes)})`,
      )
    for (const [id, q] of this.quarantines) {
      if (now - q.at > consoleDefaults.quarantineAlertMs) this.quarantines.delete(id)
      else alerts.push({ id: `quarantined:${id}`, level: 'warning', text: q.text, sinceS: since(q.at) })
    }
    this.tracks.conditionsNow(alerts.map((a) => a.id))
    return alerts
  }

  /** A participant's address from `addressOf`, remembered while it is connected (bounded). */
  private addressOf(participantId: string): string | undefined {
    if (this.init.addressOf === undefined) return undefined
    let address = this.addresses.get(participantId)
    if (address === undefined) {
      address = this.init.addressOf(participantId)
      if (address === undefined) return undefined
      if (this.addresses.size >= maxAddresses) this.addresses.delete(this.addresses.keys().next().value!)
      this.addresses.set(participantId, address)
    }
    return address
  }

  private sample(): void {
    if (this.closed) return
    this.tracks.sample(this.init.host.connected().length)
    this.sampleTimer = this.clock.setTimer(() => this.sample(), consoleDefaults.sampleMs)
  }

  private scheduleTick(): void {
    this.tickTimer = this.clock.setTimer(() => {
      this.send()
      this.scheduleTick()
    }, consoleDefaults.tickMs)
  }

  /** Something the table shows changed: viewers hear of it within the debounce. */
  private changed(): void {
    if (this.listeners.size === 0 || this.changeTimer !== undefined) return
    this.changeTimer = this.clock.setTimer(() => {
      this.changeTimer = undefined
      this.send()
    }, consoleDefaults.changeDebounceMs)
  }

  private send(): void {
    if (this.listeners.size === 0) return
    const snapshot = this.snapshot(false)
    for (const listener of this.listeners) listener(snapshot)
  }
}

/** `crowdmesh-web/webgl Chrome 131` → `Chrome 131`; `crowdmesh-node/v24.9.0` → `Node v24.9.0`. */
function agentName(agent: string): string {
  const web = /^crowdmesh-web\/\S+\s*(.*)$/.exec(agent)
  if (web !== null) return web[1] === '' ? 'browser' : web[1]!
  const node = /^crowdmesh-node\/(\S+)/.exec(agent)
  if (node !== null) return `Node ${node[1]}`
  return agent.slice(0, 60)
}

function round(value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`
}

export type { SeriesPoint }
