import { VertexCoordinator } from '../../peer/jobs/vertex/coordinator.ts'
import { describe, expect, it } from 'vitest'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import { threadMesh } from '../../peer/local/thread-mesh.ts'
import { systemClock } from '../../peer/protocol/clock.ts'
import type { VertexJob } from '../../peer/jobs/vertex/block.ts'
import { targetSpace } from '../../peer/jobs/vertex/target-space.ts'
import { templeDir } from '../support/fixtures.ts'

async function runWith(
  job: VertexJob,
  frames: Awaited<ReturnType<typeof loadMiddlebury>>['frames'],
  leaveAfter?: number,
) {
  const coordinator = new VertexCoordinator({ job, blockVertices: 4096 }, { clock: systemClock })
  const mesh = await threadMesh(coordinator, { participants: 2 })
  let blocks = 0
  const byParticipant = new Map<string, number>()
  coordinator.on('blockDone', ({ participantId }) => {
    blocks++
    byParticipant.set(participantId, (byParticipant.get(participantId) ?? 0) + 1)
    if (blocks === leaveAfter) void mesh.disconnect('thread-0')
  })
  const outcome = new Promise<FrameOutcome>((resolve) => coordinator.once('frameComplete', resolve))
  for (const frame of frames) coordinator.addFrame(frame)
  try {
    return { outcome: await outcome, byParticipant, left: mesh.participantIds }
  } finally {
    coordinator.stop()
    await mesh.stop()
  }
}

describe('participant threads', () => {
  it('lose nothing when a participant leaves mid-job: the outcome equals an undisturbed run', async () => {
    const set = await loadMiddlebury(templeDir)
    const job: VertexJob = {
      jobId: 'mesh',
      space: targetSpace(set.box, 32),
      cameras: set.cameras.slice(0, 6),
      maxAreaRadius: 8,
      backgroundSum: 130,
    }
    const frames = set.frames.slice(0, 6)
    const clean = await runWith(job, frames)
    const disturbed = await runWith(job, frames, 5)
    expect(disturbed.left).toEqual(['thread-1'])
    expect(disturbed.byParticipant.get('thread-1')).toBeGreaterThan(
      disturbed.byParticipant.get('thread-0') ?? 0,
    )
    expect(disturbed.outcome.coloured).toBe(clean.outcome.coloured)
    expect(disturbed.outcome.decision).toEqual(clean.outcome.decision)
    expect(disturbed.outcome.colour).toEqual(clean.outcome.colour)
  })
})
