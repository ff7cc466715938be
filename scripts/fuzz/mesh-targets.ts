import { encodeJobOutcome } from '../../peer/mesh/gossip.ts'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import fc from 'fast-check'
import { FrameDecoder, FrameKind } from '../../peer/mesh/framing.ts'
import { createMeshNode, type MeshNode } from '../../peer/mesh/node.ts'
import { admitAnswerSchema, admitProtocol } from '../../peer/mesh/admission.ts'
import {
  encodeResultFrame,
  errorCodes,
  parseControl,
  type ToParticipant,
  toParticipantSchema,
  workProtocol,
} from '../../peer/mesh/work-protocol.ts'
import { type Block, blockResult } from '../../peer/jobs/vertex/block.ts'
import { vertexKind } from '../../peer/jobs/vertex/index.ts'
import { importFrameKey } from '../../peer/protocol/frame-keys.ts'
import type { FuzzEventReady } from './event-process.ts'
import { hostileJsonText } from './inputs.ts'
import type { Verdict } from './targets.ts'

/** The mesh's side of a fuzz run: work-protocol streams and gossip from a stranger's libp2p node. */
export interface MeshFuzzer {
  /** Runs one batch of cases; each is `[target, verdict, input]`. */
  batch(seed: number): Promise<[string, Verdict, unknown][]>
  stop(): Promise<void>
}

/** Control messages read off a work stream as they come, to be waited for in turn. */
function controlMessages(stream: Stream): {
  next(timeoutMs: number): Promise<ToParticipant | undefined>
  until(match: (m: ToParticipant) => boolean, timeoutMs: number): Promise<ToParticipant | undefined>
} {
  const queue: ToParticipant[] = []
  let wake: (() => void) | undefined
  const decoder = new FrameDecoder()
  void (async () => {
    try {
      for await (const chunk of stream) {
        const parts = chunk instanceof Uint8Array ? [chunk] : [...chunk]
        for (const part of parts)
          for (const answer of decoder.push(part))
            if (answer.kind === FrameKind.control) {
              queue.push(parseControl(toParticipantSchema, answer.payload))
              wake?.()
            }
      }
    } catch {
      // closed or reset: whatever came is in the queue
    }
    wake?.()
  })()
  const next = async (timeoutMs: number): Promise<ToParticipant | undefined> => {
    const deadline = Date.now() + timeoutMs
    while (queue.length === 0 && Date.now() < deadline)
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, Math.max(1, deadline - Date.now()))
      })
    return queue.shift()
  }
  return {
    next,
    async until(match, timeoutMs) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const message = await next(Math.max(1, deadline - Date.now()))
        if (message === undefined || match(message)) return message
      }
    },
  }
}

/** One frame of a hostile work-protocol session, as bytes on the stream. */
type WorkPiece =
  | { hello: 'valid' | 'bad-token' | 'no-capability' | 'hostile-holds' }
  | { control: string }
  | { leaseRequest: number }
  | { binary: number }
  | { header: { kind: number; length: number } }

// Complete, so that a valid hello is welcomed and the paths after it are reached.
const capability = { cores: 1, threadsPerSec: 10_000, bandwidthBytesPerSec: 1e6, rttMs: 20, dutyCycle: 1 }

/** Sessions: hello or not, requests before hello, garbage, oversized and truncated frames. */
const workSession: fc.Arbitrary<WorkPiece[]> = fc.array(
  fc.oneof(
    {
      weight: 2,
      arbitrary: fc
        .constantFrom<'valid' | 'bad-token' | 'no-capability' | 'hostile-holds'>(
          'valid',
          'bad-token',
          'no-capability',
          'hostile-holds',
        )
        .map((hello): WorkPiece => ({ hello })),
    },
    {
      weight: 3,
      arbitrary: hostileJsonText.filter((t) => t.length < 60_000).map((control) => ({ control })),
    },
    { weight: 2, arbitrary: fc.nat(2 ** 32 - 1).map((leaseRequest) => ({ leaseRequest })) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 8192 }).map((binary) => ({ binary })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ kind: fc.integer({ min: 0, max: 255 }), length: fc.nat(2 ** 32 - 1) })
        .map((header) => ({ header })),
    },
  ),
  { minLength: 1, maxLength: 6 },
)

/** What a stranger says on the relay's admission protocol: tokens good and bad, garbage, odd frames. */
type AdmitPiece =
  | { admit: 'valid' | 'viewer' | 'garbage' | 'empty' }
  | { control: string }
  | { header: { kind: number; length: number } }

