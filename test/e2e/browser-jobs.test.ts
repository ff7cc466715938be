import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { filterRect } from '../../peer/jobs/image-filter/filter.ts'
import {
  type FilteredImage,
  type ImageFilterJob,
  imageFilterKind,
} from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec, TaskBase } from '../../peer/jobs/kind.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { outcomeEnvelopeBytes } from '../../peer/mesh/gossip.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { meshDefaults } from '../../peer/protocol/defaults.ts'
import { decodePng } from '../../peer/participant/png.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { templeDir } from '../support/fixtures.ts'
import type { AppState } from '../../peer/browser/app-state.ts'
import { untilState } from '../support/participant-page.ts'

/*
 * Two jobs of different kinds in one event, computed by browsers (WebGL 2 from SwiftShader here) and
 * a Node participant: a live vertex job and a batch image-filter job. A browser loads a kind's
 * worker on its first task of that kind; both outcomes must match one machine's CPU run within ±1
 * per channel.
 */

const grid = 32
let dataset: MultiViewDataset
let event: RunningEvent
let browser: Browser
let reference: FrameOutcome
const node: ParticipantProcess[] = []
const photos: JobSpec<ImageFilterJob> = {
  jobId: 'photos',
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: { filter: { type: 'gaussian', radius: 2, sigma: 1 }, tile: 128 },
}

function maxDifference(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length)
  let max = 0
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!))
  return max
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 1 })).outcome
  event = await startEvent({
    coordinator: {
      jobs: [
        { spec: vertexJobSpec(datasetJob(dataset, grid)), kind: vertexKind, class: 'live' },
        { spec: photos, kind: imageFilterKind },
      ],
    },
  })
  browser = await launchChromium()
}, 120_000)

afterAll(async () => {
  await Promise.all(node.map((p) => p.stop('SIGKILL')))
  await browser?.close()
  await event?.stop()
})

describe('browser participants in an event of two jobs', () => {
  it('browsers and a Node participant run a live vertex job and a batch image-filter job at once, both within ±1 of one CPU', async () => {
    const pages = await Promise.all(
      [0, 1].map(async () => {
        const page = await (await browser.newContext()).newPage()
        const errors: string[] = []
        page.on('pageerror', (e) => errors.push(e.message))
        await page.goto(`${event.joinLink}?duty=1&backend=webgl`)
        return Object.assign(page, { errors })
      }),
    )
    node.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    const ids = new Set<string>()
    for (const page of pages)
      ids.add((await untilState(page, (s) => s.phase === 'computing', 'the page to join')).participantId)
    await node[0]!.waitFor('welcome')

    // Which kinds the browsers computed, from the coordinator's side.
    const browserKinds = new Set<string>()
    event.coordinator.on(
      'blockDone',
      ({ block, participantId }: { block: TaskBase; participantId: string }) => {
        if (ids.has(participantId)) browserKinds.add(block.jobId === 'photos' ? 'image-filter' : 'vertex')
      },
    )
    const outcomes = new Map<string, unknown>()
    event.coordinator.on('frameComplete', (outcome: unknown, report: FrameReport) =>
      outcomes.set(`${report.jobId}/${report.frameIndex}`, outcome),
    )
    const urls = dataset.frames.slice(0, 4).map((f) => f.imageUrl)
    for (const [i, url] of urls.entries()) {
      const image = decodePng(await readFile(fileURLToPath(url)))
      event.addInput('photos', i, { imageUrl: url, width: image.width, height: image.height })
    }
    for (const frame of dataset.frames) event.addFrame({ ...frame, index: 0 })
    const deadline = Date.now() + 240_000
    while (outcomes.size < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200))
    expect(outcomes.size).toBe(5)

    const show = outcomes.get(`${event.coordinator.jobs[0]!.jobId}/0`) as FrameOutcome
    expect(show.coloured).toBe(reference.coloured)
    expect(Buffer.compare(show.decision, reference.decision)).toBe(0)
    expect(maxDifference(show.colour, reference.colour)).toBeLessThanOrEqual(1)
    for (const [i, url] of urls.entries()) {
      const filtered = outcomes.get(`photos/${i}`) as FilteredImage
      const image = decodePng(await readFile(fileURLToPath(url)))
      const whole = filterRect(image, photos.description.filter, {
        x: 0,
        y: 0,
        w: image.width,
        h: image.height,
      })
      expect(maxDifference(filtered.rgba, whole)).toBeLessThanOrEqual(1)
    }
    // Each page shows an outcome of the image job under its 3D viewer: the gossiped thumbnail, pixel
    // for pixel, and its caption. Which round's depends on gossip (a page may miss one), so the
    // state and the canvas are read together and held to that round's thumbnail.
    const room = meshDefaults.maxGossipBytes - outcomeEnvelopeBytes(photos.jobId)
    for (const page of pages) {
      await untilState(
        page,
        (s) => s.otherJobs.some((job) => job.jobId === 'photos'),
        "an image job's outcome on the page",
      )
      const drawn = await page.evaluate(() => {
        const shown = (globalThis as unknown as { crowdmesh: { state: AppState } }).crowdmesh.state.otherJobs
        const figure = document.querySelector('[data-job="photos"]')!
        const canvas = figure.querySelector('canvas')!
        const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
        return { shown, pixels: [...pixels], caption: figure.querySelector('figcaption')!.textContent }
      })
      const round = drawn.shown[0]!.frameIndex
      const filtered = outcomes.get(`photos/${round}`) as FilteredImage
      const thumbnail = imageFilterKind.outcome.decode(imageFilterKind.outcome.encode(filtered, photos, room))
      expect(drawn.shown).toEqual([
        {
          jobId: 'photos',
          kind: 'image-filter',
          frameIndex: round,
          items: 640 * 480,
          pictureWidth: thumbnail.width,
          pictureHeight: thumbnail.height,
        },
      ])
      expect(maxDifference(Uint8Array.from(drawn.pixels), thumbnail.rgba)).toBe(0)
      expect(drawn.caption).toBe(`photos (image-filter): round ${round}, 307,200 done`)
    }
    // The browsers computed tasks of both kinds (each kind's worker loaded on its first task).
    expect([...browserKinds].sort()).toEqual(['image-filter', 'vertex'])
    expect(event.coordinator.statistics().threadsCounted).toBe(
      grid ** 3 * dataset.cameras.length + 4 * 640 * 480,
    )
    for (const page of pages) expect(page.errors).toEqual([])
  }, 300_000)
})
