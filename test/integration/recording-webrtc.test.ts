import { once } from 'node:events'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import SimplePeer from '@thaunknown/simple-peer/lite.js'
import { afterAll, describe, expect, it } from 'vitest'
import { WebSocket as WsClient } from 'ws'
import { fetchBootstrap } from '../../peer/mesh/bootstrap.ts'
import { connectRtc, RtcUnavailableError } from '../../peer/recorder/rtc-connection.ts'
import { type Connect, type UploadConnection, Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { type RecordingLimits, startRecordingServer } from '../../peer/server/recording-server.ts'
import { type RtcUploadsInit, serveRtcUploads } from '../../peer/server/rtc-uploads.ts'
import { RECORDER_BYE, type ToRecorder } from '../../peer/server/upload-protocol.ts'
import { startSignaling } from '../../signaling/server.ts'
import { webAppDir } from '../../signaling/web-app.ts'
import { recorderLikeWebm } from '../support/media.ts'
import { createRecording, linkToken } from '../support/recording-server-process.ts'

/*
 * Recorder → server peer over a real WebRTC data channel (simple-peer with node-datachannel on both
 * sides), negotiated through the signaling server: the server peer registers with an operator link,
 * a recorder finds it in its bootstrap. When WebRTC cannot connect, the uploader falls back to the
 * WebSocket within its connect timeout, and the bytes arrive the same. A data channel gets the
 * WebSocket's limits (hello timeout, pre-hello size, idle timeout), and what a stranger can make the
 * server peer hold while negotiating is bounded.
 */

const stops: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const stop of stops.reverse()) await stop()
})

/** The HTTP status a WebSocket upgrade is refused with (101 if it is accepted). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WsClient(url.replace('http', 'ws'))
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      ws.terminate()
    })
    ws.on('open', () => {
      resolve(101)
      ws.close()
    })
    ws.on('error', reject)
  })
}

async function setUp(limits: Partial<RecordingLimits> = {}) {
  const signaling = await startSignaling({ webAppDir })
  stops.push(() => signaling.close())
  const { joinLinks } = signaling.createEvent('recordings')
  const server = await startRecordingServer({
    root: await mkdtemp(join(tmpdir(), 'crowdmesh-rtc-')),
    eventLink: joinLinks.operator,
    limits,
  })
  stops.push(() => server.close())
  await server.rtc!.registered()
  const create = () => createRecording(server, undefined, linkToken(joinLinks.recorder))
  return { signaling, server, joinLinks, create }
}

/** An uploader for a recording over these transports, noting every transport it used. */
function uploaderOf(
  created: { id: string; writeToken: string },
  connect: Connect[],
  connectTimeoutMs: number,
) {
  const kinds = new Set<string>()
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect,
    connectTimeoutMs,
    onProgress: (p) => p.transportKind !== undefined && kinds.add(p.transportKind),
  })
  return { uploader, kinds }
}

/** The recorder's transports as the page builds them from its link. */
function transports(link: string, override?: { serverPeer?: string }) {
  const token = link.split('/').at(-1)!
  const base = new URL(link).origin
  let wsUrl = ''
  const rtc = connectRtc({
    signalUrl: `${base.replace('http', 'ws')}/signal?token=${token}`,
    serverPeer: async (signal) => {
      const bootstrap = await fetchBootstrap(link, signal)
      wsUrl = `${bootstrap.recordingServer!.url.replace('http', 'ws')}/api/recordings/upload`
      return override?.serverPeer ?? bootstrap.recordingServer?.peer
    },
  })
  return [rtc, (signal: AbortSignal) => connectWebSocket(wsUrl)(signal)]
}

/**
 * A raw data channel to the server peer, as a recorder opens it: anything may be sent on it. A
 * negotiation fails now and then inside libdatachannel on the recorder's side ("remote candidate
 * without ICE transport", about 1 in 150 before the server let closed peers go; cause unproven); a
 * recorder tries again, as this does.
 */
