import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { recorderLikeWebm } from '../support/media.ts'
import { startProxy } from '../support/tcp-proxy.ts'
import { createRecording } from '../support/recording-server-process.ts'

/*
 * The recorder's uploader against the server peer over a WebSocket through a TCP proxy that can be
 * cut: bytes produced while the link is down are kept, sent again from the server's end once it is
 * back, and what the server stores is exactly what the recorder produced.
 */

const stops: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const stop of stops.reverse()) await stop()
})

const random = (n: number, seed: number) => {
  let x = seed
  return Uint8Array.from({ length: n }, () => (x = (x * 1103515245 + 12345) & 0x7fffffff) & 255)
}

describe('the recorder’s uploader', () => {
  it('survives the network cut for 5 s mid-recording: the stored bytes are identical to what was produced', async () => {
    const server = await startRecordingServer({ root: await mkdtemp(join(tmpdir(), 'crowdmesh-resume-')) })
    stops.push(() => server.close())
    const proxy = await startProxy(Number(new URL(server.url).port))
    stops.push(() => proxy.close())
    const created = await createRecording(server)
    const uploader = new Uploader({
      recording: created.id,
      token: created.writeToken,
      connect: connectWebSocket(`ws://127.0.0.1:${proxy.port}/api/recordings/upload`),
      connectTimeoutMs: 1000,
    })
    // A recorder's pace: a chunk every 100 ms for 9 s, the link cut from 2 s to 7 s.
    const media = await recorderLikeWebm(server.store.root, 10)
    const size = Math.ceil(media.length / 90)
    let acknowledgedAtCut = 0
    for (let i = 0; i < 90; i++) {
      if (i === 20) {
        acknowledgedAtCut = uploader.progress.acknowledged
        proxy.cut(5000)
      }
      await uploader.append(media.slice(i * size, (i + 1) * size))
      await new Promise((r) => setTimeout(r, 100))
    }
    const shareId = await uploader.publish()
    expect(shareId).toBe(created.shareId)
    expect(acknowledgedAtCut).toBeGreaterThan(0)
    expect(uploader.progress.reconnects).toBeGreaterThanOrEqual(1)
    const stored = await readFile(server.store.mediaPath(created.id))
    expect(Buffer.compare(stored, media)).toBe(0)
  }, 60_000)

  it('gives up with a clear error on a wrong token instead of retrying for ever', async () => {
    const server = await startRecordingServer({ root: await mkdtemp(join(tmpdir(), 'crowdmesh-resume-')) })
    stops.push(() => server.close())
    const created = await createRecording(server)
    const uploader = new Uploader({
      recording: created.id,
      token: 'wrong',
      connect: connectWebSocket(`${server.url.replace('http', 'ws')}/api/recordings/upload`),
    })
    await uploader.append(random(100, 1))
    // Whether the refusal comes before or after publish, publish reports it.
    await expect(uploader.publish()).rejects.toThrow(/unauthorized: wrong write token/)
    await expect(uploader.append(random(10, 2))).rejects.toThrow(/unauthorized/)
  })
})
