import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { filterRect } from '../../peer/jobs/image-filter/filter.ts'
import {
  type FilteredImage,
  type ImageFilterJob,
  imageFilterKind,
} from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec } from '../../peer/jobs/kind.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { decodePng } from '../../peer/participant/png.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * One event, two jobs of different kinds over the real mesh: a live vertex job (the templeSparseRing
 * show) and a batch image-filter job (temple photographs, Gaussian-filtered tile by tile), with Node
 * participant processes that run both kinds. Each outcome must equal what one machine computes alone.
 */

const grid = 32
let dataset: MultiViewDataset
let event: RunningEvent
let reference: FrameOutcome
const processes: ParticipantProcess[] = []
const images: JobSpec<ImageFilterJob> = {
  jobId: 'photos',
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: { filter: { type: 'gaussian', radius: 3, sigma: 1.5 }, tile: 128 },
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 2 })).outcome
  event = await startEvent({
    coordinator: {
      jobs: [
        { spec: vertexJobSpec(datasetJob(dataset, grid)), kind: vertexKind, class: 'live' },
        { spec: images, kind: imageFilterKind },
      ],
    },
    relayKey: await generateKeyPair('Ed25519'),
  })
}, 60_000)

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await event?.stop()
})

/** The whole photograph filtered on this machine at once: what the stitched tiles must equal. */
async function filteredWhole(url: string): Promise<Uint8Array> {
  const image = decodePng(await readFile(fileURLToPath(url)))
  return filterRect(image, images.description.filter, { x: 0, y: 0, w: image.width, h: image.height })
}

describe('an event running two jobs of different kinds over the real mesh', () => {
  it('Node participants compute a live vertex frame and a batch of filtered photographs at once, both exactly as one machine alone', async () => {
    const outcomes = new Map<string, { outcome: unknown; report: FrameReport }>()
    event.coordinator.on('frameComplete', (outcome: unknown, report: FrameReport) =>
      outcomes.set(`${report.jobId}/${report.frameIndex}`, { outcome, report }),
    )
    const crowd = [0, 1].map(() => {
      const p = new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 })
      processes.push(p)
      return p
    })
    for (const p of crowd) {
      const welcome = await p.waitFor('welcome')
      // Every participant is told of both jobs, and runs both kinds.
      expect(welcome.jobs).toEqual([
        { jobId: expect.any(String), kind: 'vertex', runs: true },
        { jobId: 'photos', kind: 'image-filter', runs: true },
      ])
    }
    // Three photographs to filter, and one frame of the show.
    const photos = dataset.frames.slice(0, 3).map((f) => f.imageUrl)
    for (const [i, url] of photos.entries()) {
      const image = decodePng(await readFile(fileURLToPath(url)))
      event.addInput('photos', i, { imageUrl: url, width: image.width, height: image.height })
    }
    for (const frame of dataset.frames) event.addFrame({ ...frame, index: 0 })
    const deadline = Date.now() + 90_000
    while (outcomes.size < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const showId = event.coordinator.jobs[0]!.jobId
    expect([...outcomes.keys()].sort()).toEqual(['photos/0', 'photos/1', 'photos/2', `${showId}/0`])

    const show = outcomes.get(`${showId}/0`)!.outcome as FrameOutcome
    expect(show.coloured).toBe(reference.coloured)
    expect(Buffer.compare(show.decision, reference.decision)).toBe(0)
    expect(Buffer.compare(show.colour, reference.colour)).toBe(0)
    for (const [i, url] of photos.entries()) {
      const { outcome, report } = outcomes.get(`photos/${i}`)!
      const filtered = outcome as FilteredImage
      expect(report.dropped).toBe(false)
      expect(Buffer.compare(filtered.rgba, await filteredWhole(url))).toBe(0)
    }
    // Every unit of both jobs counted once, and both participants computed.
    const stats = event.coordinator.statistics()
    expect(stats.threadsCounted).toBe(grid ** 3 * dataset.cameras.length + 3 * 640 * 480)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
    for (const p of crowd) expect((await p.waitFor('firstLease')).ms).toBeGreaterThan(0)
  }, 150_000)
})
