import { describe, expect, it } from 'vitest'
import { Coordinator, type JobInit } from '../../peer/coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { EventConsole } from '../../peer/console/event-console.ts'
import type { ConsoleSnapshot } from '../../peer/console/console-protocol.ts'
import { imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec, TaskBase } from '../../peer/jobs/kind.ts'
import { DedicatedDevices } from '../../peer/mesh/dedicated-devices.ts'
import { consoleDefaults, dedicatedDefaults } from '../../peer/protocol/defaults.ts'
import { LiveCrowd } from '../../peer/simulator/live-crowd.ts'
import { terminalQr } from '../../peer/console/qr.ts'
import jsQRModule from 'jsqr'
import { manualClock } from '../support/manual-clock.ts'

/*
 * The operator's console behind its page, and dedicated devices, on the real coordinator driven by a
 * simulated crowd on a manual clock: pause, resume and weights act on the scheduling; the snapshot
 * shows who is connected and each job's figures; dedicated participants start when the crowd is
 * short of a floor, and stop, without flapping, when it has enough.
 */

const unitsPerImage = 4096
const imageJob = (jobId: string): JobSpec => ({
  jobId,
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: imageFilterKind.simulation.job(jobId, unitsPerImage),
})

function setup(jobs: JobInit<LedgerSummary>[]) {
  const time = manualClock()
  const coordinator = new Coordinator<LedgerSummary, TaskBase>(
    { jobs: jobs.map((j) => ({ sinks: ledgerSinks(), ...j })), scheduling: { speculation: false } },
    { clock: time.clock },
  )
  const crowd = new LiveCrowd(coordinator, time.clock)
  return { coordinator, time, crowd }
}

function addImages(
  coordinator: Coordinator<LedgerSummary, TaskBase>,
  spec: JobSpec,
  from: number,
  count: number,
) {
  for (let i = from; i < from + count; i++)
    for (const input of imageFilterKind.simulation.inputs(spec as never, i, unitsPerImage))
      coordinator.addInput(spec.jobId, i, input)
}

