import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { WebSocket as WsClient } from 'ws'
import { fetchBootstrap } from '../../peer/mesh/bootstrap.ts'
import { connectRtc } from '../../peer/recorder/rtc-connection.ts'
import { type Connect, Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { startSignaling } from '../../signaling/server.ts'
import { webAppDir } from '../../signaling/web-app.ts'
import { recorderLikeWebm } from '../support/media.ts'
import { createRecording, linkToken } from '../support/recording-server-process.ts'

/*
 * Recorder → server peer over a real WebRTC data channel (simple-peer with node-datachannel on both
 * sides), negotiated through the signaling server: the server peer registers with an operator link,
 * a recorder finds it in its bootstrap. When WebRTC cannot connect, the uploader falls back to the
 * WebSocket within its connect timeout, and the bytes arrive the same.
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

async function setUp() {
  const signaling = await startSignaling({ webAppDir })
  stops.push(() => signaling.close())
  const { joinLinks } = signaling.createEvent('recordings')
  const server = await startRecordingServer({
    root: await mkdtemp(join(tmpdir(), 'crowdmesh-rtc-')),
    eventLink: joinLinks.operator,
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
    const { uploader, kinds } = uploaderOf(created, transports(joinLinks.recorder), 8000)
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
        return { created, ...uploaderOf(created, transports(joinLinks.recorder), 8000) }
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
})
