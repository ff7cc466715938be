import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { AnyJobKind, JobSpec, TaskBase } from '../../peer/jobs/kind.ts'
import { ringJob, vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import type { Capability } from '../../peer/protocol/capability.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import { manualClock } from '../support/manual-clock.ts'

/*
 * Two kinds in one coordinator: a live vertex job (a 4³ grid, 2 cameras: 128 units a frame) and a
 * batch image-filter job (64×64 images: 4,096 units each), driven by random inputs, requests,
 * results (some twice), failures, departures and delays. Participants run different kinds.
 */

const showSpec = vertexJobSpec(ringJob('show', 4, 2))
const imageUnits = 64 * 64
const imagesSpec: JobSpec<ReturnType<typeof imageFilterKind.simulation.job>> = {
  jobId: 'images',
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: imageFilterKind.simulation.job('images', imageUnits),
}
const kinds: Record<string, AnyJobKind> = { show: vertexKind, images: imageFilterKind }
const tag = (kind: AnyJobKind) => `${kind.name}@${kind.version}`

/** Who runs what: p0 states nothing (so vertex alone), p1 images alone, p2 and p3 both. */
const participants = ['p0', 'p1', 'p2', 'p3']
const runs: Record<string, string[] | undefined> = {
  p0: undefined,
  p1: [tag(imageFilterKind)],
  p2: [tag(vertexKind), tag(imageFilterKind)],
  p3: [tag(imageFilterKind), tag(vertexKind)],
  drain: [tag(vertexKind), tag(imageFilterKind)],
}
const capability = (p: string, speed: number): Capability => ({
  cores: 1,
  threadsPerSec: speed,
  bandwidthBytesPerSec: 0,
  rttMs: 5,
  dutyCycle: 1,
  ...(runs[p] !== undefined && { kinds: runs[p] }),
})

const op = fc.oneof(
  fc.record({ type: fc.constant('frame' as const) }),
  fc.record({ type: fc.constant('image' as const) }),
  fc.record({
    type: fc.constant('request' as const),
    p: fc.nat(3),
    speed: fc.integer({ min: 1, max: 50_000 }),
  }),
  fc.record({ type: fc.constant('result' as const), p: fc.nat(3), pick: fc.nat(), twice: fc.boolean() }),
  fc.record({ type: fc.constant('fail' as const), p: fc.nat(3), pick: fc.nat() }),
  fc.record({ type: fc.constant('gone' as const), p: fc.nat(3) }),
  fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
)

const resultOf = (lease: Lease<TaskBase>): unknown =>
  kinds[lease.block.jobId]!.simulation.fakeResult(lease.block)

describe('several jobs of two kinds in one coordinator, under random joins, leaves, crashes and duplicates', () => {
  it('counts every unit of every round of every job once, serves live before batch, never leases a kind a participant does not run', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 150 }), fc.boolean(), (ops, speculation) => {
        const time = manualClock()
        const coordinator = new Coordinator<LedgerSummary, TaskBase>(
          {
            jobs: [
              { spec: showSpec, kind: vertexKind, class: 'live', sinks: ledgerSinks() },
              { spec: imagesSpec, kind: imageFilterKind, sinks: ledgerSinks() },
            ],
            scheduling: { speculation, targetBlockMs: 20 },
          },
          { clock: time.clock },
        )
        const completed: Record<string, number[]> = { show: [], images: [] }
        coordinator.on('frameComplete', (summary, report) => {
          expect(summary.doubleCounted).toBe(0)
          completed[report.jobId]!.push(report.frameIndex)
        })
        const granted = new Map<string, Lease<TaskBase>[]>(participants.map((p) => [p, []]))
        let frames = 0
        let images = 0
        const check = () => {
          const audit = coordinator.audit()
          expect(audit.unaccountedThreads).toBe(0)
          expect(audit.overdueLeases).toBe(0)
        }
        for (const o of ops) {
          const p = 'p' in o ? participants[o.p]! : ''
          switch (o.type) {
            case 'frame':
              for (const input of vertexKind.simulation.inputs(showSpec, frames, 128))
                coordinator.addInput('show', frames, input)
              frames++
              break
            case 'image':
              for (const input of imageFilterKind.simulation.inputs(imagesSpec, images, imageUnits))
                coordinator.addInput('images', images, input)
              images++
              break
            case 'request': {
              // The live job's earliest round with work (the first job's): what a new task must come from.
              const liveFirst = coordinator.audit().firstFrameWithWork
              const lease = coordinator.handleLeaseRequest(p, capability(p, o.speed))
              if (lease === undefined) break
              granted.get(p)!.push(lease)
              const kind = kinds[lease.block.jobId]!
              // Never a kind it does not run.
              expect(runs[p] ?? [tag(vertexKind)]).toContain(tag(kind))
              // Live first: while the live job has queued work, one who runs it gets it, earliest round first.
              if (liveFirst !== undefined && (runs[p] ?? [tag(vertexKind)]).includes(tag(vertexKind))) {
                expect(lease.block.jobId).toBe('show')
                expect(lease.block.frameIndex).toBe(liveFirst)
              }
              expect(lease.deadline).toBeGreaterThan(time.clock.now())
              break
            }
            case 'result': {
              const leases = granted.get(p)!
              if (leases.length === 0) break
              const lease = leases[o.pick % leases.length]!
              coordinator.handleBlockResult(p, lease.leaseId, resultOf(lease))
              if (o.twice) coordinator.handleBlockResult(p, lease.leaseId, resultOf(lease))
              break
            }
            case 'fail': {
              const leases = granted.get(p)!
              if (leases.length > 0) coordinator.handleBlockFailed(p, leases[o.pick % leases.length]!.leaseId)
              break
            }
            case 'gone':
              coordinator.handleParticipantGone(p)
              granted.set(p, [])
              break
            case 'advance':
              time.advance(o.ms)
              break
          }
          check()
        }
        // A reliable participant that runs both drains what is left.
        for (let round = 0; round < 20_000 && !coordinator.idle; round++) {
          const lease = coordinator.handleLeaseRequest('drain', capability('drain', 10_000))
          if (lease === undefined) {
            time.advance(500)
            continue
          }
          coordinator.handleBlockResult('drain', lease.leaseId, resultOf(lease))
          check()
        }
        expect(coordinator.idle).toBe(true)
        expect(completed.show!.sort((a, b) => a - b)).toEqual([...Array(frames).keys()])
        expect(completed.images!.sort((a, b) => a - b)).toEqual([...Array(images).keys()])
        expect(coordinator.statistics().threadsCounted).toBe(frames * 128 + images * imageUnits)
        coordinator.stop()
      }),
      { numRuns: 200 },
    )
  })
})
