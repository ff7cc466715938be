import { describe, expect, it } from 'vitest'
import { Coordinator, type FrameReport, type JobInit } from '../../peer/coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { AnyJobKind, JobSpec, TaskBase } from '../../peer/jobs/kind.ts'
import { ringJob, vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import type { Capability } from '../../peer/protocol/capability.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import { manualClock } from '../support/manual-clock.ts'

const both = ['vertex@1', 'image-filter@1']
const capability = (kinds?: string[], threadsPerSec = 20_000): Capability => ({
  cores: 1,
  threadsPerSec,
  bandwidthBytesPerSec: 0,
  rttMs: 5,
  dutyCycle: 1,
  ...(kinds !== undefined && { kinds }),
})
const imageJob = (jobId: string): JobSpec => ({
  jobId,
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: imageFilterKind.simulation.job(jobId, 4096),
})
const kindOf = (lease: Lease<TaskBase>, jobs: Record<string, AnyJobKind>) => jobs[lease.block.jobId]!

/**
 * `count` tasks for participant p, each answered 100 ms after its grant (so its observed speed stays
 * what it states), returning the job of each.
 */
function work(
  coordinator: Coordinator<LedgerSummary, TaskBase>,
  time: ReturnType<typeof manualClock>,
  count: number,
): string[] {
  const jobs: string[] = []
  for (let i = 0; i < count; i++) {
    const lease = coordinator.handleLeaseRequest('p', capability(both))
    if (lease === undefined) break
    jobs.push(lease.block.jobId)
    time.advance(100)
    coordinator.handleBlockResult(
      'p',
      lease.leaseId,
      imageFilterKind.simulation.fakeResult(lease.block as never),
    )
  }
  return jobs
}

function setup(jobs: JobInit<LedgerSummary>[]) {
  const time = manualClock()
  const coordinator = new Coordinator<LedgerSummary, TaskBase>(
    { jobs: jobs.map((j) => ({ sinks: ledgerSinks(), ...j })), scheduling: { speculation: false } },
    { clock: time.clock },
  )
  const reports: FrameReport[] = []
  coordinator.on('frameComplete', (_, report) => reports.push(report))
  coordinator.on('frameDropped', (report) => reports.push(report))
  return { coordinator, time, reports }
}

/** Adds `count` images of 64×64 to an image job. */
function addImages(coordinator: Coordinator<LedgerSummary, TaskBase>, spec: JobSpec, count: number) {
  for (let i = 0; i < count; i++)
    for (const input of imageFilterKind.simulation.inputs(spec as never, i, 4096))
      coordinator.addInput(spec.jobId, i, input)
}

describe('several jobs in one coordinator', () => {
  it('shares batch capacity by weight, counted in reference units', () => {
    const a = imageJob('a')
    const b = imageJob('b')
    const { coordinator, time } = setup([
      { spec: a, kind: imageFilterKind, weight: 1 },
      { spec: b, kind: imageFilterKind, weight: 3 },
    ])
    addImages(coordinator, a, 100)
    addImages(coordinator, b, 100)
    // Tasks are all of one size here (one participant, one speed): their count is the share.
    const jobs = work(coordinator, time, 200)
    expect(jobs).toHaveLength(200)
    const ratio = jobs.filter((j) => j === 'b').length / jobs.filter((j) => j === 'a').length
    expect(ratio).toBeGreaterThan(2.7)
    expect(ratio).toBeLessThan(3.3)
  })

  it('never leases a kind a participant does not run: it waits on standby instead', () => {
    const images = imageJob('images')
    const { coordinator } = setup([{ spec: images, kind: imageFilterKind }])
    addImages(coordinator, images, 1)
    // No kinds stated means vertex alone (every participant before job kinds).
    expect(coordinator.handleLeaseRequest('old', capability())).toBeUndefined()
    expect(coordinator.handleLeaseRequest('gpu', capability(['vertex@1']))).toBeUndefined()
    expect(coordinator.handleLeaseRequest('v2', capability(['image-filter@2']))).toBeUndefined()
    expect(coordinator.handleLeaseRequest('new', capability(['image-filter@1']))?.block.jobId).toBe('images')
  })

  it('beside a live job: short batch tasks, and a batch task not yet started is taken back when a live round opens', () => {
    const show = vertexJobSpec(ringJob('show', 8, 2))
    const images = imageJob('images')
    const kinds = { show: vertexKind, images: imageFilterKind }
    const { coordinator } = setup([
      { spec: images, kind: imageFilterKind },
      { spec: show, kind: vertexKind, class: 'live' },
    ])
    addImages(coordinator, images, 20)
    const cancelled: { participantId: string; leaseId: number }[] = []
    coordinator.on('leaseCancelled', (c) => cancelled.push(c))
    // A long round trip, worth hiding behind a second lease; 200,000 reference units a second.
    const slow = (kinds: string[]) => ({ ...capability(kinds, 200_000), rttMs: 100 })
    const units = (lease: Lease<TaskBase>) => imageFilterKind.taskUnits(lease.block as never)
    // Images only: tasks of the full target (150 ms), and a second one hides the round trip.
    const alone = coordinator.handleLeaseRequest('r', slow(['image-filter@1']))!
    expect(kindOf(alone, kinds)).toBe(imageFilterKind)
    const aloneNext = coordinator.handleLeaseRequest('r', slow(['image-filter@1']))!
    expect(aloneNext.block.jobId).toBe('images')
    // Both kinds: batch tasks beside the live job are short (60 ms of 150).
    const beside = coordinator.handleLeaseRequest('p', slow(both))!
    expect(kindOf(beside, kinds)).toBe(imageFilterKind)
    expect(units(beside)).toBeLessThan(units(alone) / 2)
    const besideNext = coordinator.handleLeaseRequest('p', slow(both))!
    expect(besideNext.block.jobId).toBe('images')
    // A live frame arrives: p's second batch task (not started) is taken back, r's is not (r does
    // not run the live kind), and p's next lease is live though the batch job was added first.
    for (const input of vertexKind.simulation.inputs(show, 0, 0)) coordinator.addInput('show', 0, input)
    expect(cancelled).toEqual([{ participantId: 'p', leaseId: besideNext.leaseId }])
    expect(coordinator.handleLeaseRequest('p', slow(both))?.block.jobId).toBe('show')
    expect(coordinator.handleLeaseRequest('q', slow(both))?.block.jobId).toBe('show')
    // The task taken back is queued again, and a result p sends for it all the same still counts.
    expect(
      coordinator.handleBlockResult(
        'p',
        besideNext.leaseId,
        imageFilterKind.simulation.fakeResult(besideNext.block as never),
      ),
    ).toBe(true)
  })

  it("backs up a live round's laggard before handing out batch work", () => {
    const show = vertexJobSpec(ringJob('show', 4, 2))
    const images = imageJob('images')
    const time = manualClock()
    const coordinator = new Coordinator<LedgerSummary, TaskBase>(
      {
        jobs: [
          { spec: images, kind: imageFilterKind, sinks: ledgerSinks() },
          { spec: show, kind: vertexKind, class: 'live', sinks: ledgerSinks() },
        ],
        scheduling: { speculation: true },
      },
      { clock: time.clock },
    )
    addImages(coordinator, images, 20)
    for (const input of vertexKind.simulation.inputs(show, 0, 0)) coordinator.addInput('show', 0, input)
    const slow = coordinator.handleLeaseRequest('slow', capability(both, 10))!
    expect(slow.block.jobId).toBe('show')
    // A fast participant computes the rest of the round; then the slow one's task is all that is left.
    const fast = capability(both, 200_000)
    let lease = coordinator.handleLeaseRequest('fast', fast)!
    while (
      lease.block.jobId === 'show' &&
      vertexKind.taskKey(lease.block as never) !== vertexKind.taskKey(slow.block as never)
    ) {
      time.advance(5)
      coordinator.handleBlockResult(
        'fast',
        lease.leaseId,
        vertexKind.simulation.fakeResult(lease.block as never),
      )
      lease = coordinator.handleLeaseRequest('fast', fast)!
    }
    // Its next lease is a copy of the laggard, though batch work is waiting; without backups first it
    // was an image tile, and the frame waited for the slow device.
    expect(lease.block.jobId).toBe('show')
    expect(lease.block).toEqual(slow.block)
    expect(
      coordinator.handleBlockResult(
        'fast',
        lease.leaseId,
        vertexKind.simulation.fakeResult(lease.block as never),
      ),
    ).toBe(true)
    // The round is complete, and batch work follows.
    expect(coordinator.handleLeaseRequest('fast', fast)?.block.jobId).toBe('images')
  })

  it('adds a job while participants work, starting it at the least share so far, and announces it', () => {
    const a = imageJob('a')
    const { coordinator, time } = setup([{ spec: a, kind: imageFilterKind }])
    addImages(coordinator, a, 40)
    expect(work(coordinator, time, 50)).toHaveLength(50)
    const added: string[] = []
    coordinator.on('jobAdded', (spec) => added.push(spec.jobId))
    const b = imageJob('b')
    coordinator.addJob({ spec: b, kind: imageFilterKind, sinks: ledgerSinks() })
    expect(added).toEqual(['b'])
    expect(coordinator.jobs.map((j) => j.jobId)).toEqual(['a', 'b'])
    addImages(coordinator, b, 40)
    // From now on they alternate rather than b catching up on a's 50 tasks first.
    const next = work(coordinator, time, 20)
    expect(next.filter((j) => j === 'a').length).toBeGreaterThanOrEqual(8)
    expect(next.filter((j) => j === 'b').length).toBeGreaterThanOrEqual(8)
    expect(() => coordinator.addJob({ spec: b, kind: imageFilterKind })).toThrow(/already running/)
    expect(() =>
      coordinator.addJob({ spec: { ...b, jobId: 'c', description: { tile: 1 } }, kind: imageFilterKind }),
    ).toThrow(/invalid message/)
  })

  it('ends a job: its rounds dropped and reported, its leases cancelled, late results refused, the others go on', () => {
    const a = imageJob('a')
    const show = vertexJobSpec(ringJob('show', 4, 2))
    const { coordinator, reports } = setup([
      { spec: a, kind: imageFilterKind },
      { spec: show, kind: vertexKind },
    ])
    addImages(coordinator, a, 2)
    for (const input of vertexKind.simulation.inputs(show, 0, 0)) coordinator.addInput('show', 0, input)
    const held = coordinator.handleLeaseRequest('p', capability(['image-filter@1']))!
    const cancelled: number[] = []
    const ended: string[] = []
    const rejected: string[] = []
    coordinator.on('leaseCancelled', ({ leaseId }) => cancelled.push(leaseId))
    coordinator.on('jobEnded', (jobId) => ended.push(jobId))
    coordinator.on('resultRejected', ({ error }) => rejected.push(error.message))
    coordinator.endJob('a')
    expect(ended).toEqual(['a'])
    expect(cancelled).toEqual([held.leaseId])
    expect(reports.map((r) => [r.jobId, r.frameIndex, r.dropped, r.error])).toEqual([
      ['a', 0, true, 'job ended'],
      ['a', 1, true, 'job ended'],
    ])
    expect(
      coordinator.handleBlockResult(
        'p',
        held.leaseId,
        imageFilterKind.simulation.fakeResult(held.block as never),
      ),
    ).toBe(false)
    expect(rejected).toHaveLength(1)
    expect(() => coordinator.addInput('a', 5, {})).toThrow(/not running/)
    // The vertex job carries on to its outcome.
    for (
      let lease = coordinator.handleLeaseRequest('q');
      lease !== undefined;
      lease = coordinator.handleLeaseRequest('q')
    )
      coordinator.handleBlockResult(
        'q',
        lease.leaseId,
        vertexKind.simulation.fakeResult(lease.block as never),
      )
    expect(reports.at(-1)).toMatchObject({ jobId: 'show', frameIndex: 0, dropped: false })
    expect(coordinator.idle).toBe(true)
  })
})
