import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { PNG } from 'pngjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot, templeDir } from '../support/fixtures.ts'
import { appState, untilState } from '../support/participant-page.ts'

/*
 * Browser participants in real headless Chromium (WebGL2 from SwiftShader here): the participant web
 * app opened at the join link, joining the mesh with libp2p over WebRTC, computing with WebGL, and
 * drawing the outcome, beside a Node participant, in one event.
 */

const grid = 48
/** Where the viewer's screenshot is kept for people to look at (CI keeps out/ as an artifact). */
const artifacts = join(repoRoot, 'out', 'artifacts')
let dataset: MultiViewDataset
let event: RunningEvent<FrameOutcome>
let browser: Browser
let reference: FrameOutcome
const node: ParticipantProcess[] = []

async function openParticipant(
  query = '?duty=1&backend=webgl',
  init?: (page: Page) => Promise<unknown>,
  link = event.joinLink,
): Promise<Page> {
  // A context each: separate storage, as separate people's browsers.
  const context = await browser.newContext({ viewport: { width: 390, height: 780 } })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(e.message))
  await init?.(page)
  await page.goto(`${link}${query}`)
  return Object.assign(page, { errors })
}

function runFrame(index: number, on = event): Promise<FrameOutcome> {
  const done = new Promise<FrameOutcome>((resolve) => {
    const onComplete = (outcome: FrameOutcome) => {
      if (outcome.frameIndex !== index) return
      on.coordinator.off('frameComplete', onComplete)
      resolve(outcome)
    }
    on.coordinator.on('frameComplete', onComplete)
  })
  for (const frame of dataset.frames) on.addFrame({ ...frame, index })
  return done
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 1 })).outcome
  event = await startEvent({
    coordinator: { jobs: [vertexJobInit(datasetJob(dataset, grid))] },
    turn: 'required',
  })
  browser = await launchChromium()
  await mkdir(artifacts, { recursive: true })
}, 120_000)

afterAll(async () => {
  await Promise.all(node.map((p) => p.stop('SIGKILL')))
  await browser?.close()
  await event?.stop()
})

