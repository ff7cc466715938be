import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { generateFrameKey, keyedUrl, openKeyedImage } from '../../peer/protocol/frame-keys.ts'
import { templeDir } from '../support/fixtures.ts'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

/*
 * Per-frame keys over the real mesh: the frame store serves only sealed images, leases carry the
 * frame's key, results come back sealed, and the outcome is exactly the unkeyed one.
 */

const grid = 32
let dataset: MultiViewDataset
let event: RunningEvent<FrameOutcome>
const processes: ParticipantProcess[] = []

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  event = await startEvent({
    coordinator: { jobs: [vertexJobInit(datasetJob(dataset, grid))] },
    frameKeys: true,
    turn: 'off',
  })
}, 60_000)

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  await event?.stop()
})

describe('per-frame keys', () => {
  it('a sealed frame is unreadable from its URL alone and opens with its key', async () => {
    const key = await generateFrameKey()
    const frame = dataset.frames[0]!
    const sealed = await event.frames.publishSealed(frame, key)
    expect(sealed.imageUrl).not.toMatch(/\.png|templeSR/)
    const served = new Uint8Array(await (await fetch(sealed.imageUrl)).arrayBuffer())
    const png = await readFile(fileURLToPath(frame.imageUrl))
    // Not a PNG, and no run of the file shows through.
    expect(Buffer.from(served.subarray(0, 8)).equals(png.subarray(0, 8))).toBe(false)
    expect(Buffer.from(served).includes(png.subarray(100, 164))).toBe(false)
    expect(Buffer.from(await openKeyedImage(served, keyedUrl(sealed.imageUrl, key))).equals(png)).toBe(true)
    // Another frame's key does not open it.
    await expect(openKeyedImage(served, keyedUrl(sealed.imageUrl, await generateFrameKey()))).rejects.toThrow(
      /does not authenticate/,
    )
    event.frames.release(sealed.imageUrl)
    expect((await fetch(sealed.imageUrl)).status).toBe(404)
  })

  it('Node participants colour a keyed frame exactly as an unkeyed run', async () => {
    const reference: FrameOutcome = (await runLocalJob({ dataset, grid, participants: 1 })).outcome
    const done = new Promise<FrameOutcome>((resolve) => event.coordinator.once('frameComplete', resolve))
    for (const frame of dataset.frames) event.addFrame(frame)
    for (let i = 0; i < 2; i++)
      processes.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    const outcome = await done
    expect(outcome.coloured).toBe(reference.coloured)
    expect(Buffer.compare(outcome.colour, reference.colour)).toBe(0)
    expect(event.coordinator.statistics().threadsCounted).toBe(grid ** 3 * dataset.cameras.length)
  }, 120_000)
})
