import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import parsePrometheus from 'parse-prometheus-text-format'
import { type RecordingServer, startRecordingServer } from '../../peer/server/recording-server.ts'
import { encodeChunk, type ToRecorder, toRecorderSchema } from '../../peer/server/upload-protocol.ts'
import {
  createRecording,
  type ServerProcess,
  spawnRecordingServer,
} from '../support/recording-server-process.ts'
import { decodeErrors, frameCount, probe, recorderLikeWebm, topLevelBoxes } from '../support/media.ts'

/*
 * The server peer's upload path over a real WebSocket: chunks at byte offsets, acknowledged once
 * durable, a write at the wrong offset refused with where to resume, tokens checked, nothing
 * reachable but a published recording's share link; and every acknowledged byte still there after
 * the server process is killed.
 */

let server: RecordingServer
let media: Uint8Array
const children: ChildProcess[] = []

beforeAll(async () => {
  const root = await mkdtemp(join(tmpdir(), 'crowdmesh-recordings-'))
  server = await startRecordingServer({ root })
  media = await recorderLikeWebm(root, 10)
}, 60_000)

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  await server?.close()
})

function create(
  target: RecordingServer | ServerProcess,
): Promise<{ id: string; writeToken: string; shareId: string }> {
  return createRecording(target, { mimeType: 'video/webm;codecs=vp9' })
}

/** A recorder's connection: send messages, and take the server's answers in order. */
class Recorder {
  readonly ws: WebSocket
  private readonly answers: ToRecorder[] = []
  private waiting: ((answer: ToRecorder) => void) | undefined
  readonly closed: Promise<number>

