import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import jsQRModule from 'jsqr'
import parsePrometheus from 'parse-prometheus-text-format'
import type { Browser, Page } from 'playwright-core'
import { PNG } from 'pngjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ConsoleProbe } from '../../peer/console/console-protocol.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { type ImageFilterJob, imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec } from '../../peer/jobs/kind.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { consoleRecordings } from '../../peer/console/console-recordings.ts'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot, templeDir } from '../support/fixtures.ts'
import { untilState } from '../support/participant-page.ts'

/*
 * The operator's console in real headless Chromium, on a real event (signaling, coturn, relay,
 * coordinator, Node and browser participants over WebRTC): participants appear and go within a
 * second, the page's actions act on the coordinator, a removed participant is told why, a QR code
 * decodes to a working join link, dedicated devices come and go, and /metrics parses and moves.
 */

// jsqr is CommonJS with a default export: Node hands its module object as the default.
const jsQR = jsQRModule.default
const live = 'show'
const photos: JobSpec<ImageFilterJob> = {
  jobId: 'photos',
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: { filter: { type: 'gaussian', radius: 2, sigma: 1 }, tile: 128 },
}
/** Where the console's screenshots are kept for the README (CI keeps out/ as an artifact). */
const artifacts = join(repoRoot, 'out', 'artifacts')
let dataset: MultiViewDataset
let event: RunningEvent
let browser: Browser
let consolePage: Page
let feed: ReturnType<typeof setInterval>
const processes: ParticipantProcess[] = []
const joinedAt = new Map<string, number>()
const leftAt = new Map<string, number>()

const probe = (): Promise<Omit<ConsoleProbe, 'scroll'>> =>
  consolePage.evaluate(() => {
    const { scroll: _scroll, ...measured } = window.crowdmeshConsole
    return measured
  })

async function until<T>(read: () => Promise<T> | T, ok: (value: T) => boolean, what: string, ms = 60_000) {
  const deadline = performance.now() + ms
  let value = await read()
  while (!ok(value)) {
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 100))
    value = await read()
  }
  return value
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  event = await startEvent({
    coordinator: {
      jobs: [
        { spec: { ...vertexJobSpec(datasetJob(dataset, 16)), jobId: live }, kind: vertexKind, class: 'live' },
        { spec: photos, kind: imageFilterKind },
      ],
    },
    turn: 'required',
    // No floor until the test sets one on the page.
    dedicated: { max: 1, floors: { [live]: 0 } },
  })
  event.host.on('participantJoined', ({ participantId }) => joinedAt.set(participantId, Date.now()))
  event.host.on('participantLeft', ({ participantId }) => leftAt.set(participantId, Date.now()))
  // The show: a frame (every camera's image) a second, for as long as the test runs.
  let index = 0
  feed = setInterval(() => {
    for (const frame of dataset.frames) event.addFrame({ ...frame, index })
    index++
  }, 1000)
  browser = await launchChromium()
  consolePage = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage()
  await consolePage.goto(event.consoleLink)
  await until(probe, (p) => p.snapshots > 0, 'the first snapshot')
  await mkdir(artifacts, { recursive: true })
}, 120_000)

afterAll(async () => {
  clearInterval(feed)
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await browser?.close()
  await event?.stop()
})

