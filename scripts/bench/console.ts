import type { Page } from 'playwright-core'
import type { ConsoleProbe } from '../../peer/console/console-protocol.ts'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import { ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { serveConsole } from '../../peer/console/console-routes.ts'
import { EventConsole } from '../../peer/console/event-console.ts'
import { imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { AnyJobKind, JobSpec } from '../../peer/jobs/kind.ts'
import { vertexKind } from '../../peer/jobs/vertex/index.ts'
import { systemClock } from '../../peer/protocol/clock.ts'
import { LiveCrowd } from '../../peer/simulator/live-crowd.ts'
import { Random } from '../../peer/simulator/random.ts'
import { startSignaling } from '../../signaling/server.ts'
import { buildWebApp, webAppBuilt, webAppDir } from '../../signaling/web-app.ts'
import { launchChromium } from '../chromium.ts'

/** Options of the console's measurement. */
export interface ConsoleBenchInit {
  /** Simulated participants connected while the console is measured (default 1,000). */
  participants?: number
  /** Participants that join and leave, one at a time, for the update delay (default 20). */
  probes?: number
  chromiumFlags?: readonly string[]
  onProgress?: (done: number, total: number) => void
}

interface Spread {
  p50: number
  p95: number
  max: number
  n: number
}

/** What it measured. */
export interface ConsoleBenchReport {
  participants: number
  /** A participant's joining (leaving) on the coordinator to its row drawn (gone) on the page, ms. */
  joinDelayMs: Spread
  leaveDelayMs: Spread
  /** One snapshot applied and drawn by the page (1,000 rows sorted, filtered, the visible ones drawn), ms. */
  renderMs: Spread
  /**
   * Frame intervals while the devices table scrolls at 1,000 rows, ms (60 Hz: 16.7): the whole
   * pipeline (script, layout, software rasterising by SwiftShader here); and the script's share of
   * each frame (the table's draw).
   */
  scrollFrameMs: Spread & { over17ms: number }
  scrollDrawMs: Spread
  /** Frame intervals of the same page not scrolling, under the same load: the machine's own pace. */
  stillFrameMs: Spread
  /** Sorting the table by another column, on click, ms. */
  sortMs: number
  /** One snapshot: its JSON bytes, and the server's time to build and serialise it, ms. */
  snapshotBytes: number
  snapshotBuildMs: Spread
  /** Results the coordinator counted per second while measured (the load beside the console). */
  resultsPerSec: number
}

/**
 * The operator console at scale: a real coordinator (a live vertex job at 2 rounds a second beside
 * a batch image-filter job) driven by a crowd of simulated participants on the wall clock
 * (`LiveCrowd`: each leases, computes for as long as its speed says, answers), the console served
 * by a real signaling server, and the page in headless Chromium. Measures how long a join or a
 * departure takes to show, what a snapshot costs to draw, and the frame time while the table scrolls.
 */
export async function runConsoleBench(init: ConsoleBenchInit = {}): Promise<ConsoleBenchReport> {
  const size = init.participants ?? 1000
  const probes = init.probes ?? 20
  const steps = 4 + probes
  let done = 0
  const progress = () => init.onProgress?.(++done, steps)
  if (!webAppBuilt()) await buildWebApp()
  const live: JobSpec = {
    jobId: 'show',
    kind: vertexKind.name,
    version: vertexKind.version,
    description: vertexKind.simulation.job('show', 2_000_000),
  }
  const batch: JobSpec = {
    jobId: 'photos',
    kind: imageFilterKind.name,
    version: imageFilterKind.version,
    description: imageFilterKind.simulation.job('photos', 1_000_000),
  }
  const coordinator = new Coordinator(
    {
      jobs: [
        { spec: live, kind: vertexKind as AnyJobKind, class: 'live', sinks: ledgerSinks() },
        { spec: batch, kind: imageFilterKind as AnyJobKind, sinks: ledgerSinks() },
      ],
    },
    { clock: systemClock },
  )
  const crowd = new LiveCrowd(coordinator, systemClock)
  const signaling = await startSignaling({ webAppDir })
  const { event, consoleLink } = signaling.createEvent('console-bench')
  const eventConsole = new EventConsole({
    event,
    coordinator,
    host: crowd,
    clock: systemClock,
    mintLink: (role, ttl) => signaling.mintLink(event, role, ttl),
  })
  signaling.attachConsole(event, {
    serve: (rest, request, response) => serveConsole(eventConsole, rest, request, response),
  })
  let round = 0
  let batchRound = 0
  const feed = setInterval(() => {
    for (const input of vertexKind.simulation.inputs(live as never, round, 2_000_000))
      coordinator.addInput(live.jobId, round, input)
    round++
    if (coordinator.openRounds(batch.jobId) < 4) {
      for (const input of imageFilterKind.simulation.inputs(batch as never, batchRound, 1_000_000))
        coordinator.addInput(batch.jobId, batchRound, input)
      batchRound++
    }
  }, 500)
  const random = new Random(17)
  const member = (i: number) => {
    const browser = random.next() < 0.7
    return {
      threadsPerSec: 20_000 + random.next() * 200_000,
      agent: browser
        ? `crowdmesh-web/${random.next() < 0.8 ? 'webgl' : 'cpu'} ${random.next() < 0.5 ? 'Chrome 131' : 'Safari 18'}`
        : 'crowdmesh-node/v24.9.0',
      address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${40_000 + (i % 20_000)}`,
      cores: 1 + Math.floor(random.next() * 8),
      rttMs: 5 + random.next() * 80,
    }
  }
  const browser = await launchChromium(init.chromiumFlags === undefined ? {} : { flags: init.chromiumFlags })
  try {
    // The crowd arrives over five seconds, then the console opens on it.
    for (let i = 0; i < size; i++) {
      crowd.join(`p${String(i).padStart(5, '0')}`, member(i))
      if (i % 50 === 49) await pause(250)
    }
    progress()
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage()
    await page.goto(consoleLink)
    await until(async () => (await probe(page)).snapshots >= 3, 'the console to draw the crowd')
    const counted = countResults(coordinator)
    progress()

    const joins: number[] = []
    const leaves: number[] = []
    for (let i = 0; i < probes; i++) {
      const id = `probe${i}`
      // Anywhere in the tick: the delay depends on where in it the change falls.
      await pause(300 + random.next() * 1000)
      const joinedAt = Date.now()
      crowd.join(id, member(size + i))
      joins.push((await until(async () => (await probe(page)).firstSeen[id], `${id} on the page`)) - joinedAt)
      await pause(300 + random.next() * 1000)
      const leftAt = Date.now()
      crowd.leave(id)
      leaves.push((await until(async () => (await probe(page)).goneAt[id], `${id} gone`)) - leftAt)
      progress()
    }

    const still = await page.evaluate(() => window.crowdmeshConsole.scroll(3000, true))
    const drawsBefore = (await probe(page)).drawMs.length
    const scroll = await page.evaluate(() => window.crowdmeshConsole.scroll(3000))
    const draws = (await probe(page)).drawMs.slice(drawsBefore)
    const sortMs = await page.evaluate(() => {
      const heading = document.querySelector<HTMLButtonElement>('.devices-head .c-rttMs')!
      const started = performance.now()
      heading.click()
      return performance.now() - started
    })
    progress()
    const builds: number[] = []
    let bytes = 0
    for (let i = 0; i < 20; i++) {
      const started = performance.now()
      bytes = JSON.stringify(eventConsole.snapshot(false)).length
      builds.push(performance.now() - started)
    }
    const renders = (await probe(page)).renderMs
    const results = counted()
    progress()
    return {
      participants: crowd.size,
      joinDelayMs: spread(joins),
      leaveDelayMs: spread(leaves),
      renderMs: spread(renders),
      scrollFrameMs: { ...spread(scroll), over17ms: scroll.filter((ms) => ms > 17).length },
      scrollDrawMs: spread(draws),
      stillFrameMs: spread(still),
      sortMs: round1(sortMs),
      snapshotBytes: bytes,
      snapshotBuildMs: spread(builds),
      resultsPerSec: Math.round(results),
    }
  } finally {
    clearInterval(feed)
    await browser.close()
    crowd.stop()
    eventConsole.close()
    coordinator.stop()
    await signaling.close()
  }
}

async function probe(page: Page): Promise<Omit<ConsoleProbe, 'scroll'>> {
  return page.evaluate(() => {
    const { scroll: _scroll, ...measured } = window.crowdmeshConsole
    return measured
  })
}

/** Results counted from now on: a function answering the rate since. */
function countResults(coordinator: Coordinator): () => number {
  let results = 0
  const started = performance.now()
  const count = () => results++
  coordinator.on('blockDone', count)
  return () => {
    coordinator.off('blockDone', count)
    return (results * 1000) / (performance.now() - started)
  }
}

async function until<T>(read: () => Promise<T | undefined | false>, what: string, ms = 30_000): Promise<T> {
  const deadline = performance.now() + ms
  for (;;) {
    const value = await read()
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) throw new Error(`console bench: timed out waiting for ${what}`)
    await pause(20)
  }
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
  return {
    p50: round1(at(0.5)),
    p95: round1(at(0.95)),
    max: round1(sorted.at(-1) ?? Number.NaN),
    n: sorted.length,
  }
}

function round1(value: number): number {
  return Math.round(value * 10) / 10
}
