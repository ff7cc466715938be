import { VertexCoordinator, type VertexCoordinatorInit } from '../../peer/jobs/vertex/coordinator.ts'
import { describe, expect, it } from 'vitest'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { MessageTooLargeError } from '../../peer/protocol/errors.ts'
import type { Block } from '../../peer/jobs/vertex/block.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { frameImage } from '../../peer/participant/frame-image.ts'
import { testCamera, testJob } from '../support/fixtures.ts'
import { manualClock } from '../support/manual-clock.ts'

const image = frameImage(64, 48, new Uint8Array(64 * 48 * 4).fill(180))
const job = testJob(4, [testCamera(0), { ...testCamera(1), t: [0.1, 0, 2] }])
const frame = (cameraId: number, index: number) => ({
  cameraId,
  index,
  captureTime: index,
  imageUrl: 'file:///f.png',
})
const compute = (lease: Lease<Block>) => colourBlock(job, lease.block, image)
const capability = (threadsPerSec: number, rttMs = 0) => ({
  cores: 4,
  threadsPerSec,
  bandwidthBytesPerSec: 0,
  rttMs,
  dutyCycle: 1,
})

function setup(init: Partial<VertexCoordinatorInit> = {}) {
  const time = manualClock()
  const coordinator = new VertexCoordinator(
    { job, blockVertices: 16, scheduling: { calibrationDeadlineMs: 1000, speculation: false }, ...init },
    { clock: time.clock },
  )
  const outcomes: FrameOutcome[] = []
  const dropped: FrameReport[] = []
  const cancelled: number[] = []
  coordinator.on('frameComplete', (o) => outcomes.push(o))
  coordinator.on('frameDropped', (r) => dropped.push(r))
  coordinator.on('leaseCancelled', ({ leaseId }) => cancelled.push(leaseId))
  return { coordinator, outcomes, dropped, cancelled, ...time }
}

function drain(coordinator: VertexCoordinator, participant = 'p') {
  let lease = coordinator.handleLeaseRequest(participant)
  while (lease !== undefined) {
    coordinator.handleBlockResult(participant, lease.leaseId, compute(lease))
    lease = coordinator.handleLeaseRequest(participant)
  }
}

