import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import type { MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent } from '../../peer/mesh/event.ts'
import { FramedStream, FrameKind } from '../../peer/mesh/framing.ts'
import { createMeshNode } from '../../peer/mesh/node.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { createRelayNode } from '../../relay/circuit-relay.ts'

/** Options of a run with real Node participant processes over WebRTC on loopback. */
export interface RealMeshInit {
  dataset: MultiViewDataset
  participants: number
  grid: number
  /** Measured frames (the data set's frames under a new index each), one after another, after a warm-up frame. */
  frames: number
  /** Participants' duty cycle (default 1: they are helpers on the operator's machine). */
  dutyCycle?: number
  onProgress?: (done: number, total: number) => void
}

/** What a real-mesh run measured. */
export interface RealMeshReport {
  participants: number
  grid: number
  frames: number
  /** Participant process start to the first lease it computes (p50/p95 over participants), ms. */
  spawnToFirstLeaseMs: { p50: number; p95: number }
  /** From the join link opened (in the participant) to its first lease, ms. */
  joinToFirstLeaseMs: { p50: number; p95: number }
  /** Frame arrival to complete outcome, ms. */
  frameLatencyMs: { p50: number; p95: number }
  /** Frame complete (coordinator) to the last participant holding its outcome by gossip, ms. */
  outcomeGossipMs: { p50: number; p95: number }
  /** Block-result bytes received per second of the run. */
  resultMBps: number
  wallSeconds: number
  reassignments: number
}

function percentiles(values: number[]): { p50: number; p95: number } {
  if (values.length === 0) return { p50: Number.NaN, p95: Number.NaN }
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50: Math.round(at(0.5)), p95: Math.round(at(0.95)) }
}

/**
 * Runs an event on loopback with `participants` Node participant processes, queues the frames after
 * they have connected, and measures joining, frame latency, outcome gossip and result throughput.
 */
export async function runRealMesh(init: RealMeshInit): Promise<RealMeshReport> {
  const job = datasetJob(init.dataset, init.grid)
  const event = await startEvent({ coordinator: { jobs: [vertexJobInit(job)] }, turn: 'off' })
  const crowd: ParticipantProcess[] = []
  try {
    // A warm-up frame first, so each participant's first lease request is answered with a block.
    const indices = [...new Set(init.dataset.frames.map((f) => f.index))]
    const completions = new Map<number, number>()
    const reports: FrameReport[] = []
    let bytes = 0
    event.coordinator.on('blockDone', ({ threads }) => {
      bytes += threads * 4
    })
    let nextIndex = 0
    const runFrames = (count: number) => {
      const first = nextIndex
      nextIndex += count * indices.length
      return new Promise<void>((resolve) => {
        const onComplete = (outcome: { frameIndex: number }, report: FrameReport) => {
          if (outcome.frameIndex < first || outcome.frameIndex >= nextIndex) return
          completions.set(outcome.frameIndex, performance.now())
          reports.push(report)
          init.onProgress?.(reports.length, init.frames * indices.length)
          if (outcome.frameIndex === nextIndex - 1) {
            event.coordinator.off('frameComplete', onComplete)
            resolve()
          }
        }
        event.coordinator.on('frameComplete', onComplete)
        for (let k = 0; k < count; k++)
          for (const frame of init.dataset.frames)
            event.addFrame({ ...frame, index: first + k * indices.length + frame.index })
      })
    }
    // Enough warm-up work that the last to join still finds some.
    const warmUp = runFrames(Math.max(1, Math.ceil(init.participants / 2)))
    for (let i = 0; i < init.participants; i++)
      crowd.push(new ParticipantProcess(event.joinLink, { dutyCycle: init.dutyCycle ?? 1, cores: 1 }))
    let allLeased = false
    const leased = Promise.allSettled(crowd.map((p) => p.waitFor('firstLease', 120_000))).then(() => {
      allLeased = true
    })
    await warmUp
    // On a small grid the first to join can finish the warm-up before the last joins: more work, one
    // frame at a time, until everyone has had a lease.
    while (!allLeased) await runFrames(1)
    await leased
    await Promise.all(crowd.map((p) => p.waitFor('welcome', 60_000)))
    reports.length = 0
    completions.clear()
    bytes = 0
    // Then the measured frames, one after another, with every participant connected.
    const started = performance.now()
    for (let k = 0; k < init.frames; k++) await runFrames(1)
    const wallSeconds = (performance.now() - started) / 1000
    const frameCount = reports.length
    // Give the last outcome's gossip a moment to arrive everywhere.
    await new Promise((r) => setTimeout(r, 1000))
    const firstLeases = crowd.map((p) => p.events.find((e) => e.type === 'firstLease'))
    const gossip: number[] = []
    for (const [frameIndex, completedAt] of completions) {
      const arrivals = crowd.map(
        (p) =>
          p.events.find((e) => e.type === 'outcome' && e.frameIndex === frameIndex && e.source === 'gossip')
            ?.receivedAt,
      )
      // Only frames every participant received count (a participant may have joined after a frame).
      if (arrivals.every((a) => a !== undefined))
        gossip.push(Math.max(...arrivals.map((a) => a - completedAt)))
    }
    return {
      participants: init.participants,
      grid: init.grid,
      frames: frameCount,
      spawnToFirstLeaseMs: percentiles(
        firstLeases.flatMap((e, i) => (e === undefined ? [] : [e.receivedAt - crowd[i]!.startedAt])),
      ),
      joinToFirstLeaseMs: percentiles(firstLeases.flatMap((e) => (e?.type === 'firstLease' ? [e.ms] : []))),
      frameLatencyMs: percentiles(reports.map((r) => r.latencyMs)),
      outcomeGossipMs: percentiles(gossip),
      resultMBps: bytes / 1e6 / wallSeconds,
      wallSeconds,
      reassignments: reports.reduce((sum, r) => sum + r.reassignments, 0),
    }
  } finally {
    await event.stop()
    await Promise.all(crowd.map((p) => p.stop()))
  }
}

/**
 * Data-channel throughput: one framed stream between two mesh nodes over WebRTC on loopback, 4 MiB
 * frames (a 1 Mi-vertex block result) written with backpressure; MB/s from first byte to last read.
 */
export async function dataChannelMBps(totalMiB = 128): Promise<number> {
  const relay = await createRelayNode()
  const relayAddrs = relay.getMultiaddrs().map(String)
  const [a, b] = [await createMeshNode({ relayAddrs }), await createMeshNode({ relayAddrs })]
  try {
    const address = async () => {
      for (;;) {
        const found = b.getMultiaddrs().find((m) => m.toString().includes('/p2p-circuit/webrtc/'))
        if (found !== undefined) return found
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const frameBytes = 4 * 1024 * 1024
    const count = Math.ceil((totalMiB * 1024 * 1024) / frameBytes)
    let received = 0
    const done = new Promise<number>((resolve) => {
      void b.handle('/crowdmesh/bench/1', async (stream) => {
        for await (const frame of new FramedStream(stream).frames()) {
          received += frame.payload.length
          if (received >= count * frameBytes) return resolve(performance.now())
        }
      })
    })
    const stream = await a.dialProtocol(await address(), '/crowdmesh/bench/1')
    const framed = new FramedStream(stream)
    const payload = new Uint8Array(frameBytes).fill(1)
    const started = performance.now()
    for (let i = 0; i < count; i++) await framed.send(FrameKind.binary, payload)
    const ended = await done
    await framed.close()
    return (count * frameBytes) / 1e6 / ((ended - started) / 1000)
  } finally {
    await a.stop()
    await b.stop()
    await relay.stop()
  }
}
