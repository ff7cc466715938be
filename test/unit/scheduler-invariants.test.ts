import { VertexCoordinator } from '../../peer/jobs/vertex/coordinator.ts'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import type { BlockResult, Block } from '../../peer/jobs/vertex/block.ts'
import { testCamera, testJob } from '../support/fixtures.ts'
import { manualClock } from '../support/manual-clock.ts'

const job = testJob(4, [testCamera(0), { ...testCamera(1), t: [0.1, 0, 2] }])
const participants = ['p0', 'p1', 'p2', 'p3']

const op = fc.oneof(
  fc.record({ type: fc.constant('frame' as const) }),
  fc.record({
    type: fc.constant('request' as const),
    p: fc.nat(3),
    speed: fc.integer({ min: 1, max: 5000 }),
  }),
  fc.record({ type: fc.constant('result' as const), p: fc.nat(3), pick: fc.nat(), twice: fc.boolean() }),
  fc.record({ type: fc.constant('fail' as const), p: fc.nat(3), pick: fc.nat() }),
  fc.record({ type: fc.constant('gone' as const), p: fc.nat(3) }),
  fc.record({ type: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 3000 }) }),
)

function resultOf(lease: Lease<Block>): BlockResult {
  const { block } = lease
  return { ...block, colours: new Uint8Array(block.vertexCount * 4) }
}

describe('scheduler invariants under random joins, leaves, failures, delays and duplicate results', () => {
  it('never loses a thread, never counts one twice, serves frames in order, notices every deadline', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 120 }), fc.boolean(), (ops, speculation) => {
        const time = manualClock()
        const coordinator = new VertexCoordinator<LedgerSummary>(
          {
            job,
            frameSinks: ledgerSinks(),
            scheduling: { speculation, minBlockVertices: 4, targetBlockMs: 20 },
          },
          { clock: time.clock },
        )
        const completed: LedgerSummary[] = []
        coordinator.on('frameComplete', (summary) => completed.push(summary))
        // Every lease each participant was ever granted: results may come late, twice, or never.
        const granted = new Map<string, Lease<Block>[]>(participants.map((p) => [p, []]))
        let frames = 0
        const check = () => {
          const audit = coordinator.audit()
          expect(audit.unaccountedThreads).toBe(0)
          expect(audit.overdueLeases).toBe(0)
        }
        for (const o of ops) {
          const p = 'p' in o ? participants[o.p]! : ''
          switch (o.type) {
            case 'frame':
              for (const camera of job.cameras) {
                coordinator.addFrame({
                  cameraId: camera.id,
                  index: frames,
                  captureTime: 0,
                  imageUrl: 'data:,',
                })
              }
              frames++
              break
            case 'request': {
              const first = coordinator.audit().firstFrameWithWork
              const lease = coordinator.handleLeaseRequest(p, {
                cores: 1,
                threadsPerSec: o.speed,
                bandwidthBytesPerSec: 0,
                rttMs: 5,
                dutyCycle: 1,
              })
              if (lease !== undefined) {
                granted.get(p)!.push(lease)
                // A new block comes from the earliest frame with work; a backup only when none has any.
                if (first !== undefined) expect(lease.block.frameIndex).toBe(first)
                expect(lease.deadline).toBeGreaterThan(time.clock.now())
              }
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
        // A reliable participant drains what is left: every frame completes, every thread counted once.
        for (let round = 0; round < 10_000 && !coordinator.idle; round++) {
          const lease = coordinator.handleLeaseRequest('drain')
          if (lease === undefined) {
            time.advance(500)
            continue
          }
          coordinator.handleBlockResult('drain', lease.leaseId, resultOf(lease))
          check()
        }
        expect(coordinator.idle).toBe(true)
        expect(completed.map((c) => c.frameIndex).sort((a, b) => a - b)).toEqual([...Array(frames).keys()])
        expect(completed.every((c) => c.doubleCounted === 0)).toBe(true)
        expect(coordinator.statistics().threadsCounted).toBe(frames * 2 * 64)
        coordinator.stop()
      }),
      { numRuns: 300 },
    )
  })
})
