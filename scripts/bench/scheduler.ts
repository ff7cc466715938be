import { VertexCoordinator } from '../../peer/jobs/vertex/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import type { Lease } from '../../peer/protocol/job.ts'
import type { BlockResult, Block } from '../../peer/jobs/vertex/block.ts'
import { simulatedJob } from '../../peer/jobs/vertex/simulation.ts'
import { VirtualClock } from '../../peer/simulator/virtual-clock.ts'

/**
 * Scheduler operations (lease grants + accepted results) per second on one core, with `participants`
 * participants each holding a lease at any time: the coordinator core alone, with the counting sink
 * and a virtual clock, no transport.
 */
export function schedulerOpsPerSec(participants: number, seconds = 1.5): number {
  const clock = new VirtualClock()
  const job = simulatedJob(32, 8)
  const cameras = job.cameras
  const coordinator = new VertexCoordinator<LedgerSummary>({ job, frameSinks: ledgerSinks() }, { clock })
  const ids = Array.from({ length: participants }, (_, i) => `p${i}`)
  const capability = { cores: 8, threadsPerSec: 1000, bandwidthBytesPerSec: 1e6, rttMs: 50, dutyCycle: 0.25 }
  const zeros = new Uint8Array(4 * 4096)
  const result = (lease: Lease<Block>): BlockResult => ({
    ...lease.block,
    colours: zeros.subarray(0, lease.block.vertexCount * 4),
  })
  let frame = 0
  const addFrame = () => {
    for (const camera of cameras) {
      coordinator.addFrame({ cameraId: camera.id, index: frame, captureTime: 0, imageUrl: 'data:,' })
    }
    frame++
  }
  const lease = (id: string): Lease<Block> => {
    for (;;) {
      const granted = coordinator.handleLeaseRequest(id, capability)
      if (granted !== undefined) return granted
      addFrame()
    }
  }
  // Every participant holds one lease; the oldest comes back first and its owner asks again at once.
  // Time moves so that a lease lives about 150 ms, the scheduler's target block time.
  const step = 150 / participants
  const ring: Lease<Block>[] = ids.map((id) => lease(id))
  let ops = participants
  const started = performance.now()
  const end = started + seconds * 1000
  let at = 0
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) {
      const done = ring[at]!
      const owner = ids[at]!
      if (coordinator.handleBlockResult(owner, done.leaseId, result(done))) ops++
      ring[at] = lease(owner)
      ops++
      at = (at + 1) % participants
      clock.runUntil(clock.now() + step)
    }
  }
  const elapsed = (performance.now() - started) / 1000
  coordinator.stop()
  return ops / elapsed
}