const admitSession: fc.Arbitrary<AdmitPiece[]> = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .constantFrom<'valid' | 'viewer' | 'garbage' | 'empty'>('valid', 'viewer', 'garbage', 'empty')
        .map((admit): AdmitPiece => ({ admit })),
    },
    {
      weight: 2,
      arbitrary: hostileJsonText.filter((t) => t.length < 60_000).map((control) => ({ control })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ kind: fc.integer({ min: 0, max: 255 }), length: fc.nat(2 ** 32 - 1) })
        .map((header) => ({ header })),
    },
  ),
  { minLength: 1, maxLength: 3 },
)

/** Gossip a stranger publishes on the event's topics. */
const gossipMessage = fc.record({
  topic: fc.nat(15),
  data: fc.oneof(
    hostileJsonText.map((t) => new TextEncoder().encode(t)),
    fc.uint8Array({ maxLength: 4096 }),
    // Match results and their acknowledgement, well formed, as only the coordinator and result
    // writers may publish them.
    fc.constant(
      new TextEncoder().encode(
        JSON.stringify({ type: 'written', tasks: [{ task: 'fuzz/m/0', generation: 1 }] }),
      ),
    ),
    // A withdrawal of a reopened task's output beside its next generation.
    fc.constant(
      new TextEncoder().encode(
        JSON.stringify({
          type: 'results',
          results: [
            { task: 'x', run: 'x', generation: 1, withdrawn: true, matches: [] },
            { task: 'x', run: 'x', generation: 2, matches: [] },
          ],
        }),
      ),
    ),
    // An outcome in its envelope, as only the coordinator may publish one.
    fc
      .tuple(fc.string({ minLength: 1, maxLength: 64 }), fc.uint8Array({ maxLength: 2048 }))
      .map(([jobId, payload]) => encodeJobOutcome(jobId, payload)),
  ),
})

function frame(kind: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length)
  out[0] = kind
  new DataView(out.buffer).setUint32(1, payload.length, true)
  out.set(payload, 5)
  return out
}

function encodePiece(piece: WorkPiece, token: string): Uint8Array {
  const json = (value: unknown) => frame(FrameKind.control, new TextEncoder().encode(JSON.stringify(value)))
  if ('hello' in piece)
    return json({
      type: 'hello',
      token: piece.hello === 'bad-token' ? `${token.slice(0, -2)}xx` : token,
      ...(piece.hello !== 'no-capability' && { capability }),
      // Shards it claims to hold: more and longer than a participant may state.
      ...(piece.hello === 'hostile-holds' && {
        capability: { ...capability, holds: Array.from({ length: 100 }, (_, i) => `${i}`.repeat(200)) },
      }),
      agent: 'fuzz',
    })
  if ('control' in piece) return frame(FrameKind.control, new TextEncoder().encode(piece.control))
  if ('leaseRequest' in piece)
    return json({ type: 'lease-request', requestId: piece.leaseRequest, capability })
  if ('binary' in piece) return frame(FrameKind.binary, new Uint8Array(piece.binary).fill(7))
  // A header alone: a declared length that never arrives (truncated) or is far over the limit.
  const header = new Uint8Array(5)
  header[0] = piece.header.kind
  new DataView(header.buffer).setUint32(1, piece.header.length, true)
  return header
}

/**
 * Writes `pieces` on a stream while reading its answers, then waits a moment and aborts it. Each
 * answer frame goes through `check`, which returns a problem or throws one (an answer outside the
 * protocol); the first problem is returned. A stream the other side closed or reset is a clear end.
 */
async function streamCase(
  stream: Stream,
  pieces: readonly Uint8Array[],
  check: (answer: { kind: number; payload: Uint8Array }) => string | undefined,
): Promise<string | undefined> {
  let problem: string | undefined
  const decoder = new FrameDecoder()
  const reading = (async () => {
    try {
      for await (const chunk of stream) {
        const parts = chunk instanceof Uint8Array ? [chunk] : [...chunk]
        for (const part of parts)
          for (const answer of decoder.push(part)) {
            try {
              problem ??= check(answer)
            } catch (error) {
              problem ??= `answered outside the protocol: ${(error as Error).message}`
            }
          }
      }
    } catch {
      // closed or reset by the other side: a clear end
    }
  })()
  for (const piece of pieces) {
    if (stream.status !== 'open') break
    try {
      if (!stream.send(piece)) await stream.onDrain({ signal: AbortSignal.timeout(2000) })
    } catch {
      break
    }
  }
  await Promise.race([reading, new Promise((r) => setTimeout(r, 300))])
  stream.abort(new Error('fuzz case over'))
  await reading
  return problem
}

