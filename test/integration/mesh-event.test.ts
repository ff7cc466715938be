import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent, type RunningEvent } from '../../peer/mesh/event.ts'
import { FrameDecoder, FrameKind, encodeFrame } from '../../peer/mesh/framing.ts'
import { decodeJobOutcome } from '../../peer/mesh/gossip.ts'
import { decodeOutcome } from '../../peer/jobs/vertex/outcome-codec.ts'
import { createMeshNode, type MeshNode } from '../../peer/mesh/node.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import {
  parseControl,
  toParticipantSchema,
  type ToParticipant,
  workProtocol,
} from '../../peer/mesh/work-protocol.ts'
import type { Frame } from '../../peer/jobs/vertex/block.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * One event on loopback, as `crowdmesh start` runs it: signaling, coturn, the circuit relay, the
 * coordinator — and participants as separate Node processes joining by the link over real WebRTC.
 * The tests run in order and share the event: after each abuse the same event must still serve.
 */

const grid = 48
let dataset: MultiViewDataset
let event: RunningEvent<FrameOutcome>
let reference: FrameOutcome
const processes: ParticipantProcess[] = []
const raw: MeshNode[] = []
let nextFrame = 0

/** Queues the data set's frames once more under a new frame index; resolves with that frame's outcome. */
function runFrame(): Promise<{ outcome: FrameOutcome; reassignments: number; index: number }> {
  const index = nextFrame++
  const done = new Promise<{ outcome: FrameOutcome; reassignments: number; index: number }>((resolve) => {
    const onComplete = (outcome: FrameOutcome, report: { reassignments: number }) => {
      if (outcome.frameIndex !== index) return
      event.coordinator.off('frameComplete', onComplete)
      resolve({ outcome, reassignments: report.reassignments, index })
    }
    event.coordinator.on('frameComplete', onComplete)
  })
  for (const frame of dataset.frames) event.addFrame({ ...frame, index } satisfies Frame)
  return done
}

function participant(init: ConstructorParameters<typeof ParticipantProcess>[1] = {}, link = event.joinLink) {
  const p = new ParticipantProcess(link, { dutyCycle: 1, cores: 1, ...init })
  processes.push(p)
  return p
}

function sameColours(a: FrameOutcome, b: FrameOutcome): void {
  expect(a.coloured).toBe(b.coloured)
  expect(Buffer.compare(a.decision, b.decision)).toBe(0)
  expect(Buffer.compare(a.colour, b.colour)).toBe(0)
}

beforeAll(async () => {
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 2 })).outcome
  event = await startEvent({
    coordinator: { jobs: [vertexJobInit(datasetJob(dataset, grid))] },
    turn: 'required',
    relayKey: await generateKeyPair('Ed25519'),
  })
}, 60_000)

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop('SIGKILL')))
  for (const node of raw) await node.stop()
  await event?.stop()
})