describe('Coordinator', () => {
  it('drops a round whose task fails on maxTaskFailures participants, with the reason, and goes on with the next', () => {
    const { coordinator, outcomes, dropped } = setup({
      scheduling: { maxTaskFailures: 3, speculation: false },
    })
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(0, 1))
    coordinator.addFrame(frame(1, 1))
    const failing = coordinator.handleLeaseRequest('a')!
    expect(failing.block.frameIndex).toBe(0)
    coordinator.handleBlockFailed('a', failing.leaseId, 'VideoInputError: corrupt')
    // The same task comes back and fails twice more, on other participants: the round ends.
    for (const participant of ['b', 'c']) {
      const again = coordinator.handleLeaseRequest(participant)!
      expect(again.block).toEqual(failing.block)
      coordinator.handleBlockFailed(participant, again.leaseId, 'VideoInputError: corrupt')
    }
    expect(dropped.map((r) => [r.frameIndex, r.error])).toEqual([
      [0, 'a task failed on 3 participants: VideoInputError: corrupt'],
    ])
    drain(coordinator)
    expect(outcomes.map((o) => o.frameIndex)).toEqual([1])
    expect(coordinator.audit().unaccountedThreads).toBe(0)
  })

  it('leases every block once and decides the frame when all results are in', () => {
    const { coordinator, outcomes } = setup()
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    expect(coordinator.queuedVertices).toBe(128)
    drain(coordinator)
    expect(outcomes).toHaveLength(1)
    expect(outcomes[0]!.frameIndex).toBe(0)
    expect(coordinator.idle).toBe(true)
    const stats = coordinator.statistics()
    expect(stats.framesCompleted).toBe(1)
    expect(stats.threadsCounted).toBe(128)
    expect(stats.participants[0]).toMatchObject({ id: 'p', threadsProcessed: 128, threadsAssigned: 128 })
  })

  it('lets a participant hold at most maxLeasesPerParticipant leases, and two only where its round trip is worth hiding', () => {
    const { coordinator } = setup()
    coordinator.addFrame(frame(0, 0))
    expect(coordinator.handleLeaseRequest('p', capability(1000, 50))).toBeDefined()
    expect(coordinator.handleLeaseRequest('p', capability(1000, 50))).toBeDefined()
    expect(coordinator.handleLeaseRequest('p', capability(1000, 50))).toBeUndefined()
    expect(coordinator.activeLeases).toBe(2)
    // 16 threads at 10/s take 1.6 s: a 5 ms round trip is not worth a second lease.
    expect(coordinator.handleLeaseRequest('q', capability(10, 5))).toBeDefined()
    expect(coordinator.handleLeaseRequest('q', capability(10, 5))).toBeUndefined()
  })

  it('answers standby (undefined) when there is no work, and announces new work', () => {
    const { coordinator } = setup()
    expect(coordinator.handleLeaseRequest('p')).toBeUndefined()
    let announced = 0
    coordinator.on('workQueued', () => announced++)
    coordinator.addFrame(frame(0, 0))
    expect(announced).toBe(1)
    expect(coordinator.handleLeaseRequest('p')).toBeDefined()
  })

  it('sizes blocks to the stated speed, then to the observed one', () => {
    const time = manualClock()
    const coordinator = new VertexCoordinator(
      { job: testJob(16, [testCamera(0)]), scheduling: { targetBlockMs: 100, minBlockVertices: 8 } },
      { clock: time.clock },
    )
    coordinator.addFrame(frame(0, 0))
    // 2,000 threads/s × 100 ms = 200 vertices.
    const first = coordinator.handleLeaseRequest('p', capability(2000))!
    expect(first.block.vertexCount).toBe(200)
    // It took 1 s for 200 threads: observed 200 threads/s, so the next block is 20 vertices.
    time.advance(1000)
    coordinator.handleBlockResult(
      'p',
      first.leaseId,
      colourBlock(testJob(16, [testCamera(0)]), first.block, image),
    )
    expect(coordinator.handleLeaseRequest('p', capability(2000))!.block.vertexCount).toBe(20)
    // An unmeasured participant gets a calibration block.
    expect(coordinator.handleLeaseRequest('q')!.block.vertexCount).toBe(1024)
  })

  it('serves earlier frames first and puts an expired block ahead of later frames', () => {
    const { coordinator, advance } = setup()
    coordinator.addFrame(frame(0, 1))
    coordinator.addFrame(frame(0, 0))
    const first = coordinator.handleLeaseRequest('slow')!
    expect(first.block.frameIndex).toBe(0)
    for (let i = 0; i < 3; i++) {
      const l = coordinator.handleLeaseRequest('fast')!
      expect(l.block.frameIndex).toBe(0)
      coordinator.handleBlockResult('fast', l.leaseId, compute(l))
    }
    const requeued: Lease<Block>[] = []
    coordinator.on('leaseRequeued', (l) => requeued.push(l))
    advance(1001)
    expect(requeued.map((l) => l.leaseId)).toEqual([first.leaseId])
    const again = coordinator.handleLeaseRequest('fast')!
    expect(again.block).toEqual(first.block)
  })

  it('counts the first valid result even from an expired lease, and cancels the newer copy', () => {
    const { coordinator, advance, cancelled } = setup()
    coordinator.addFrame(frame(0, 0))
    const late = coordinator.handleLeaseRequest('slow')!
    advance(1001)
    const again = coordinator.handleLeaseRequest('fast')!
    expect(again.block).toEqual(late.block)
    expect(coordinator.handleBlockResult('slow', late.leaseId, compute(late))).toBe(true)
    expect(cancelled).toEqual([again.leaseId])
    expect(coordinator.handleBlockResult('fast', again.leaseId, compute(again))).toBe(false)
    expect(coordinator.statistics().threadsWasted).toBe(16)
  })

  it('re-queues the leases of a participant that leaves', () => {
    const { coordinator, pending } = setup()
    coordinator.addFrame(frame(0, 0))
    coordinator.handleLeaseRequest('gone')
    coordinator.handleLeaseRequest('gone')
    expect(coordinator.queuedVertices).toBe(32)
    coordinator.handleParticipantGone('gone')
    expect(coordinator.queuedVertices).toBe(64)
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
    const lying = compute(b)
    lying.colours.set([9, 9, 9, 0], 0)
    expect(coordinator.handleBlockResult('p2', b.leaseId, lying)).toBe(false)
    expect(rejected).toEqual([
      'BlockMismatchError',
      'BlockMismatchError',
      'BlockMismatchError',
      'InvalidMessageError',
    ])
    drain(coordinator, 'p3')
    expect(outcomes).toHaveLength(1)
  })

  it('backs up the last block of a frame on a faster idle participant; the first result wins', () => {
    const { coordinator, advance, cancelled } = setup({ scheduling: { speculation: true } })
    coordinator.addFrame(frame(0, 0))
    // Measure both: the fast one returns its block in 10 ms, the slow one will take long. The fast one's
    // round trip (10 ms) is long beside its blocks, so it may hold two leases at once.
    const fast = capability(4000, 10)
    const f1 = coordinator.handleLeaseRequest('fast', fast)!
    const s1 = coordinator.handleLeaseRequest('slow', capability(10))!
    advance(10)
    coordinator.handleBlockResult('fast', f1.leaseId, compute(f1))
    const f2 = coordinator.handleLeaseRequest('fast', fast)!
    const f3 = coordinator.handleLeaseRequest('fast', fast)!
    advance(10)
    coordinator.handleBlockResult('fast', f2.leaseId, compute(f2))
    coordinator.handleBlockResult('fast', f3.leaseId, compute(f3))
    // Nothing new left: the fast participant gets a copy of the slow one's block.
    const backup = coordinator.handleLeaseRequest('fast', fast)!
    expect(backup.block).toEqual(s1.block)
    expect(coordinator.handleBlockResult('fast', backup.leaseId, compute(backup))).toBe(true)
    expect(cancelled).toContain(s1.leaseId)
    // The slow participant's copy arrives later and does not count twice.
    expect(coordinator.handleBlockResult('slow', s1.leaseId, compute(s1))).toBe(false)
    expect(coordinator.statistics()).toMatchObject({ threadsCounted: 64, threadsWasted: 16 })
  })

  it('live mode: drops a frame that misses its latency budget, and says so', () => {
    const { coordinator, advance, dropped, cancelled } = setup({
      live: { latencyBudgetMs: 500, overload: 'drop' },
    })
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    const lease = coordinator.handleLeaseRequest('p')!
    coordinator.handleBlockResult('p', lease.leaseId, compute(lease))
    const held = coordinator.handleLeaseRequest('p')!
    advance(501)
    expect(dropped).toHaveLength(1)
    expect(dropped[0]).toMatchObject({ frameIndex: 0, dropped: true, latencyMs: 500 })
    expect(cancelled).toContain(held.leaseId)
    expect(coordinator.idle).toBe(true)
    // Its late result is refused and the frame does not come back.
    expect(coordinator.handleBlockResult('p', held.leaseId, compute(held))).toBe(false)
    coordinator.addFrame(frame(0, 0))
    expect(coordinator.idle).toBe(true)
    expect(coordinator.statistics()).toMatchObject({ framesDropped: 1, framesCompleted: 0 })
  })

  it('live mode: admits a frame on a coarser grid when the crowd is too slow for the budget', () => {
    const { coordinator } = setup({ live: { latencyBudgetMs: 1000, overload: 'downgrade' } })
    const downgraded: number[] = []
    coordinator.on('frameDowngraded', ({ level }) => downgraded.push(level))
    // 40 threads/s: a 4³ × 2 frame (128 threads) takes 3.2 s; at level 1 (2³ × 2 = 16 threads) 0.4 s.
    coordinator.handleLeaseRequest('p', capability(40))
    coordinator.addFrame(frame(0, 0))
    expect(downgraded).toEqual([1])
    expect(coordinator.queuedVertices).toBe(8)
  })

  it('refuses frames of unknown cameras and clears its timers on stop (twice is safe)', () => {
    const { coordinator, pending } = setup({ live: { latencyBudgetMs: 500, overload: 'drop' } })
    expect(() => coordinator.addFrame(frame(7, 0))).toThrow(
      expect.objectContaining({ name: 'BlockMismatchError' }),
    )
    coordinator.addFrame(frame(0, 0))
    coordinator.handleLeaseRequest('p')
    expect(pending()).toBe(2)
    coordinator.stop()
    coordinator.stop()
    expect(pending()).toBe(0)
    expect(coordinator.handleLeaseRequest('p')).toBeUndefined()
  })

  it('push mode: hands leases to joined participants with spare capacity, fastest first', () => {
    const time = manualClock()
    const coordinator = new VertexCoordinator({ job, blockVertices: 16, mode: 'push' }, { clock: time.clock })
    const offered: [string, Lease<Block>][] = []
    coordinator.on('leaseOffered', ({ participantId, lease }) => offered.push([participantId, lease]))
    coordinator.handleParticipantJoined('slow', capability(10, 100))
    coordinator.handleParticipantJoined('fast', capability(4000, 100))
    expect(offered).toHaveLength(0)
    coordinator.addFrame(frame(0, 0))
    // The fast one is served first, and takes two (its round trip is long beside its block); the slow
    // one takes one (a second would only wait behind its first).
    expect(offered.map(([p]) => p)).toEqual(['fast', 'fast', 'slow'])
    // A result frees a slot, and the sender is offered the next block at once.
    const [, first] = offered[0]!
    coordinator.handleBlockResult('fast', first.leaseId, compute(first))
    expect(offered).toHaveLength(4)
    expect(offered[3]![0]).toBe('fast')
    // A participant that leaves is not offered its own blocks back.
    coordinator.handleParticipantGone('slow')
    expect(offered.slice(4).every(([p]) => p === 'fast')).toBe(true)
  })

  it('keeps a counted result counted when a frameComplete listener throws', () => {
    const { coordinator, outcomes } = setup()
    const rejected: unknown[] = []
    coordinator.on('resultRejected', (r) => rejected.push(r))
    // A crowdmesh error, as a host encoding the outcome for gossip could throw (MessageTooLargeError).
    coordinator.on('frameComplete', () => {
      throw new MessageTooLargeError(2 ** 21, 2 ** 20)
    })
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    let lease = coordinator.handleLeaseRequest('p')
    let thrown: unknown
    while (lease !== undefined && thrown === undefined) {
      try {
        coordinator.handleBlockResult('p', lease.leaseId, compute(lease))
      } catch (error) {
        thrown = error
      }
      lease = coordinator.handleLeaseRequest('p')
    }
    // The listener's error reaches its caller; the result that completed the frame stays counted.
    expect((thrown as Error).name).toBe('MessageTooLargeError')
    expect(rejected).toEqual([])
    expect(outcomes).toHaveLength(1)
    const stats = coordinator.statistics()
    expect(stats.framesCompleted).toBe(1)
    expect(stats.threadsCounted).toBe(128)
    expect(coordinator.audit().unaccountedThreads).toBe(0)
  })

  /** A round sink complete once the round's 8 blocks are added, deciding with `finish`. */
  function countingSink(finish: () => FrameOutcome | Promise<FrameOutcome>) {
    let added = 0
    return {
      add: () => {
        added++
        return 'added' as const
      },
      withdraw: () => added--,
      get complete() {
        return added === 8
      },
      finish,
    }
  }

  it('reports a frame whose outcome cannot be decided as dropped, with the reason', () => {
    const { coordinator, outcomes, dropped } = setup({
      frameSinks: () =>
        countingSink(() => {
          throw new Error('the decision failed')
        }),
    })
    coordinator.addFrame(frame(0, 0))
    coordinator.addFrame(frame(1, 0))
    drain(coordinator)
    expect(outcomes).toEqual([])
    expect(dropped).toHaveLength(1)
    expect(dropped[0]).toMatchObject({ frameIndex: 0, dropped: true, error: 'the decision failed' })
    expect(coordinator.idle).toBe(true)
  })

  /** A coordinator whose frames are decided by promises the test settles (the vertex kind's DecideThread). */
  function deferredSetup(init: Partial<VertexCoordinatorInit> = {}) {
    const decisions: PromiseWithResolvers<FrameOutcome>[] = []
    const deciding: number[] = []
    const setupDone = setup({
      ...init,
      frameSinks: ({ plan }) =>
        countingSink(() => {
          const decision = Promise.withResolvers<FrameOutcome>()
          decisions.push(decision)
          deciding.push(plan.frameIndex)
          return decision.promise
        }),
    })
    const reports: FrameReport[] = []
    setupDone.coordinator.on('frameComplete', (_outcome, report) => reports.push(report))
    const addRound = (index: number) => {
      setupDone.coordinator.addFrame(frame(0, index))
      setupDone.coordinator.addFrame(frame(1, index))
    }
    return { ...setupDone, decisions, deciding, reports, addRound }
  }
  const decided = (frameIndex: number) => ({ frameIndex }) as unknown as FrameOutcome
  const settle = () => new Promise((r) => setImmediate(r))

  it('ends a round at once when its outcome is decided off the event loop, and decides rounds one at a time, in order', async () => {
    const { coordinator, outcomes, dropped, advance, decisions, deciding, reports, addRound } =
      deferredSetup()
    for (const index of [0, 1, 2]) addRound(index)
    // Round 0 completes and is being decided: round 1's tasks are leased meanwhile and it waits its
    // turn; round 2, complete while two rounds wait (`maxDecidingRounds`), is dropped and says why.
    drain(coordinator)
    expect(deciding).toEqual([0])
    expect(outcomes).toEqual([])
    expect(dropped.map((r) => [r.frameIndex, r.error])).toEqual([
      [2, '2 earlier rounds are still being decided'],
    ])
    expect(coordinator.activeLeases).toBe(0)
    expect(coordinator.openRounds(job.jobId)).toBe(2)
    expect(coordinator.idle).toBe(false)
    // Round 0's outcome comes when its decision settles, and round 1's decision starts then.
    advance(400)
    decisions[0]!.resolve(decided(0))
    await settle()
    expect(outcomes.map((o) => o.frameIndex)).toEqual([0])
    expect(deciding).toEqual([0, 1])
    advance(100)
    decisions[1]!.resolve(decided(1))
    await settle()
    expect(outcomes.map((o) => o.frameIndex)).toEqual([0, 1])
    // The latency runs to when the outcome was known.
    expect(reports.map((r) => r.latencyMs)).toEqual([400, 500])
    expect(coordinator.idle).toBe(true)
    expect(coordinator.statistics().framesCompleted).toBe(2)
    // A decision that fails drops its round, with the reason; the next round is decided as ever.
    addRound(3)
    addRound(4)
    drain(coordinator)
    decisions[2]!.reject(new Error('the deciding thread exited (code 1)'))
    await settle()
    decisions[3]!.resolve(decided(4))
    await settle()
    expect(deciding).toEqual([0, 1, 3, 4])
    expect(dropped.map((r) => [r.frameIndex, r.error])).toEqual([
      [2, '2 earlier rounds are still being decided'],
      [3, 'the deciding thread exited (code 1)'],
    ])
    expect(outcomes.map((o) => o.frameIndex)).toEqual([0, 1, 4])
    expect(coordinator.audit().unaccountedThreads).toBe(0)
  })

  it("decides a live job's newest round next: a newer round replaces the one waiting", async () => {
    const { coordinator, outcomes, dropped, decisions, deciding, addRound } = deferredSetup({
      live: { latencyBudgetMs: 60_000, overload: 'drop' },
    })
    for (const index of [0, 1, 2, 3]) addRound(index)
    drain(coordinator)
    // Round 0 is being decided; rounds 1 and 2 each waited until a newer one completed.
    expect(deciding).toEqual([0])
    expect(dropped.map((r) => [r.frameIndex, r.error])).toEqual([
      [1, 'superseded by round 2 while an earlier round was decided'],
      [2, 'superseded by round 3 while an earlier round was decided'],
    ])
    decisions[0]!.resolve(decided(0))
    await settle()
    expect(deciding).toEqual([0, 3])
    decisions[1]!.resolve(decided(3))
    await settle()
    expect(outcomes.map((o) => o.frameIndex)).toEqual([0, 3])
    expect(coordinator.idle).toBe(true)
  })
})