/**
 * A stranger's libp2p node on the event's mesh (dialled through the relay over WebRTC, as a
 * participant's is), holding a valid participant link: the attacker the event must survive.
 */
export async function meshTargets(ready: FuzzEventReady): Promise<MeshFuzzer> {
  const viewerToken = ready.joinLinks.viewer!.slice(ready.joinLinks.viewer!.lastIndexOf('/') + 1)
  const token = ready.joinLinks.participant!.slice(ready.joinLinks.participant!.lastIndexOf('/') + 1)
  // It shows the link's token to the relay, as every participant's node does: the attacker is a
  // link holder, since a stranger without one is not relayed at all (mesh-security.test.ts).
  const node: MeshNode = await createMeshNode({ relayAddrs: ready.relayAddrs, admission: { token } })
  const coordinator = multiaddr(`${ready.relayAddrs[0]}/p2p-circuit/webrtc/p2p/${ready.coordinatorPeerId}`)
  for (const topic of ready.topics) node.services.gossip.subscribe(topic)

  const openStream = async (): Promise<Stream | string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await node.dialProtocol(coordinator, workProtocol, { signal: AbortSignal.timeout(20_000) })
      } catch (error) {
        if (attempt === 3) return (error as Error).message
        // The coordinator closes a connection that broke the protocol; dial a fresh one.
        await node.hangUp(coordinator).catch(() => {})
        await new Promise((r) => setTimeout(r, 200 * attempt))
      }
    }
  }

  // A second node that never shows a token of its own: it speaks the admission protocol to the relay
  // directly, each case on a fresh connection (the relay drops a peer it refused).
  const stranger: MeshNode = await createMeshNode({ relayAddrs: [] })
  const relay = multiaddr(ready.relayAddrs[0])

  /** An admission case: the target is `libp2p:admit`, or `libp2p:admit-refused` when no stream opened. */
  async function admitCase(pieces: AdmitPiece[]): Promise<[string, Verdict]> {
    let stream: Stream
    try {
      stream = await stranger.dialProtocol(relay, admitProtocol, { signal: AbortSignal.timeout(5000) })
    } catch (error) {
      // A relay that refuses the stream outright (the peer was dropped a moment ago) is a clear end,
      // counted apart so the report shows how many cases reached the protocol.
      return (error as Error).name === 'AbortError'
        ? ['libp2p:admit', { ok: false, why: 'the relay did not open an admission stream in 5 s' }]
        : ['libp2p:admit-refused', { ok: true }]
    }
    const json = (value: unknown) => frame(FrameKind.control, new TextEncoder().encode(JSON.stringify(value)))
    const tokens = { valid: token, viewer: viewerToken, garbage: 'x.y', empty: '' }
    const bytes = pieces.map((piece) =>
      'admit' in piece
        ? json({ type: 'admit', token: tokens[piece.admit] })
        : 'control' in piece
          ? frame(FrameKind.control, new TextEncoder().encode(piece.control))
          : encodePiece({ header: piece.header }, token),
    )
    const problem = await streamCase(stream, bytes, (answer) => {
      parseControl(admitAnswerSchema, answer.payload)
      return undefined
    })
    await stranger.hangUp(relay).catch(() => {})
    return ['libp2p:admit', problem === undefined ? { ok: true } : { ok: false, why: problem }]
  }

  /**
   * A peer that lies (README, "Trust"): a fresh identity with the link joins, takes a vertex lease,
   * and returns a well-formed result with every colour wrong. The coordinator must check it,
   * quarantine the identity and say so (`quarantined`), while the witness participant carries on.
   * No lease within a few tries (the witness holds the work) ends the case clearly too.
   */
  async function liarCase(): Promise<[string, Verdict]> {
    const liar = await createMeshNode({ relayAddrs: ready.relayAddrs, admission: { token } })
    try {
      let opened: Stream | string = 'not dialled'
      for (let attempt = 1; attempt <= 2 && typeof opened === 'string'; attempt++)
        opened = await liar
          .dialProtocol(coordinator, workProtocol, { signal: AbortSignal.timeout(20_000) })
          .catch((error: Error) => error.message)
      // A fresh node's WebRTC dial failing twice under load is the fuzzer's side, not the event's
      // answer: counted apart, as admission's refusals are.
      if (typeof opened === 'string') return ['libp2p:liar-unreachable', { ok: true }]
      const inbox = controlMessages(opened)
      const say = (value: unknown) =>
        opened.send(frame(FrameKind.control, new TextEncoder().encode(JSON.stringify(value))))
      say({ type: 'hello', token, capability: { ...capability, kinds: ['vertex@1'] }, agent: 'fuzz-liar' })
      const welcome = await inbox.next(10_000)
      if (welcome?.type !== 'welcome')
        return [
          'libp2p:liar',
          { ok: false, why: `no welcome after a valid hello: ${JSON.stringify(welcome)}` },
        ]
      let lies = 0
      // Patient enough to meet a frame's blocks on a loaded machine (where the witness takes most).
      // The pause between asks is random and short: a fixed one near the event's frame cadence
      // (a frame, then 250 ms idle) locked onto the idle gap, and a CI run found no work 3 times in 3.
      const patience = Date.now() + 15_000
      for (let requestId = 1; Date.now() < patience; requestId++) {
        say({ type: 'lease-request', requestId, capability: { ...capability, kinds: ['vertex@1'] } })
        const answer = await inbox.until((m) => m.type === 'lease' || m.type === 'error', 10_000)
        if (answer?.type !== 'lease')
          return ['libp2p:liar', { ok: false, why: `no lease answer: ${JSON.stringify(answer)}` }]
        if (answer.lease === null) {
          await new Promise((r) => setTimeout(r, 30 + Math.random() * 170))
          continue
        }
        const block = answer.lease.block as unknown as Block
        const colours = new Uint8Array(block.vertexCount * 4)
        for (let i = 0; i < colours.length; i += 4) colours.set([211, 17, 99, 255], i)
        const bytes = vertexKind.result.encode(blockResult(block, colours))
        const key = answer.frameKey === undefined ? undefined : await importFrameKey(answer.frameKey)
        const result = await encodeResultFrame(100 + requestId, answer.lease.leaseId, bytes, key)
        opened.send(frame(FrameKind.binary, result))
        const told = await inbox.until((m) => m.type === 'error', 15_000)
        if (told?.type === 'error' && told.code === 'quarantined') {
          opened.abort(new Error('fuzz case over'))
          return ['libp2p:liar', { ok: true }]
        }
        // A lie that came after its block was done elsewhere (a backup copy under load) is not
        // counted, so nothing checks it: the liar asks again and lies again. One that was counted
        // and not caught, or an error of another kind, is a failure.
        if (told !== undefined || lies >= 1) {
          opened.abort(new Error('fuzz case over'))
          return ['libp2p:liar', { ok: false, why: `a lie was not caught: ${JSON.stringify(told)}` }]
        }
        lies++
      }
      opened.abort(new Error('fuzz case over'))
      return ['libp2p:liar-no-work', { ok: true }]
    } finally {
      await liar.stop()
    }
  }

  async function workCase(pieces: WorkPiece[]): Promise<Verdict> {
    const stream = await openStream()
    if (typeof stream === 'string') return { ok: false, why: `could not open a work stream: ${stream}` }
    const problem = await streamCase(
      stream,
      pieces.map((piece) => encodePiece(piece, token)),
      (answer) => {
        if (answer.kind !== FrameKind.control) return undefined
        const message = parseControl(toParticipantSchema, answer.payload)
        return message.type === 'error' && !errorCodes.includes(message.code)
          ? `unknown error code ${message.code}`
          : undefined
      },
    )
    return problem === undefined ? { ok: true } : { ok: false, why: problem }
  }

  return {
    async batch(seed) {
      const cases: [string, Verdict, unknown][] = []
      for (const pieces of fc.sample(workSession, { numRuns: 3, seed }))
        cases.push(['libp2p:work', await workCase(pieces), pieces])
      for (const pieces of fc.sample(admitSession, { numRuns: 2, seed }))
        cases.push([...(await admitCase(pieces)), pieces])
      // A new identity each time (a caught one stays caught): one batch in three.
      if (seed % 3 === 0) cases.push([...(await liarCase()), 'liar'])
      for (const message of fc.sample(gossipMessage, { numRuns: 3, seed })) {
        // Publishing may find no subscribed peer yet; what matters is that the event survives it.
        await node.services.gossip
          .publish(ready.topics[message.topic % ready.topics.length]!, message.data)
          .catch(() => undefined)
        cases.push(['libp2p:gossip', { ok: true }, message])
      }
      return cases
    },
    stop: async () => {
      await node.stop()
      await stranger.stop()
    },
  }
}