  constructor(url: string) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/recordings/upload`)
    this.ws.on('message', (data: Buffer) => {
      const answer = toRecorderSchema.parse(JSON.parse(data.toString('utf8')))
      if (this.waiting !== undefined) {
        const w = this.waiting
        this.waiting = undefined
        w(answer)
      } else this.answers.push(answer)
    })
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => resolve(code)))
  }

  async opened(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN) return
    await new Promise((resolve, reject) => {
      this.ws.once('open', resolve)
      this.ws.once('error', reject)
    })
  }

  next(): Promise<ToRecorder> {
    const answer = this.answers.shift()
    if (answer !== undefined) return Promise.resolve(answer)
    return new Promise((resolve) => (this.waiting = resolve))
  }

  async hello(recording: string, token: string): Promise<ToRecorder> {
    await this.opened()
    this.ws.send(JSON.stringify({ type: 'hello', recording, token }))
    return this.next()
  }

  chunk(seq: number, offset: number, data: Uint8Array): Promise<ToRecorder> {
    this.ws.send(encodeChunk(seq, offset, data))
    return this.next()
  }
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13) & 255)

describe('the server peer takes recordings', () => {
  it('appends chunks at their offsets, acknowledges each, and serves the published recording at the share link only', async () => {
    const { id, writeToken, shareId } = await create(server)
    const recorder = new Recorder(server.url)
    expect(await recorder.hello(id, writeToken)).toEqual({ type: 'ready', offset: 0 })
    const parts = [media.subarray(0, 1000), media.subarray(1000, 71_000), media.subarray(71_000)]
    let offset = 0
    for (const [seq, part] of parts.entries()) {
      const ack = await recorder.chunk(seq, offset, part)
      offset += part.length
      expect(ack).toEqual({ type: 'ack', seq, offset })
    }
    // Not published yet: the share link shows nothing.
    expect((await fetch(`${server.url}/v/${shareId}/media`)).status).toBe(404)
    recorder.ws.send(JSON.stringify({ type: 'publish', bytes: offset }))
    expect(await recorder.next()).toEqual({ type: 'published', shareId, bytes: offset })
    const served = new Uint8Array(await (await fetch(`${server.url}/v/${shareId}/media`)).arrayBuffer())
    expect(Buffer.compare(served, Buffer.concat(parts))).toBe(0)
    // Processed while it arrived: a WebM with its duration, an MP4, a thumbnail, and the share page.
    const folder = join(server.store.root, id)
    const webm = await probe(join(folder, 'video.webm'))
    expect(Math.abs(webm.duration - 10)).toBeLessThan(0.5)
    expect(webm.codecs).toEqual(['vp8', 'opus'])
    const fragmented = await probe(join(folder, 'video.fmp4.mp4'))
    expect(fragmented.codecs).toEqual(['h264', 'aac'])
    // The published MP4 has its moov first (ftyp, moov, mdat), its duration, and every frame decodes.
    const mp4Url = `${server.url}/v/${shareId}/video.mp4`
    const mp4Bytes = new Uint8Array(await (await fetch(mp4Url)).arrayBuffer())
    expect(topLevelBoxes(mp4Bytes)).toEqual(['ftyp', 'moov', 'mdat'])
    const mp4 = await probe(mp4Url)
    expect(mp4.codecs).toEqual(['h264', 'aac'])
    expect(Math.abs(mp4.duration - 10)).toBeLessThan(0.5)
    expect(await decodeErrors(mp4Url)).toBe('')
    expect(await frameCount(mp4Url)).toBe(300)
    const page = await (await fetch(`${server.url}/v/${shareId}`)).text()
    expect(page).toMatch(/<video[^>]*poster="\/v\/[\w-]+\/thumb\.jpg"/)
    const thumb = await fetch(`${server.url}/v/${shareId}/thumb.jpg`)
    expect(thumb.headers.get('content-type')).toBe('image/jpeg')
    expect((await thumb.arrayBuffer()).byteLength).toBeGreaterThan(1000)
    // Seeking: a byte range comes back as 206 with just those bytes.
    const ranged = await fetch(`${server.url}/v/${shareId}/video.webm`, {
      headers: { range: 'bytes=100-199' },
    })
    expect(ranged.status).toBe(206)
    expect((await ranged.arrayBuffer()).byteLength).toBe(100)
    // A published recording takes no more bytes.
    const late = await recorder.chunk(3, offset, bytes(10, 4))
    expect(late).toMatchObject({ type: 'error', code: 'published' })
    // The server peer's metrics (Prometheus text format) counted the bytes, the upload and the publish.
    const metrics = parsePrometheus(await (await fetch(`${server.url}/metrics`)).text())
    const value = (name: string, labels: Record<string, string> = {}) =>
      (metrics.find((f) => f.name === name)?.metrics ?? [])
        .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
        .reduce((sum, m) => sum + Number(m.value ?? 0), 0)
    expect(
      value('crowdmesh_recording_bytes_received_total', { transport: 'websocket' }),
    ).toBeGreaterThanOrEqual(offset)
    expect(value('crowdmesh_recording_uploads_total', { transport: 'websocket' })).toBeGreaterThanOrEqual(1)
    expect(value('crowdmesh_recordings_published_total')).toBeGreaterThanOrEqual(1)
    expect(value('crowdmesh_recording_refusals_total', { code: 'published' })).toBeGreaterThanOrEqual(1)
    expect(value('crowdmesh_recording_storage_bytes')).toBeGreaterThan(0)
  })

  it('refuses a chunk at the wrong offset (a gap or an overlap) with where to resume, and goes on', async () => {
    const { id, writeToken } = await create(server)
    const recorder = new Recorder(server.url)
    await recorder.hello(id, writeToken)
    expect(await recorder.chunk(0, 0, bytes(100, 1))).toEqual({ type: 'ack', seq: 0, offset: 100 })
    expect(await recorder.chunk(1, 150, bytes(10, 2))).toMatchObject({
      type: 'error',
      code: 'offset-mismatch',
      expected: 100,
      seq: 1,
    })
    expect(await recorder.chunk(2, 50, bytes(10, 3))).toMatchObject({
      type: 'error',
      code: 'offset-mismatch',
      expected: 100,
    })
    expect(await recorder.chunk(3, 100, bytes(10, 4))).toEqual({ type: 'ack', seq: 3, offset: 110 })
    const stored = await readFile(server.store.mediaPath(id))
    expect(Buffer.compare(stored, Buffer.concat([bytes(100, 1), bytes(10, 4)]))).toBe(0)
    // Publishing with a length the server does not hold is refused.
    recorder.ws.send(JSON.stringify({ type: 'publish', bytes: 200 }))
    expect(await recorder.next()).toMatchObject({ type: 'error', code: 'offset-mismatch', expected: 110 })
  })

  it('refuses a wrong write token, chunks before hello, malformed messages and unknown or crafted ids', async () => {
    const { id } = await create(server)
    const wrong = new Recorder(server.url)
    expect(await wrong.hello(id, 'not-the-token')).toMatchObject({ type: 'error', code: 'unauthorized' })
    expect(await wrong.closed).toBe(1008)

    const early = new Recorder(server.url)
    await early.opened()
    expect(await early.chunk(0, 0, bytes(10, 1))).toMatchObject({ type: 'error', code: 'unauthorized' })

    const garbage = new Recorder(server.url)
    await garbage.opened()
    garbage.ws.send('{"type":"hello"')
    expect(await garbage.next()).toMatchObject({ type: 'error', code: 'invalid-message' })

    const crafted = new Recorder(server.url)
    expect(await crafted.hello('../../../../etc/passwd', 'x')).toMatchObject({
      type: 'error',
      code: 'invalid-message',
    })
    for (const path of [
      '/v/..%2F..%2Fetc%2Fpasswd/media',
      '/v/AAAAAAAAAAAAAAAAAAAAAA/media',
      '/api/recordings',
    ])
      expect((await fetch(`${server.url}${path}`)).status).toBe(404)
    expect(
      (
        await fetch(`${server.url}/api/recordings`, {
          method: 'POST',
          headers: { authorization: `Bearer ${server.recorderKey}` },
          body: '{"mimeType":1}',
        })
      ).status,
    ).toBe(400)
    // The server still serves everyone else.
    const { id: other, writeToken } = await create(server)
    expect(await new Recorder(server.url).hello(other, writeToken)).toEqual({ type: 'ready', offset: 0 })
  })

  it('keeps every acknowledged byte when its process is killed, and the recorder resumes from there', async () => {
    const root = await mkdtemp(join(tmpdir(), 'crowdmesh-recordings-crash-'))
    const first = await serverProcess(root)
    const { id, writeToken, shareId } = await create(first)
    const recorder = new Recorder(first.url)
    await recorder.hello(id, writeToken)
    const all = media
    let acknowledged = 0
    // Chunks go out without waiting; the kill lands while some are in flight.
    const size = 16_384
    const half = Math.floor(all.length / 2)
    for (let offset = 0, seq = 0; offset < half; offset += size, seq++)
      recorder.ws.send(encodeChunk(seq, offset, all.subarray(offset, Math.min(offset + size, half))))
    for (;;) {
      const answer = await recorder.next()
      if (answer.type === 'ack') acknowledged = answer.offset
      if (acknowledged >= half / 2) break
    }
    first.child.kill('SIGKILL')
    await recorder.closed

    const second = await serverProcess(root, first.port)
    const again = new Recorder(second.url)
    const ready = await again.hello(id, writeToken)
    expect(ready.type).toBe('ready')
    const resumeAt = (ready as { offset: number }).offset
    expect(resumeAt).toBeGreaterThanOrEqual(acknowledged)
    // What the server kept is exactly the recorder's bytes up to there.
    const kept = await readFile(join(root, id, 'media.bin'))
    expect(Buffer.compare(kept, Buffer.from(all.subarray(0, resumeAt)))).toBe(0)
    for (let offset = resumeAt, seq = 100; offset < all.length; offset += size, seq++) {
      const end = Math.min(offset + size, all.length)
      expect(await again.chunk(seq, offset, all.subarray(offset, end))).toEqual({
        type: 'ack',
        seq,
        offset: end,
      })
    }
    again.ws.send(JSON.stringify({ type: 'publish', bytes: all.length }))
    expect(await again.next()).toMatchObject({ type: 'published', shareId })
    const served = new Uint8Array(await (await fetch(`${second.url}/v/${shareId}/media`)).arrayBuffer())
    expect(Buffer.compare(served, all)).toBe(0)
    expect(Math.abs((await probe(join(root, id, 'video.webm'))).duration - 10)).toBeLessThan(0.5)
  }, 60_000)

  it('answers a recording ffmpeg cannot read with a clear error at publish, and keeps it unpublished', async () => {
    const { id, writeToken, shareId } = await create(server)
    const recorder = new Recorder(server.url)
    await recorder.hello(id, writeToken)
    expect(await recorder.chunk(0, 0, bytes(50_000, 5))).toEqual({ type: 'ack', seq: 0, offset: 50_000 })
    recorder.ws.send(JSON.stringify({ type: 'publish', bytes: 50_000 }))
    const answer = await recorder.next()
    expect(answer).toMatchObject({ type: 'error', code: 'invalid-media' })
    expect((answer as { message: string }).message).toMatch(/ffmpeg could not process the recording/)
    expect((await fetch(`${server.url}/v/${shareId}`)).status).toBe(404)
  }, 30_000)
})

function serverProcess(root: string, port = 0): Promise<ServerProcess> {
  return spawnRecordingServer({ root, port }, children)
}
