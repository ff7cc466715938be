import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot, templeDir } from '../support/fixtures.ts'
import { untilState } from '../support/participant-page.ts'
import { expectQuarantined } from '../support/quarantine.ts'

/*
 * Right answers from a crowd with liars in it, over the real mesh (README, "Trust"): three honest Node
 * participants, a browser computing with WebGL, and two lying Node participants (random colours from
 * the first result; honest for 100 blocks, then lying) colour templeSparseRing. The coordinator
 * spot-checks every result against its own CPU computation from the same frames: the liars are
 * quarantined and disconnected, what they gave to open frames is withdrawn and computed again, and
 * the outcome equals one machine's CPU run within ±1. Nobody honest is accused (the browser's WebGL
 * differs from the CPU by at most 1).
 */

const grid = 32
/** Small fixed blocks: each participant returns a hundred of them within the first frames. */
const blockVertices = 512
const frames = 3
const liar = join(repoRoot, 'test', 'support', 'lying-participant.ts')
let dataset: MultiViewDataset
let event: RunningEvent<FrameOutcome>
let browser: Browser
let reference: FrameOutcome
const processes: ParticipantProcess[] = []

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 1 })).outcome
  event = await startEvent({
    coordinator: { jobs: [vertexJobInit(datasetJob(dataset, grid), { blockVertices })] },
    turn: 'auto',
  })
  browser = await launchChromium()
}, 120_000)

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await browser?.close()
  await event?.stop()
})

function runFrame(index: number): Promise<FrameOutcome> {
  const done = new Promise<FrameOutcome>((resolve) => {
    const onComplete = (outcome: FrameOutcome) => {
      if (outcome.frameIndex !== index) return
      event.coordinator.off('frameComplete', onComplete)
      resolve(outcome)
    }
    event.coordinator.on('frameComplete', onComplete)
  })
  for (const frame of dataset.frames) event.addFrame({ ...frame, index })
  return done
}

describe('validation over the real mesh', () => {
  it('three honest Node participants, a browser and two liars colour templeSparseRing as one CPU does; the liars are quarantined, nobody else', async () => {
    const quarantined: { participantId: string; reason: string; withdrawn: number }[] = []
    event.coordinator.on('participantQuarantined', (q) => quarantined.push(q))
    const withdrawn: string[] = []
    event.coordinator.on('resultWithdrawn', ({ participantId }) => withdrawn.push(participantId))

    const context = await browser.newContext()
    const page = await context.newPage()
    const pageErrors: string[] = []
    page.on('pageerror', (e) => pageErrors.push(e.message))
    await page.goto(`${event.joinLink}?duty=1&backend=webgl`)
    const honest = [0, 1, 2].map(() => new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    const random = new ParticipantProcess(event.joinLink, {
      entry: liar,
      options: { model: 'random', dutyCycle: 1, cores: 1 },
    })
    const sleeper = new ParticipantProcess(event.joinLink, {
      entry: liar,
      options: { model: 'sleeper', honestFirst: 100, dutyCycle: 1, cores: 1 },
    })
    processes.push(...honest, random, sleeper)
    await untilState(page, (s) => s.phase === 'computing', 'the page to join')
    const welcomes = await Promise.all([...honest, random, sleeper].map((p) => p.waitFor('welcome')))
    const ids = welcomes.map((w) => w.participantId)
    const liars = new Set(ids.slice(3))

    for (let index = 0; index < frames; index++) {
      const outcome = await runFrame(index)
      // Same vertices decided, colours within ±1 per channel of the CPU run, in every frame.
      expect(outcome.coloured, `frame ${index}`).toBe(reference.coloured)
      expect(Buffer.compare(outcome.decision, reference.decision), `frame ${index}`).toBe(0)
      let maxDiff = 0
      for (let i = 0; i < reference.colour.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs(outcome.colour[i]! - reference.colour[i]!))
      expect(maxDiff, `frame ${index}`).toBeLessThanOrEqual(1)
    }

    // Both liars caught, and only they; told why, and disconnected for good.
    expect(new Set(quarantined.map((q) => q.participantId))).toEqual(liars)
    for (const q of quarantined) expect(q.reason).toMatch(/vertex \d+ of camera \d+ is \(/)
    for (const p of [random, sleeper]) await expectQuarantined(p)
    // The sleeper behaved first: its honest results stayed, its lies were withdrawn or refused.
    const stats = event.coordinator.statistics()
    const rows = new Map(stats.trust.map((row) => [row.identity, row]))
    expect(rows.get(ids[4]!)!.checksPassed).toBeGreaterThanOrEqual(100)
    for (const id of ids.slice(0, 3)) {
      expect(rows.get(id)!.state).not.toBe('quarantined')
      expect(rows.get(id)!.checksFailed).toBe(0)
    }
    // The honest did the work: every thread of every frame counted once.
    expect(stats.threadsCounted).toBe(frames * grid ** 3 * dataset.cameras.length)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
    for (const p of honest) expect(p.child.exitCode).toBeNull()
    expect((await untilState(page, (s) => s.blocksDone > 0, 'the browser to compute')).phase).toBe(
      'computing',
    )
    expect(pageErrors).toEqual([])
    expect(withdrawn.every((id) => liars.has(id))).toBe(true)
  }, 300_000)
})
