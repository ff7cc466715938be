import { describe, expect, it } from 'vitest'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import type { FrameOutcome } from '../../peer/coordinator/outcome.ts'
import { colourBlock } from '../../peer/participant/cpu-worker.ts'
import { frameImage } from '../../peer/participant/frame-image.ts'
import type { Clock } from '../../peer/protocol/clock.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import { testCamera, testJob } from '../support/fixtures.ts'

/** A clock that moves only when the test says so. */
function manualClock() {
  let now = 0
  const timers = new Map<number, { at: number; fn: () => void }>()
  let next = 1
  const clock: Clock = {
    now: () => now,
    setTimer: (fn, ms) => {
      timers.set(next, { at: now + ms, fn })
      return next++
    },
    clearTimer: (h) => {
      timers.delete(h as number)
    },
  }
  const advance = (ms: number) => {
    now += ms
    for (const [h, t] of [...timers].sort((a, b) => a[1].at - b[1].at)) {
      if (t.at > now) continue
      timers.delete(h)
      t.fn()
    }
  }
  return { clock, advance, pending: () => timers.size }
}

const image = frameImage(64, 48, new Uint8Array(64 * 48 * 4).fill(180))
const job = testJob(4, [testCamera(0), { ...testCamera(1), t: [0.1, 0, 2] }])
const frame = (cameraId: number, index: number) => ({
  cameraId,
  index,
  captureTime: index,
  imageUrl: 'file:///f.png',
})
const compute = (lease: Lease) => colourBlock(job, lease.block, image)

function setup() {
  const time = manualClock()
  const coordinator = new Coordinator({ job, blockVertices: 16, leaseTimeoutMs: 1000 }, { clock: time.clock })
  const outcomes: FrameOutcome[] = []
  coordinator.on('frameComplete', (o) => outcomes.push(o))
  return { coordinator, outcomes, ...time }
}

describe('Coordinator', () => {
  it('leases every block once and decides the frame when all results are in', () => {
    const { coordinator, outcomes } = setup()
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    expect(coordinator.queuedBlocks).toBe(8)
    let lease = coordinator.handleLeaseRequest('p1')
    while (lease !== undefined) {
      expect(coordinator.handleBlockResult('p1', lease.leaseId, compute(lease))).toBe(true)
      lease = coordinator.handleLeaseRequest('p1')
    }
    expect(outcomes).toHaveLength(1)
    expect(outcomes[0]!.frameIndex).toBe(0)
    expect(coordinator.idle).toBe(true)
  })

  it('answers standby (undefined) when there is no work, and announces new work', () => {
    const { coordinator } = setup()
    expect(coordinator.handleLeaseRequest('p1')).toBeUndefined()
    let announced = 0
    coordinator.on('workQueued', () => announced++)
    coordinator.addFrame(frame(0, 0))
    expect(announced).toBe(1)
    expect(coordinator.handleLeaseRequest('p1')).toBeDefined()
  })

  it('serves earlier frames first and puts an expired block ahead of later frames', () => {
    const { coordinator, advance } = setup()
    coordinator.addFrame(frame(0, 1))
    coordinator.addFrame(frame(0, 0))
    const first = coordinator.handleLeaseRequest('slow')!
    expect(first.block.frameIndex).toBe(0)
    // Drain frame 0 but for the slow lease.
    for (let i = 0; i < 3; i++) {
      const l = coordinator.handleLeaseRequest('fast')!
      expect(l.block.frameIndex).toBe(0)
      coordinator.handleBlockResult('fast', l.leaseId, compute(l))
    }
    const requeued: Lease[] = []
    coordinator.on('leaseRequeued', (l) => requeued.push(l))
    advance(1001)
    expect(requeued.map((l) => l.leaseId)).toEqual([first.leaseId])
    const again = coordinator.handleLeaseRequest('fast')!
    expect(again.block).toEqual(first.block)
    // The slow participant's late result no longer counts; the new lease's does.
    expect(coordinator.handleBlockResult('slow', first.leaseId, compute(first))).toBe(false)
    expect(coordinator.handleBlockResult('fast', again.leaseId, compute(again))).toBe(true)
  })

  it('re-queues the leases of a participant that leaves', () => {
    const { coordinator, pending } = setup()
    coordinator.addFrame(frame(0, 0))
    coordinator.handleLeaseRequest('gone')
    coordinator.handleLeaseRequest('gone')
    expect(coordinator.queuedBlocks).toBe(2)
    coordinator.handleParticipantGone('gone')
    expect(coordinator.queuedBlocks).toBe(4)
    expect(coordinator.activeLeases).toBe(0)
    expect(pending()).toBe(0)
  })

  it('rejects a result for another lease or block, keeps serving, and re-queues the block', () => {
    const { coordinator, outcomes } = setup()
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    const rejected: string[] = []
    coordinator.on('resultRejected', (r) => rejected.push(r.error.name))
    const a = coordinator.handleLeaseRequest('p1')!
    const b = coordinator.handleLeaseRequest('p2')!
    expect(coordinator.handleBlockResult('p2', a.leaseId, compute(a))).toBe(false)
    expect(coordinator.handleBlockResult('p1', a.leaseId, compute(b))).toBe(false)
    expect(coordinator.handleBlockResult('p1', 999, compute(a))).toBe(false)
    expect(rejected).toEqual(['BlockMismatchError', 'BlockMismatchError', 'BlockMismatchError'])
    coordinator.handleBlockResult('p2', b.leaseId, compute(b))
    let lease = coordinator.handleLeaseRequest('p3')
    while (lease !== undefined) {
      coordinator.handleBlockResult('p3', lease.leaseId, compute(lease))
      lease = coordinator.handleLeaseRequest('p3')
    }
    expect(outcomes).toHaveLength(1)
  })

  it('refuses frames of unknown cameras and clears its timers on stop (twice is safe)', () => {
    const { coordinator, pending } = setup()
    expect(() => coordinator.addFrame(frame(7, 0))).toThrow(
      expect.objectContaining({ name: 'BlockMismatchError' }),
    )
    coordinator.addFrame(frame(0, 0))
    coordinator.handleLeaseRequest('p')
    expect(pending()).toBe(1)
    coordinator.stop()
    coordinator.stop()
    expect(pending()).toBe(0)
    expect(coordinator.handleLeaseRequest('p')).toBeUndefined()
  })
})