async function openChannel(link: string): Promise<UploadConnection> {
  const [rtc] = transports(link)
  for (let attempt = 1; ; attempt++) {
    try {
      return await rtc!(AbortSignal.timeout(8000))
    } catch (error) {
      if (!(error instanceof RtcUnavailableError) || attempt === 3) throw error
    }
  }
}

/**
 * Every answer on a connection as it arrives. A data channel's close reaches the other side late on a
 * loaded machine (seconds, or not before ICE gives up), so the tests time the server's own letting
 * go (`whenServerLetGo`) rather than the recorder's noticing it.
 */
function answersOn(connection: UploadConnection): ToRecorder[] {
  const answers: ToRecorder[] = []
  void (async () => {
    try {
      for await (const answer of connection.messages()) answers.push(answer)
    } catch {
      // The connection ended: what arrived before is what the test reads.
    }
  })()
  return answers
}

/** When the server peer held no connected recorder any more; fails if it still holds one after `ms`. */
async function whenServerLetGo(
  server: { rtc?: { connected: number } | undefined },
  ms: number,
): Promise<number> {
  const deadline = Date.now() + ms
  while (server.rtc!.connected > 0) {
    if (Date.now() > deadline)
      throw new Error(`the server still held ${server.rtc!.connected} after ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
  return Date.now()
}

/** Uploads a recording over WebRTC alone and checks it is published byte for byte. */
async function uploadsIntact(
  server: Awaited<ReturnType<typeof setUp>>['server'],
  link: string,
  create: () => Promise<{ id: string; writeToken: string; shareId: string }>,
) {
  const created = await create()
  // WebRTC alone: a negotiation that fails inside libdatachannel now and then on a loaded machine
  // is tried again, as a recorder does, rather than handed to the WebSocket.
  const { uploader, kinds } = uploaderOf(created, [transports(link)[0]!], 8000)
  const media = await recorderLikeWebm(server.store.root, 2)
  await uploader.append(media)
  expect(await uploader.publish()).toBe(created.shareId)
  expect([...kinds]).toEqual(['webrtc'])
  expect(Buffer.compare(await readFile(server.store.mediaPath(created.id)), media)).toBe(0)
}

/**
 * A server peer's WebRTC side with its own limits, in front of a WebSocket-only recording server:
 * the event's recorders find it in their bootstrap and upload through it.
 */
async function setUpRtcLimits(limits: Partial<RtcUploadsInit>) {
  const signaling = await startSignaling()
  stops.push(() => signaling.close())
  const { joinLinks } = signaling.createEvent('limits')
  const server = await startRecordingServer({ root: await mkdtemp(join(tmpdir(), 'crowdmesh-rtc-')) })
  stops.push(() => server.close())
  const stopping = new AbortController()
  stops.push(() => Promise.resolve(stopping.abort()))
  const rtc = await serveRtcUploads({
    link: joinLinks.operator,
    publicUrl: server.url,
    accept: (channel) => server.accept(channel),
    signal: stopping.signal,
    ...limits,
  })
  await rtc.registered()
  return { signaling, server, joinLinks, rtc, create: () => createRecording(server) }
}

/** A valid offer, as a recorder's first signal: strangers replay it. */
async function anOffer(): Promise<unknown> {
  const peer = new SimplePeer({ initiator: true, objectMode: true })
  const offer = await new Promise<unknown>((resolve) => peer.on('signal', resolve))
  peer.destroy()
  return offer
}

/** A stranger's own signaling socket at a recorder link: it sends what it likes to `to`. */
async function stranger(signalingUrl: string, link: string) {
  const ws = new WsClient(`${signalingUrl.replace('http', 'ws')}/signal?token=${linkToken(link)}`)
  stops.push(() => Promise.resolve(ws.terminate()))
  await once(ws, 'message')
  return (to: string, data: unknown) => ws.send(JSON.stringify({ to, data }))
}

describe('uploads over WebRTC', () => {
  it('the bootstrap names the server peer while it is connected, and only an operator link may register', async () => {
    const { signaling, server, joinLinks } = await setUp()
    const bootstrap = await fetchBootstrap(joinLinks.recorder, AbortSignal.timeout(5000))
    expect(bootstrap.recordingServer).toEqual({ peer: server.rtc!.peer, url: server.url })
    // A participant's link cannot register as the server peer: the socket is refused before any upgrade.
    const participantToken = joinLinks.participant.split('/').at(-1)!
    expect(
      await upgradeStatus(`${signaling.url}/signal?token=${participantToken}&serve=recordings&url=http://x`),
    ).toBe(403)
    const operatorToken = joinLinks.operator.split('/').at(-1)!
    expect(
      await upgradeStatus(`${signaling.url}/signal?token=${operatorToken}&serve=recordings&url=ftp://x`),
    ).toBe(400)
    // The recorder page: at a recorder link, and at an operator's link with ?record=1; a participant's
    // link may not create recordings, so ?record=1 on it still opens the participant app.
    const title = async (url: string) => /<title>([^<]*)<\/title>/.exec(await (await fetch(url)).text())?.[1]
    expect(await title(joinLinks.recorder)).toBe('crowdmesh — record')
    expect(await title(`${joinLinks.operator}?record=1`)).toBe('crowdmesh — record')
    expect(await title(`${joinLinks.participant}?record=1`)).toBe('crowdmesh')
    expect(await title(joinLinks.participant)).toBe('crowdmesh')
    await server.close()
    await expect
      .poll(
        async () => (await fetchBootstrap(joinLinks.recorder, AbortSignal.timeout(5000))).recordingServer,
        {
          timeout: 5000,
        },
      )
      .toBe(null)
  }, 30_000)

  it('carries a recording over a data channel: every byte acknowledged, published, identical', async () => {
    const { server, joinLinks, create } = await setUp()
    const created = await create()
    // WebRTC alone (the fallback has its own test): a failed negotiation is tried again.
    const { uploader, kinds } = uploaderOf(created, [transports(joinLinks.recorder)[0]!], 8000)
    const media = await recorderLikeWebm(server.store.root, 6)
    const size = Math.ceil(media.length / 24)
    for (let i = 0; i < 24; i++) {
      await uploader.append(media.slice(i * size, (i + 1) * size))
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await uploader.publish()).toBe(created.shareId)
    expect([...kinds]).toEqual(['webrtc'])
    expect(Buffer.compare(await readFile(server.store.mediaPath(created.id)), media)).toBe(0)
    const page = await fetch(`${server.url}/v/${created.shareId}/video.webm`)
    expect(page.status).toBe(200)
  }, 60_000)

  it('falls back to the WebSocket when WebRTC cannot connect', async () => {
    const { server, joinLinks, create } = await setUp()
    const created = await create()
    // An offer to a peer that is not there: the signaling server says so, and the WebSocket takes over.
    const { uploader, kinds } = uploaderOf(
      created,
      transports(joinLinks.recorder, { serverPeer: 'nobody-here' }),
      3000,
    )
    const media = await recorderLikeWebm(server.store.root, 3)
    await uploader.append(media)
    expect(await uploader.publish()).toBe(created.shareId)
    expect([...kinds]).toEqual(['websocket'])
    expect(Buffer.compare(await readFile(server.store.mediaPath(created.id)), media)).toBe(0)
  }, 60_000)

  it('carries two recorders on one recorder link at once, each over its own data channel', async () => {
    // Before issue 12 both had the link's peer id: the second's signaling socket closed the first's,
    // and its offer tore down the first recorder's data channel.
    const { server, joinLinks, create } = await setUp()
    const media = await recorderLikeWebm(server.store.root, 4)
    const recorders = await Promise.all(
      [0, 1].map(async () => {
        const created = await create()
        return { created, ...uploaderOf(created, [transports(joinLinks.recorder)[0]!], 8000) }
      }),
    )
    const size = Math.ceil(media.length / 16)
    for (let i = 0; i < 16; i++) {
      for (const { uploader } of recorders) await uploader.append(media.slice(i * size, (i + 1) * size))
      await new Promise((r) => setTimeout(r, 50))
    }
    for (const { uploader, created, kinds } of recorders) {
      expect(await uploader.publish()).toBe(created.shareId)
      expect([...kinds]).toEqual(['webrtc'])
      expect(uploader.progress.reconnects).toBe(0)
      expect(Buffer.compare(await readFile(server.store.mediaPath(created.id)), media)).toBe(0)
    }
  }, 60_000)

  it('lets a peer go when its recorder closes the data channel, so closed peers never fill the server', async () => {
    // Before issue 12's fix simple-peer tore such a peer down without 'close': it stayed counted, its
    // session open until the idle timeout, and after maxPeers of them no recorder could connect.
    const { server, joinLinks, create } = await setUp()
    const created = await create()
    for (let i = 0; i < 3; i++) {
      const channel = await openChannel(joinLinks.recorder)
      channel.send(JSON.stringify({ type: 'hello', recording: created.id, token: created.writeToken }))
      expect((await channel.messages()[Symbol.asyncIterator]().next()).value).toEqual({
        type: 'ready',
        offset: 0,
      })
      expect(server.rtc!.connected).toBe(1)
      channel.close()
      await expect.poll(() => server.rtc!.connected, { timeout: 10_000 }).toBe(0)
      await expect.poll(() => server.rtc!.peers, { timeout: 10_000 }).toBe(0)
    }
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it('closes a data channel that says no hello in time, and lets its peer go', async () => {
    const { server, joinLinks, create } = await setUp({ helloTimeoutMs: 1000 })
    const silent = await openChannel(joinLinks.recorder)
    const opened = Date.now()
    const answers = answersOn(silent)
    await expect.poll(() => server.rtc!.connected).toBe(1)
    const at = await whenServerLetGo(server, 4000)
    silent.close()
    expect(answers).toEqual([])
    expect(at - opened).toBeGreaterThan(500)
    expect(at - opened).toBeLessThan(4000)
    await expect.poll(() => server.rtc!.peers, { timeout: 5000 }).toBe(0)
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it('refuses a message larger than the pre-hello limit before hello, binary or text, at once', async () => {
    const { server, joinLinks, create } = await setUp({ helloTimeoutMs: 30_000 })
    for (const message of [new Uint8Array(64 * 1024).fill(7), 'x'.repeat(4096)]) {
      const channel = await openChannel(joinLinks.recorder)
      await expect.poll(() => server.rtc!.connected).toBe(1)
      const answers = answersOn(channel)
      const sent = Date.now()
      channel.send(message)
      // Refused for its size (not as a message before hello, or as malformed), and let go long
      // before the hello timeout, after the grace its answer has to arrive.
      const at = await whenServerLetGo(server, 10_000)
      await expect.poll(() => answers.length, { timeout: 5000 }).toBe(1)
      channel.close()
      expect(answers).toEqual([{ type: 'error', code: 'too-large', message: expect.stringMatching(/hello/) }])
      expect(at - sent).toBeLessThan(10_000)
    }
    // No message can be larger than what the server peer's SCTP endpoint advertises (libdatachannel
    // cuts a larger one to it): that bounds what a data channel holds before the session sees it.
    const channel = await openChannel(joinLinks.recorder)
    expect(() => channel.send(new Uint8Array(2 * 1024 * 1024))).toThrow(/message size/i)
    channel.close()
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it('closes a data channel that goes quiet after hello, not before its idle timeout', async () => {
    const { server, joinLinks, create } = await setUp({ helloTimeoutMs: 500, uploadIdleTimeoutMs: 2000 })
    const created = await create()
    const quiet = await openChannel(joinLinks.recorder)
    const answers = answersOn(quiet)
    const said = Date.now()
    quiet.send(JSON.stringify({ type: 'hello', recording: created.id, token: created.writeToken }))
    await expect.poll(() => server.rtc!.connected).toBe(1)
    const at = await whenServerLetGo(server, 6000)
    quiet.close()
    // Past the hello timeout the connection that said hello stayed open; it was let go once quiet that long.
    expect(answers).toEqual([{ type: 'ready', offset: 0 }])
    expect(at - said).toBeGreaterThan(1500)
    expect(at - said).toBeLessThan(5000)
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it('holds at most maxPeers peers for strangers who offer and never connect, each until its connect timeout', async () => {
    const { signaling, joinLinks, rtc, create, server } = await setUpRtcLimits({
      maxPeers: 3,
      // Long enough that offers handled slowly on a loaded machine still overlap.
      connectTimeoutMs: 4000,
    })
    const offer = await anOffer()
    const strangers = await Promise.all(
      [0, 1, 2, 3, 4].map(() => stranger(signaling.url, joinLinks.recorder)),
    )
    for (const send of strangers) send(rtc.peer, offer)
    // One of them offers again and again, all at once: each replaced peer counts until it is closed.
    for (let i = 0; i < 30; i++) strangers[0]!(rtc.peer, offer)
    const held: number[] = []
    const sample = setInterval(() => held.push(rtc.peers), 5)
    await new Promise((r) => setTimeout(r, 3000))
    clearInterval(sample)
    // Never more than maxPeers; and the limit did bind (how many peers a stranger's replayed offer
    // keeps before libdatachannel gives up on it varies with the machine's load).
    expect(Math.max(...held)).toBeLessThanOrEqual(3)
    expect(rtc.refused).toBeGreaterThan(0)
    // Never connected: each goes after the connect timeout, and recorders are served again.
    await expect.poll(() => rtc.peers, { timeout: 8000 }).toBe(0)
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it('lets a peer go at once when its recorder gives up the negotiation and says so', async () => {
    const { signaling, joinLinks, rtc, create, server } = await setUpRtcLimits({ connectTimeoutMs: 30_000 })
    const offer = await anOffer()
    const send = await stranger(signaling.url, joinLinks.recorder)
    const other = await stranger(signaling.url, joinLinks.recorder)
    send(rtc.peer, offer)
    other(rtc.peer, offer)
    await expect.poll(() => rtc.peers, { timeout: 5000 }).toBe(2)
    // Another id's bye is not its own: only the peer of the id that says it goes.
    send(rtc.peer, { type: RECORDER_BYE })
    await expect.poll(() => rtc.peers, { timeout: 5000 }).toBe(1)
    await new Promise((r) => setTimeout(r, 500))
    expect(rtc.peers).toBe(1)
    other(rtc.peer, { type: RECORDER_BYE })
    await expect.poll(() => rtc.peers, { timeout: 5000 }).toBe(0)
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)

  it("drops a stranger's peer past its signaling budget, long before its connect timeout", async () => {
    const { signaling, joinLinks, rtc, create, server } = await setUpRtcLimits({
      connectTimeoutMs: 30_000,
      maxSignalsPerPeer: 20,
      maxSignalBytesPerPeer: 16 * 1024,
    })
    const offer = await anOffer()
    // Candidates the native side would keep (and try to reach) until the connect timeout.
    const candidate = (i: number) => ({
      type: 'candidate',
      candidate: { candidate: `candidate:${i} 1 UDP 1 10.9.${i >> 8}.${i & 255} 9 typ host`, sdpMid: '0' },
    })
    const flooding = await stranger(signaling.url, joinLinks.recorder)
    flooding(rtc.peer, offer)
    await expect.poll(() => rtc.peers).toBe(1)
    for (let i = 0; i < 19; i++) flooding(rtc.peer, candidate(i))
    await new Promise((r) => setTimeout(r, 500))
    expect(rtc.peers).toBe(1)
    flooding(rtc.peer, candidate(19))
    await expect.poll(() => rtc.peers, { timeout: 2000 }).toBe(0)
    // A second offer from that socket starts afresh, and large signals spend the budget too.
    flooding(rtc.peer, offer)
    await expect.poll(() => rtc.peers).toBe(1)
    flooding(rtc.peer, { type: 'candidate', candidate: { candidate: 'x'.repeat(16_000), sdpMid: '0' } })
    await expect.poll(() => rtc.peers, { timeout: 2000 }).toBe(0)
    await uploadsIntact(server, joinLinks.recorder, create)
  }, 60_000)
})