describe('the operator console', () => {
  it("lists the event's recordings with their share links", async () => {
    const root = await mkdtemp(join(tmpdir(), 'crowdmesh-console-recordings-'))
    const server = await startRecordingServer({ root })
    try {
      event.console.attachRecordings(consoleRecordings(server))
      const created = (await (
        await fetch(`${server.url}/api/recordings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${server.recorderKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ mimeType: 'video/webm;codecs=vp9' }),
        })
      ).json()) as { shareId: string }
      await consolePage.click('.recordings-refresh')
      const item = consolePage.locator('.recordings-list li.recording')
      await item.first().waitFor()
      expect(await item.count()).toBe(1)
      expect(await item.first().getAttribute('class')).toContain('recording recording')
      expect(await item.locator('a').getAttribute('href')).toBe(`${server.url}/v/${created.shareId}`)
    } finally {
      await server.close()
      await rm(root, { recursive: true, force: true })
    }
  })

  it('refuses anyone without the operator link, and a 17th console at once', async () => {
    const participantToken = event.joinLink.split('/').at(-1)!
    const asParticipant = await fetch(`${event.signaling.url}/console/${event.event}/${participantToken}`)
    expect(asParticipant.status).toBe(403)
    const forged = await fetch(`${event.consoleLink.slice(0, -3)}abc/stream`)
    expect(forged.status).toBe(403)
    const action = await fetch(`${event.consoleLink}/api/actions`, {
      method: 'POST',
      body: JSON.stringify({ action: 'end', jobId: live, extra: 1 }),
    })
    expect(action.status).toBe(400)
    expect(event.coordinator.jobs.map((j) => j.jobId)).toContain(live)
    // 16 consoles may watch at once (the page is one): the 17th is refused, and the page carries on.
    const watching = await Promise.all(
      Array.from({ length: 15 }, async () => {
        const controller = new AbortController()
        const response = await fetch(`${event.consoleLink}/stream`, { signal: controller.signal })
        expect(response.status).toBe(200)
        return controller
      }),
    )
    expect((await fetch(`${event.consoleLink}/stream`)).status).toBe(429)
    for (const controller of watching) controller.abort()
    await until(
      () => event.console.viewers,
      (n) => n === 1,
      'the streams closed',
    )
    const before = (await probe()).snapshots
    await until(probe, (p) => p.snapshots > before, 'the page to carry on')
  })

  it('a QR code decodes to a working join link; its participant shows within 1 s of joining; removing it closes its connection with the reason', async () => {
    await consolePage.selectOption('.link-role', 'participant')
    await consolePage.click('.link-create')
    const qr = consolePage.locator('canvas.qr')
    await qr.waitFor()
    const png = PNG.sync.read(await qr.screenshot())
    const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height)
    expect(decoded?.data).toMatch(new RegExp(`^${event.signaling.url}/join/${event.event}/`))
    const link = decoded!.data
    expect(link).toBe(await consolePage.locator('.link-url').textContent())
    const page = await fetch(link)
    expect(page.status).toBe(200)

    const participant = new ParticipantProcess(link, { dutyCycle: 1, cores: 1 })
    processes.push(participant)
    const { participantId } = (await participant.waitFor('welcome')) as unknown as { participantId: string }
    const seen = await until(
      probe,
      (p) => p.firstSeen[participantId] !== undefined,
      'the participant on the page',
    )
    const joinDelay = seen.firstSeen[participantId]! - joinedAt.get(participantId)!
    expect(joinDelay).toBeLessThan(1000)
    await consolePage.screenshot({ path: join(artifacts, 'console-desktop.png') })

    const row = consolePage.locator(`.devices-row[data-participant="${participantId}"]`)
    await expect.poll(() => row.locator('.c-agent').textContent()).toMatch(/^Node v/)
    await row.locator('button.remove').click()
    await consolePage.fill('.remove-reason', 'testing the console')
    await consolePage.click('.remove-confirm')
    expect(await participant.exited).toBe(1)
    const reasons = participant.events.flatMap((e) => (e.type === 'disconnected' ? [String(e.reason)] : []))
    expect(reasons.join('; ')).toMatch(/the operator removed you from the event: testing the console/)
    const gone = await until(probe, (p) => p.goneAt[participantId] !== undefined, 'the participant gone')
    expect(gone.goneAt[participantId]! - leftAt.get(participantId)!).toBeLessThan(1000)
  })

  it('pause, resume, priority and end act on the coordinator', async () => {
    const state = (jobId: string) => event.coordinator.jobStates().find((j) => j.jobId === jobId)
    const card = (jobId: string) => consolePage.locator(`article.job[data-job="${jobId}"]`)
    await card(live).locator('button.pause').click()
    await until(
      () => state(live)?.paused,
      (p) => p === true,
      'the job paused',
    )
    await expect.poll(() => card(live).getAttribute('data-state')).toBe('paused')
    await card(live).locator('button.pause').click()
    await until(
      () => state(live)?.paused,
      (p) => p === false,
      'the job resumed',
    )
    await card('photos').locator('.weight input').fill('4')
    await card('photos').locator('.weight input').press('Enter')
    await until(
      () => state('photos')?.weight,
      (w) => w === 4,
      'the new weight',
    )
    await card('photos').locator('button.end').click()
    await card('photos').locator('button.end').click()
    await until(
      () => state('photos'),
      (s) => s === undefined,
      'the job ended',
    )
    await expect.poll(() => card('photos').getAttribute('data-state')).toBe('ended')
  })

  it('a live job short of its floor gets a dedicated participant, which goes again once a browser computes; /metrics parses and its counters move', async () => {
    const metrics = async () => parsePrometheus(await (await fetch(`${event.signaling.url}/metrics`)).text())
    const value = (
      families: Awaited<ReturnType<typeof metrics>>,
      name: string,
      labels: Record<string, string> = {},
    ) =>
      (families.find((f) => f.name === name)?.metrics ?? [])
        .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
        .reduce((sum, m) => sum + Number(m.value ?? m.count ?? 0), 0)
    const before = await metrics()

    // Any capacity at all beats a floor of 1 unit/s; none is there now: a dedicated one starts.
    const floor = consolePage.locator(`article.job[data-job="${live}"] .floor-set input`)
    await floor.fill('1')
    await floor.press('Enter')
    const dedicatedRow = consolePage.locator('.devices-row.dedicated')
    await dedicatedRow.first().waitFor({ timeout: 60_000 })
    const dedicatedId = (await dedicatedRow.first().getAttribute('data-participant'))!
    expect(event.dedicated!.participants().has(dedicatedId)).toBe(true)

    // A browser joins and computes: the crowd has the floor, and the dedicated participant goes.
    const participant = await (await browser.newContext()).newPage()
    await participant.goto(`${event.joinLink}?duty=1&backend=webgl`)
    const { participantId } = await untilState(
      participant,
      (s) => s.phase === 'computing',
      'the browser to join',
    )
    await until(probe, (p) => p.firstSeen[participantId] !== undefined, 'the browser on the console')
    await expect
      .poll(() =>
        consolePage.locator(`.devices-row[data-participant="${participantId}"] .c-backend`).textContent(),
      )
      .toBe('WebGL')
    await until(probe, (p) => p.goneAt[dedicatedId] !== undefined, 'the dedicated participant gone', 90_000)
    expect(event.dedicated!.count).toBe(0)

    const after = await metrics()
    expect(value(after, 'crowdmesh_participants', { kind: 'browser', backend: 'webgl' })).toBe(1)
    for (const counter of [
      'crowdmesh_leases_granted_total',
      'crowdmesh_units_total',
      'crowdmesh_results_counted_total',
    ])
      expect(value(after, counter, { job: live }), counter).toBeGreaterThan(
        value(before, counter, { job: live }),
      )
    // Rounds completed land in the latency histogram's buckets (this parser keeps a histogram's
    // buckets, not its labels: there is one job with rounds).
    const latency = after.find((f) => f.name === 'crowdmesh_round_latency_seconds')
    expect(latency?.type).toBe('HISTOGRAM')
    expect(Number(latency?.metrics[0]?.buckets?.['+Inf'])).toBe(
      value(after, 'crowdmesh_rounds_total', { job: live }),
    )
    expect(value(after, 'crowdmesh_rounds_total', { job: live, outcome: 'completed' })).toBeGreaterThan(0)
    expect(value(after, 'crowdmesh_signaling_joins_total', { result: 'ok' })).toBeGreaterThan(0)

    // Screenshots for the README: a phone, and the laptop with a browser and a QR code.
    await consolePage.setViewportSize({ width: 390, height: 844 })
    await consolePage.waitForTimeout(1200)
    await consolePage.screenshot({ path: join(artifacts, 'console-phone.png'), fullPage: true })
    await consolePage.setViewportSize({ width: 1400, height: 1000 })
    await consolePage.waitForTimeout(1200)
    await consolePage.screenshot({ path: join(artifacts, 'console-desktop.png'), fullPage: true })
    await participant.close()
  })
})