describe('browser participants', () => {
  it('three browsers and one Node participant colour the whole templeSparseRing job (WebGL within ±1 of the CPU run); a tab closed mid-job loses nothing; the viewer shows the outcome', async () => {
    const pages = await Promise.all([openParticipant(), openParticipant(), openParticipant()])
    node.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    for (const page of pages) {
      const s = await untilState(page, (s) => s.phase === 'computing', 'the page to join')
      expect(s.backend).toBe('webgl2')
      expect(s.participantId).not.toBe('')
    }
    await node[0]!.waitFor('welcome')

    const frame = runFrame(0)
    // Close one tab as soon as it has computed something: its leases must go to the others.
    await untilState(pages[2], (s) => s.blocksDone >= 1, 'the third page to compute a block')
    await pages[2].context().close()
    const outcome = await frame

    // Every thread counted once, whoever computed it.
    const stats = event.coordinator.statistics()
    expect(stats.threadsCounted).toBe(grid ** 3 * dataset.cameras.length)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
    // The browsers did real work, and so did the Node participant.
    const done = await Promise.all(pages.slice(0, 2).map((p) => appState(p)))
    for (const s of done) expect(s.blocksDone).toBeGreaterThan(0)
    // Same vertices decided, colours within ±1 per channel of the CPU run.
    expect(outcome.coloured).toBe(reference.coloured)
    expect(Buffer.compare(outcome.decision, reference.decision)).toBe(0)
    let maxDiff = 0
    for (let i = 0; i < reference.colour.length; i++)
      maxDiff = Math.max(maxDiff, Math.abs(outcome.colour[i]! - reference.colour[i]!))
    expect(maxDiff).toBeLessThanOrEqual(1)

    // The outcome reaches the browsers by gossip and the viewer draws it.
    for (const page of pages.slice(0, 2)) {
      const s = await untilState(page, (s) => s.frameIndex === 0 && s.points > 0, 'the outcome in the viewer')
      expect(s.colouredTotal).toBe(reference.coloured)
    }
    const shot = join(artifacts, 'viewer.png')
    await pages[0].screenshot({ path: shot })
    const viewer = PNG.sync.read(await pages[0].locator('canvas').screenshot())
    expect(litShare(viewer)).toBeGreaterThan(0.02)
    for (const page of pages.slice(0, 2)) expect((page as Page & { errors: string[] }).errors).toEqual([])
  }, 600_000)

  it('a participant who joins after a frame sees its outcome at once; by default it computes on the GPU unless WebGL is software', async () => {
    const late = await openParticipant('?duty=1')
    const s = await untilState(late, (s) => s.points > 0, 'the latest outcome', 30_000)
    expect(s.frameIndex).toBe(0)
    expect(s.colouredTotal).toBe(reference.coloured)
    const software = /swiftshader|llvmpipe/i.test(s.renderer)
    expect(s.backend).toBe(software ? 'cpu' : 'webgl2')
    if (software) expect(s.notice).toMatch(/no graphics hardware/)
  }, 60_000)

  it('Pause stops asking for work and Resume starts again; Leave leaves the event', async () => {
    const page = await openParticipant()
    await untilState(page, (s) => s.phase === 'computing', 'the page to join')
    await page.getByRole('button', { name: 'Pause' }).click()
    expect((await appState(page)).phase).toBe('paused')
    const frame = runFrame(1)
    const before = (await appState(page)).blocksDone
    // The Node participant computes the frame alone while the page is paused.
    await frame
    expect((await appState(page)).blocksDone).toBeLessThanOrEqual(before + 1)
    await page.getByRole('button', { name: 'Resume' }).click()
    expect((await appState(page)).phase).toBe('computing')
    // The coordinator sees this page leave (counting all participants would also count a tab closed
    // in an earlier test whose connection the coordinator notices late).
    const id = (await appState(page)).participantId
    const gone = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000)
      event.host.on('participantLeft', ({ participantId }) => {
        if (participantId !== id) return
        clearTimeout(timer)
        resolve(true)
      })
    })
    await page.getByRole('button', { name: 'Leave' }).click()
    const left = await untilState(page, (s) => s.phase === 'left', 'the page to leave')
    expect(left.message).toMatch(/You left the event/)
    expect(await gone).toBe(true)
  }, 120_000)

  it('with ?relay=1 Chromium connects only through the TURN relay (coturn); with per-frame keys the page opens sealed frames and seals its results', async () => {
    // Its own event, whose coordinator's ICE is on loopback, where coturn (relaying from loopback)
    // may reach it; the browser is told to use relayed candidates only, and Chromium enforces it.
    // The event seals every frame with a key of its own, handed out in leases.
    const relayed = await startEvent({
      coordinator: { jobs: [vertexJobInit(datasetJob(dataset, 32))] },
      turn: 'required',
      coordinatorIceBindAddress: '127.0.0.1',
      frameKeys: true,
    })
    const keyedReference = (await runLocalJob({ dataset, grid: 32, participants: 1 })).outcome
    const page = await openParticipant(
      '?duty=1&relay=1',
      (page) =>
        page.addInitScript(() => {
          // Keep every peer connection the page makes, to read its selected candidate pair.
          const Native = RTCPeerConnection
          const made: RTCPeerConnection[] = []
          Object.assign(globalThis, { madeConnections: made })
          globalThis.RTCPeerConnection = class extends Native {
            constructor(config?: RTCConfiguration) {
              super(config)
              made.push(this)
            }
          }
        }),
      relayed.joinLink,
    )
    await untilState(page, (s) => s.phase === 'computing', 'the relay-only page to join')
    const pairs = await page.evaluate(async () => {
      const made = (globalThis as unknown as { madeConnections: RTCPeerConnection[] }).madeConnections
      const out: { policy: string | undefined; local: string; remote: string }[] = []
      for (const pc of made) {
        if (pc.connectionState !== 'connected') continue
        const stats = [...(await pc.getStats()).values()] as Record<string, string>[]
        const transport = stats.find((s) => s.type === 'transport')
        const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId)
        const local = stats.find((s) => s.id === pair?.localCandidateId)
        const remote = stats.find((s) => s.id === pair?.remoteCandidateId)
        out.push({
          policy: pc.getConfiguration().iceTransportPolicy,
          local: local?.candidateType ?? '',
          remote: remote?.candidateType ?? '',
        })
      }
      return out
    })
    expect(pairs.length).toBeGreaterThan(0)
    for (const pair of pairs) {
      expect(pair.policy).toBe('relay')
      expect(pair.local).toBe('relay')
    }
    const keyed = await runFrame(0, relayed)
    expect(keyed.coloured).toBe(keyedReference.coloured)
    expect(Buffer.compare(keyed.decision, keyedReference.decision)).toBe(0)
    // The page was the event's only participant: it computed every thread, all through TURN.
    expect((await appState(page)).threadsDone).toBe(32 ** 3 * dataset.cameras.length)
    expect(relayed.coordinator.statistics().threadsCounted).toBe(32 ** 3 * dataset.cameras.length)
    await page.context().close()
    await relayed.stop()
  }, 180_000)

  it('says clearly when the browser has no WebRTC, and computes on the processor when it has no WebGL', async () => {
    const noRtc = await openParticipant('', (page) =>
      page.addInitScript(() => {
        delete (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection
      }),
    )
    const refused = await untilState(
      noRtc,
      (s) => s.phase === 'unsupported',
      'the unsupported message',
      10_000,
    )
    expect(refused.message).toMatch(/cannot open WebRTC connections/)
    expect(await noRtc.getByRole('status').textContent()).toMatch(/cannot take part/)

    const noGl = await openParticipant('?duty=1', (page) =>
      page.addInitScript(() => {
        // Both kinds of canvas refuse WebGL, as a browser with WebGL turned off does.
        for (const proto of [HTMLCanvasElement.prototype, OffscreenCanvas.prototype]) {
          const original = Object.getOwnPropertyDescriptor(proto, 'getContext')!.value as (
            ...a: unknown[]
          ) => unknown
          Object.defineProperty(proto, 'getContext', {
            value: function (this: unknown, type: string, ...rest: unknown[]) {
              return type.startsWith('webgl') ? null : original.call(this, type, ...rest)
            },
          })
        }
      }),
    )
    const cpu = await untilState(noGl, (s) => s.phase === 'computing', 'the page to join on the CPU')
    expect(cpu.backend).toBe('cpu')
    expect(cpu.notice).toMatch(/processor/)
    const frame = runFrame(2)
    await untilState(noGl, (s) => s.blocksDone > 0, 'a block computed on the processor')
    await frame
  }, 180_000)
})

/** Share of the image's pixels that are not the viewer's background. */
function litShare(png: PNG): number {
  let lit = 0
  for (let i = 0; i < png.data.length; i += 4) {
    const d = Math.abs(png.data[i]! - 15) + Math.abs(png.data[i + 1]! - 18) + Math.abs(png.data[i + 2]! - 23)
    if (d > 24) lit++
  }
  return lit / (png.width * png.height)
}