describe('the operator console', () => {
  it('pauses, resumes and reweighs jobs: leases follow', () => {
    const a = imageJob('a')
    const b = imageJob('b')
    const { coordinator, time, crowd } = setup([
      { spec: a, kind: imageFilterKind },
      { spec: b, kind: imageFilterKind },
    ])
    addImages(coordinator, a, 0, 200)
    addImages(coordinator, b, 0, 200)
    const granted = new Map<string, number>()
    coordinator.on('leaseGranted', ({ jobId, units }) =>
      granted.set(jobId, (granted.get(jobId) ?? 0) + units),
    )
    coordinator.pauseJob('a')
    expect(coordinator.jobStates().find((j) => j.jobId === 'a')!.paused).toBe(true)
    crowd.join('p1', { threadsPerSec: 40_000 })
    time.advance(5_000)
    expect(granted.get('a') ?? 0).toBe(0)
    expect(granted.get('b')).toBeGreaterThan(0)
    coordinator.resumeJob('a')
    granted.clear()
    // Resumed at the least share of its class: it shares from now on, it does not repay the pause.
    coordinator.setWeight('a', 3)
    time.advance(20_000)
    const ratio = granted.get('a')! / granted.get('b')!
    expect(ratio).toBeGreaterThan(2.4)
    expect(ratio).toBeLessThan(3.6)
    expect(() => coordinator.setWeight('a', 0)).toThrow(/above 0/)
    expect(() => coordinator.pauseJob('nope')).toThrow(/not running/)
    crowd.stop()
  })

  it("streams snapshots: devices within the change debounce of joining and leaving, each job's figures and diagram, alerts", () => {
    const live = imageJob('show')
    const { coordinator, time, crowd } = setup([{ spec: live, kind: imageFilterKind, class: 'live' }])
    const eventConsole = new EventConsole({
      event: 'e1',
      coordinator: coordinator,
      host: crowd,
      clock: time.clock,
      mintLink: (role, ttl) => `http://x/join/e1/${role}-${ttl}`,
      health: () => ({ turn: 'down', relay: 'up' }),
    })
    const snapshots: ConsoleSnapshot[] = []
    const unwatch = eventConsole.watch((s) => snapshots.push(s))
    expect(snapshots[0]!.seriesWhole).toBe(true)
    expect(snapshots[0]!.alerts.map((a) => a.id).sort()).toEqual(['crowd', 'turn'])
    crowd.join('p1', {
      threadsPerSec: 30_000,
      agent: 'crowdmesh-web/webgl Chrome 131',
      address: '10.0.0.7:5000',
    })
    time.advance(consoleDefaults.changeDebounceMs)
    const joined = snapshots.at(-1)!
    expect(joined.devices.map((d) => d[0])).toEqual(['p1'])
    expect(joined.devices[0]!.slice(1, 4)).toEqual(['10.0.0.7:5000', 'Chrome 131', 'WebGL'])
    expect(joined.crowd).toMatchObject({ participants: 1, browsers: 1, nodes: 0 })
    expect(joined.alerts.map((a) => a.id)).toEqual(['turn'])
    for (let second = 0; second < 12; second++) {
      addImages(coordinator, live, second, 1)
      time.advance(1000)
    }
    const later = snapshots.at(-1)!
    expect(later.seriesWhole).toBe(false)
    const job = later.jobs[0]!
    expect(job).toMatchObject({ jobId: 'show', state: 'running', class: 'live' })
    expect(job.roundsCompleted).toBeGreaterThanOrEqual(10)
    expect(job.rate).toBeGreaterThan(0.8)
    expect(job.latencyP95).toBeGreaterThan(0)
    expect(later.series.show).toHaveLength(1)
    expect(later.devices[0]![8]).toBeGreaterThan(0)
    // Whole diagrams for a console opened now: one point a second since the start.
    expect(eventConsole.snapshot(true).series.show!.length).toBeGreaterThanOrEqual(12)
    const before = snapshots.length
    crowd.leave('p1')
    time.advance(consoleDefaults.changeDebounceMs)
    expect(snapshots.length).toBe(before + 1)
    expect(snapshots.at(-1)!.devices).toEqual([])
    // Actions: a link minted with its expiry, a job paused, an unknown participant refused.
    expect(eventConsole.act({ action: 'link', role: 'recorder', ttlSeconds: 3600 })).toMatchObject({
      link: 'http://x/join/e1/recorder-3600',
    })
    eventConsole.act({ action: 'pause', jobId: 'show' })
    expect(eventConsole.snapshot().jobs[0]!.state).toBe('paused')
    expect(() => eventConsole.act({ action: 'remove', participantId: 'p9', reason: 'spam' })).toThrow(
      /not connected/,
    )
    unwatch()
    const count = snapshots.length
    time.advance(5_000)
    expect(snapshots.length).toBe(count)
    eventConsole.close()
    crowd.stop()
  })

  it('alerts on a quarantined participant (for a while), the recordings near their quota and the relay down', () => {
    const live = imageJob('show')
    const { coordinator, time, crowd } = setup([{ spec: live, kind: imageFilterKind, class: 'live' }])
    let relay: 'up' | 'down' = 'up'
    const eventConsole = new EventConsole({
      event: 'e1',
      coordinator: coordinator,
      host: crowd,
      clock: time.clock,
      mintLink: () => '',
      health: () => ({ turn: 'up', relay }),
      minParticipants: 0,
    })
    let used = 10
    eventConsole.attachRecordings({
      list: () => Promise.resolve([]),
      storage: () => ({ usedBytes: used, maxTotalBytes: 100 }),
    })
    expect(eventConsole.snapshot().alerts).toEqual([])
    used = 95
    relay = 'down'
    // The coordinator's own event, as its validation emits it when a check refutes a result.
    coordinator.emit('participantQuarantined', {
      participantId: 'peer-liar-0001',
      reason: 'a wrong colour',
      withdrawn: 2,
    })
    const alerts = eventConsole.snapshot().alerts
    expect(alerts.map((a) => [a.id, a.level])).toEqual([
      ['relay', 'error'],
      ['disk', 'warning'],
      ['quarantined:peer-liar-0001', 'warning'],
    ])
    expect(alerts[2]!.text).toMatch(/quarantined: a wrong colour/)
    used = 100
    expect(eventConsole.snapshot().alerts.find((a) => a.id === 'disk')?.level).toBe('error')
    // A condition's start is kept while it lasts; the quarantine alert goes after its time.
    time.advance(consoleDefaults.quarantineAlertMs + 1000)
    const later = eventConsole.snapshot().alerts
    expect(later.map((a) => a.id)).toEqual(['relay', 'disk'])
    expect(later[0]!.sinceS).toBe(alerts[0]!.sinceS)
    eventConsole.close()
    crowd.stop()
  })

  it('dedicated devices start while the crowd is short of a floor, one at a time, and stop with hysteresis', () => {
    const live = imageJob('show')
    const { coordinator, time, crowd } = setup([{ spec: live, kind: imageFilterKind, class: 'live' }])
    let launched = 0
    let running = 0
    const pool = new DedicatedDevices({
      coordinator: coordinator,
      connected: () => crowd.connected(),
      clock: time.clock,
      link: 'http://x/join/e/dedicated',
      label: 'dedicated-link',
      max: 3,
      floors: { show: 50_000 },
      launch: () => {
        const id = `d${++launched}`
        running++
        crowd.join(id, { threadsPerSec: 20_000, label: 'dedicated-link' })
        let resolveExit: () => void = () => {}
        const exited = new Promise<void>((r) => (resolveExit = r))
        return {
          exited,
          stop: () => {
            running--
            crowd.leave(id)
            resolveExit()
            return exited
          },
        }
      },
    })
    // The show: 12 images a second, 49,152 units: more than the dedicated participants compute.
    let frame = 0
    const show = () => {
      addImages(coordinator, live, frame, 12)
      frame += 12
      time.clock.setTimer(show, 1000)
    }
    show()
    time.advance(dedicatedDefaults.startAfterMs - 1000)
    expect(launched).toBe(0)
    time.advance(2000)
    expect(launched).toBe(1)
    // One at a time, each measured before the next: 3 × 20,000 reach the floor of 50,000.
    time.advance(30_000)
    expect(launched).toBe(3)
    expect(pool.participants().size).toBe(3)
    expect(pool.floors().get('show')).toEqual({ needed: 50_000, capacity: 0 })
    // A crowd of 55,000 has the floor (50,000) but not the floor plus the margin (62,500): two of
    // the three stop, one at a time, and the third stays (no flapping at the floor).
    crowd.join('c1', { threadsPerSec: 55_000 })
    time.advance(dedicatedDefaults.stopAfterMs + 2000)
    expect(running).toBe(2)
    time.advance(dedicatedDefaults.stopAfterMs * 4)
    expect(running).toBe(1)
    expect(launched).toBe(3)
    // The crowd alone has the floor and the margin: the last one stops.
    crowd.join('c2', { threadsPerSec: 10_000 })
    time.advance(dedicatedDefaults.stopAfterMs * 2)
    expect(running).toBe(0)
    expect(launched).toBe(3)
    // The crowd leaves: they come back.
    crowd.leave('c1')
    crowd.leave('c2')
    time.advance(dedicatedDefaults.startAfterMs + 2000)
    expect(launched).toBe(4)
    void pool.stop()
    crowd.stop()
  })

  it("the terminal's QR code of a join link decodes to the link", () => {
    const link = `http://192.168.1.20:40001/join/e1a2b3c4/${'eyJldmVudCI6ImUxYTJiM2M0Iiwicm9sZSI6InBhcnRpY2lwYW50In0'.repeat(2)}.sig-_0`
    // Each character holds two modules, top and bottom: the terminal's foreground is light.
    const lines = terminalQr(link)
      .split('\n')
      .map((line) => line.replaceAll(String.fromCharCode(27), '').replace(/\[[\d;]*m/g, ''))
    const light: Record<string, [boolean, boolean]> = {
      '█': [true, true],
      ' ': [false, false],
      '▀': [true, false],
      '▄': [false, true],
    }
    const width = lines[0]!.length
    const rows = lines.flatMap((line) => [0, 1].map((half) => [...line].map((c) => light[c]![half]!)))
    const scale = 4
    const rgba = new Uint8ClampedArray(width * scale * rows.length * scale * 4)
    for (const [y, row] of rows.entries())
      for (const [x, isLight] of row.entries())
        for (let dy = 0; dy < scale; dy++)
          for (let dx = 0; dx < scale; dx++) {
            const at = ((y * scale + dy) * width * scale + x * scale + dx) * 4
            rgba.fill(isLight ? 255 : 0, at, at + 3)
            rgba[at + 3] = 255
          }
    // Not inverted: a phone reads dark modules as dark.
    expect(
      jsQRModule.default(rgba, width * scale, rows.length * scale, { inversionAttempts: 'dontInvert' })?.data,
    ).toBe(link)
  })
})
