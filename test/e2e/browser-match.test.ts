import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import type { TaskBase } from '../../peer/jobs/kind.ts'
import { fingerprintJobInit, type MatchRunResult, runMatchRun } from '../../peer/jobs/match/match-run.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { type RunningEvent, startEvent } from '../../peer/mesh/event.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot, templeDir } from '../support/fixtures.ts'
import { untilState } from '../support/participant-page.ts'

/*
 * A match run beside the live 3D job, whose only participants are browsers: two headless Chromium
 * pages join the event by its link, as phones would, and take the live job's blocks, every
 * fingerprint task (decoding the videos in the page with WebCodecs, or the <video> element for the
 * MKV) and every match task (fetching the references' fingerprint files). The 3D frame must be
 * coloured and the matches must be the ground truth's for these videos.
 */

const datasetDir = join(repoRoot, '..', 'shared', 'data', 'video-matching')
let event: RunningEvent
let browser: Browser
const pages: (Page & { errors: string[] })[] = []
const browserIds = new Set<string>()
const tasksByJob = new Map<string, number>()
let otherTasks = 0
let result: MatchRunResult
let coloured = 0

beforeAll(async () => {
  const dataset = await loadMiddlebury(templeDir)
  event = await startEvent({
    coordinator: {
      jobs: [
        { spec: vertexJobSpec(datasetJob(dataset, 32)), kind: vertexKind, class: 'live' },
        fingerprintJobInit('web'),
      ],
      // A short run: trusted after 3 results in a row (README, "Trust"; its own tests keep the defaults).
      validation: { trustAfter: 3 },
    },
    turn: 'off',
  })
  browser = await launchChromium()
  for (let i = 0; i < 2; i++) {
    const page = Object.assign(await (await browser.newContext()).newPage(), { errors: [] as string[] })
    page.on('pageerror', (e) => page.errors.push(e.message))
    await page.goto(`${event.joinLink}?duty=1`)
    browserIds.add((await untilState(page, (s) => s.phase === 'computing', 'the page to join')).participantId)
    pages.push(page)
  }
  event.coordinator.on(
    'blockDone',
    ({ block, participantId }: { block: TaskBase; participantId: string }) => {
      if (browserIds.has(participantId)) tasksByJob.set(block.jobId, (tasksByJob.get(block.jobId) ?? 0) + 1)
      else otherTasks++
    },
  )
  const frameDone = new Promise<void>((resolve) =>
    event.coordinator.on('frameComplete', (outcome: unknown, report: FrameReport) => {
      if (report.jobId !== event.coordinator.jobs[0]!.jobId) return
      coloured = (outcome as FrameOutcome).coloured
      resolve()
    }),
  )
  const video = (id: string) => ({ id, path: join(datasetDir, id) })
  // The live job's frame arrives while the crowd fingerprints: it goes first.
  setTimeout(() => {
    for (const frame of dataset.frames) event.addFrame({ ...frame, index: 0 })
  }, 2000)
  result = await runMatchRun(event, {
    name: 'web',
    queries: ['tmk/chair-19-sd-bar.mp4', 'tmk/chair-22-sd-sepia-bar.mp4', 'distractors/asl-again.mkv'].map(
      video,
    ),
    references: ['tmk/chair-orig-22-sd-bar.mp4', 'tmk/doorknob-hd-no-bar.mp4'].map(video),
    folder: join(repoRoot, 'out', 'test-browser-match'),
  })
  await frameDone
}, 300_000)

afterAll(async () => {
  await browser?.close()
  await event?.stop()
})

describe('browser participants in a match run beside the live 3D job', () => {
  it('colour the live frame, and fingerprint and match every video in the page: the matches are the ground truth’s', () => {
    expect(coloured).toBeGreaterThan(1000)
    expect(result.failed).toEqual([])
    const pairs = result.matches.map((m) => `${m.ugcId} → ${m.refId}`).sort()
    expect(pairs).toEqual([
      'tmk/chair-19-sd-bar.mp4 → tmk/chair-orig-22-sd-bar.mp4',
      'tmk/chair-22-sd-sepia-bar.mp4 → tmk/chair-orig-22-sd-bar.mp4',
    ])
    // The sepia copy is the original, frame for frame: offset 0, over nearly all of it.
    const sepia = result.matches.find((m) => m.ugcId.includes('sepia'))!
    expect(Math.abs(sepia.refStart - sepia.ugcStart)).toBeLessThanOrEqual(0.25)
    expect(sepia.ugcEnd - sepia.ugcStart).toBeGreaterThan(18)
    // Only browsers took part, and they took both kinds of task.
    expect(otherTasks).toBe(0)
    expect(tasksByJob.get('web-fingerprints') ?? 0).toBeGreaterThanOrEqual(5)
    expect(tasksByJob.get('web-matches') ?? 0).toBeGreaterThanOrEqual(3)
    expect(tasksByJob.get(event.coordinator.jobs[0]!.jobId) ?? 0).toBeGreaterThan(0)
    for (const page of pages) expect(page.errors).toEqual([])
  })
})