describe('an event over the real mesh', () => {
  it('three Node participant processes join by link, connect over WebRTC and colour the whole templeSparseRing job exactly as in-process; one killed mid-job loses nothing', async () => {
    const crowd = [participant(), participant(), participant()]
    for (const p of crowd) {
      const connected = await p.waitFor('connected')
      expect(connected.remoteAddr).toMatch(/\/p2p-circuit\/webrtc\/p2p\//)
    }
    const frame = runFrame()
    // Kill one as soon as it computes: its unfinished leases must go to the others.
    await crowd[2]!.waitFor('firstLease')
    await crowd[2]!.stop('SIGKILL')
    const { outcome } = await frame
    sameColours(outcome, reference)
    // Every live participant got the outcome by gossip, from the coordinator.
    for (const p of crowd.slice(0, 2)) {
      const gossiped = await p.waitFor('outcome')
      expect(gossiped.items).toBe(reference.coloured)
      expect(gossiped.jobId).toBe(event.coordinator.jobs[0]!.jobId)
      expect(gossiped.source).toBe('gossip')
    }
    const stats = event.coordinator.statistics()
    expect(stats.threadsCounted).toBe(grid ** 3 * dataset.cameras.length)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
  }, 120_000)

  it('refuses a tampered or expired link with a clear message, at the signaling server and at the coordinator', async () => {
    const tampered = participant(
      {},
      event.joinLink.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    )
    expect(await tampered.exited).toBe(1)
    expect(tampered.stderr).toMatch(/bad signature/)

    const expired = event.signaling.createEvent('gone', -60).joinLinks.participant
    const late = participant({}, expired)
    expect(await late.exited).toBe(1)
    expect(late.stderr).toMatch(/expired/)

    // A valid link of another event passes the signaling server's check for its own event, but this
    // coordinator refuses its token.
    const { answers } = await rawSession([
      control({
        type: 'hello',
        token: tokenOf(event.signaling.createEvent('other').joinLinks.participant),
        capability,
        agent: 'test',
      }),
    ])
    expect(answers[0]).toMatchObject({ type: 'error', code: 'unauthorized' })
    expect((answers[0] as { message: string }).message).toMatch(/event/)
  }, 60_000)

  it('answers malformed and oversized messages with a clear error and closes only that stream', async () => {
    const garbage = await rawSession([new Uint8Array([9, 1, 0, 0, 0, 42])])
    expect(garbage.answers[0]).toMatchObject({ type: 'error', code: 'invalid-message' })
    expect(garbage.closed).toBe(true)

    const missing = await rawSession([control({ type: 'hello', token: tokenOf(event.joinLink), agent: 'x' })])
    expect(missing.answers[0]).toMatchObject({ type: 'error', code: 'invalid-message' })
    expect((missing.answers[0] as { message: string }).message).toMatch(/capability/)

    const notJson = await rawSession([encodeFrame(FrameKind.control, new TextEncoder().encode('{"type":'))])
    expect(notJson.answers[0]).toMatchObject({ type: 'error', code: 'invalid-message' })

    // A header announcing 100 MB: refused before a byte of it is buffered.
    const header = new Uint8Array(5)
    header[0] = FrameKind.binary
    new DataView(header.buffer).setUint32(1, 100 * 1024 * 1024, true)
    const huge = await rawSession([header])
    expect(huge.answers[0]).toMatchObject({ type: 'error', code: 'too-large' })
    expect(huge.closed).toBe(true)

    const early = await rawSession([control({ type: 'lease-request', requestId: 1, capability })])
    expect(early.answers[0]).toMatchObject({ type: 'error', code: 'protocol' })

    // A result that does not decode: refused and closed; the lease (if any) is not lost.
    const hello = control({ type: 'hello', token: tokenOf(event.joinLink), capability, agent: 'liar' })
    const bogus = await rawSession([hello, encodeFrame(FrameKind.binary, new Uint8Array(64).fill(3))])
    expect(bogus.answers.some((a) => a.type === 'error' && a.code === 'invalid-message')).toBe(true)
    expect(bogus.closed).toBe(true)

    // The coordinator still serves: a new participant completes a frame identical to the reference.
    for (const p of processes) await p.stop()
    const p = participant()
    const { outcome } = await runFrame()
    sameColours(outcome, reference)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
    await p.stop()
  }, 90_000)

  it('rate-limits a participant that floods requests and cuts it off', async () => {
    const hello = control({ type: 'hello', token: tokenOf(event.joinLink), capability, agent: 'flood' })
    const flood = Array.from({ length: 600 }, (_, i) =>
      control({ type: 'lease-request', requestId: i + 1, capability }),
    )
    const { answers, closed } = await rawSession([hello, ...flood], 15_000)
    const limited = answers.filter((a) => a.type === 'error' && a.code === 'rate-limited')
    expect(limited.length).toBeGreaterThan(0)
    expect(answers.filter((a) => a.type === 'lease').length).toBeLessThanOrEqual(150)
    expect(closed).toBe(true)
    expect(event.coordinator.audit().unaccountedThreads).toBe(0)
  }, 60_000)

  it('goes on after the relay restarts: connected participants keep computing and new ones join', async () => {
    const before = participant()
    await before.waitFor('welcome')
    await event.stopRelay()
    await event.restartRelay()
    const after = participant()
    await after.waitFor('welcome', 45_000)
    const { outcome } = await runFrame()
    sameColours(outcome, reference)
    expect(before.child.exitCode).toBeNull()
  }, 120_000)
})

const capability = { cores: 1, threadsPerSec: 0, bandwidthBytesPerSec: 0, rttMs: 0, dutyCycle: 1 }

function control(message: unknown): Uint8Array {
  return encodeFrame(FrameKind.control, new TextEncoder().encode(JSON.stringify(message)))
}

function tokenOf(link: string): string {
  return link.slice(link.lastIndexOf('/') + 1)
}

/**
 * Opens a raw work-protocol stream to the coordinator over WebRTC, writes `frames` as given, and
 * collects the coordinator's answers until it closes the stream (or `timeoutMs`).
 */
async function rawSession(
  frames: Uint8Array[],
  timeoutMs = 8000,
): Promise<{ answers: ToParticipant[]; closed: boolean }> {
  // The relay admits only peers that show a link's token.
  const node = await createMeshNode({
    relayAddrs: event.relay.getMultiaddrs().map(String),
    admission: { token: tokenOf(event.joinLink) },
  })
  raw.push(node)
  const target = multiaddr(
    `${event.relay.getMultiaddrs()[0]!.toString()}/p2p-circuit/webrtc/p2p/${event.node.peerId.toString()}`,
  )
  // A WebRTC dial through the relay now and then times out in libp2p's own handshake on a loaded
  // machine; the session under test starts once a stream is open, so a failed dial is tried again.
  let stream: Stream | undefined
  for (let attempt = 1; stream === undefined; attempt++) {
    try {
      stream = await node.dialProtocol(target, workProtocol, { signal: AbortSignal.timeout(20_000) })
    } catch (error) {
      if (attempt === 3) throw error
    }
  }
  const answers: ToParticipant[] = []
  const reading = (async () => {
    const decoder = new FrameDecoder()
    try {
      for await (const chunk of stream) {
        const pieces = chunk instanceof Uint8Array ? [chunk] : [...chunk]
        for (const piece of pieces)
          for (const frame of decoder.push(piece))
            if (frame.kind === FrameKind.control)
              answers.push(parseControl(toParticipantSchema, frame.payload))
            else decodeOutcome(decodeJobOutcome(frame.payload).payload)
      }
      return true
    } catch {
      return true
    }
  })()
  for (const frame of frames) if (!stream.send(frame)) await stream.onDrain().catch(() => {})
  const closed = await Promise.race([
    reading,
    new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs)),
  ])
  stream.abort(new Error('done'))
  return { answers, closed }
}
