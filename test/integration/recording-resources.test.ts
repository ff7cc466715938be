import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, stat, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type RecordingServer,
  type RecordingServerInit,
  startRecordingServer,
} from '../../peer/server/recording-server.ts'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { probe, recorderLikeWebm } from '../support/media.ts'
import { ffmpegChildren, openDescriptors, rawConnect } from '../support/raw-socket.ts'
import { writeRecordingFolder } from '../support/recording-fixtures.ts'
import { createRecording, spawnRecordingServer } from '../support/recording-server-process.ts'
import { UploadClient } from '../support/upload-client.ts'

/*
 * What a recorder or a viewer can make the server peer hold, and that it lets go (issue 12):
 * ffmpeg processes (started on bytes, capped, ended when a recording goes quiet and restarted from
 * its stored bytes), file descriptors of downloads cut short, live viewers and live streams that
 * stop growing, bytes per recording and in all, and recordings nobody finished. Processes and
 * descriptors are counted in /proc of the server's own process.
 */

const children: ChildProcess[] = []
const stops: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  for (const stop of stops.reverse()) await stop()
})

let root: string
let media: Uint8Array
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crowdmesh-recording-resources-'))
  media = await recorderLikeWebm(root, 6)
}, 60_000)

async function server(init: Partial<RecordingServerInit> = {}): Promise<RecordingServer> {
  const started = await startRecordingServer({ root: await mkdtemp(join(root, 'server-')), ...init })
  stops.push(() => started.close())
  return started
}

/** Polls `read` until it returns `expected` (or `timeoutMs` passes); answers the last value. */
async function settle<T>(read: () => Promise<T>, expected: T, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let value = await read()
  while (value !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    value = await read()
  }
  return value
}

describe('what the server peer holds for recorders and viewers', () => {
  it('starts no ffmpeg on hello: recordings that say hello and go leave no process and no descriptor', async () => {
    const peer = await spawnRecordingServer({ root: await mkdtemp(join(root, 'hello-')) }, children)
    const pid = peer.child.pid!
    const created = await Promise.all([1, 2, 3, 4].map(() => createRecording(peer)))
    await new Promise((r) => setTimeout(r, 300))
    const baseline = await openDescriptors(pid)
    for (const recording of created) {
      const client = await UploadClient.open(peer.url)
      expect(await client.hello(recording.id, recording.writeToken)).toEqual({ type: 'ready', offset: 0 })
      await client.close()
    }
    expect(await settle(() => ffmpegChildren(pid), 0, 1000)).toBe(0)
    expect(await settle(() => openDescriptors(pid), baseline)).toBe(baseline)
    // Bytes start a recording's processing: two ffmpeg processes, video and sound.
    const client = await UploadClient.open(peer.url)
    await client.hello(created[0]!.id, created[0]!.writeToken)
    expect(await client.chunk(0, 0, media.subarray(0, 100_000))).toMatchObject({ type: 'ack' })
    expect(await settle(() => ffmpegChildren(pid), 2)).toBe(2)
    await client.close()
  }, 30_000)

  it('processes a bounded number of recordings: past it bytes are refused busy; a quiet one is ended and restarted from its stored bytes', async () => {
    const peer = await spawnRecordingServer(
      { root: await mkdtemp(join(root, 'cap-')), limits: { maxProcessing: 1, processingIdleMs: 1500 } },
      children,
    )
    const pid = peer.child.pid!
    const [a, b] = [await createRecording(peer), await createRecording(peer)]
    const first = await UploadClient.open(peer.url)
    await first.hello(a.id, a.writeToken)
    const half = Math.floor(media.length / 2)
    expect(await first.upload(media.subarray(0, half))).toMatchObject({ type: 'ack', offset: half })
    expect(await settle(() => ffmpegChildren(pid), 2)).toBe(2)
    const second = await UploadClient.open(peer.url)
    await second.hello(b.id, b.writeToken)
    expect(await second.chunk(0, 0, media.subarray(0, 1000))).toMatchObject({ type: 'error', code: 'busy' })
    // Refused bytes are not kept: the recorder sends them again later.
    const again = await UploadClient.open(peer.url)
    expect(await again.hello(b.id, b.writeToken)).toEqual({ type: 'ready', offset: 0 })
    // The first recording goes quiet: its ffmpeg processes end.
    expect(await settle(() => ffmpegChildren(pid), 0, 6000)).toBe(0)
    // Its next bytes restart processing from the stored bytes; published, the outputs are whole.
    expect(await first.upload(media.subarray(half), half)).toMatchObject({
      type: 'ack',
      offset: media.length,
    })
    expect(await settle(() => ffmpegChildren(pid), 2)).toBe(2)
    expect(await first.publish(media.length, 30_000)).toMatchObject({ type: 'published', shareId: a.shareId })
    const webm = await probe(`${peer.url}/v/${a.shareId}/video.webm`)
    expect(Math.abs(webm.duration - 6)).toBeLessThan(0.5)
    const mp4 = await probe(`${peer.url}/v/${a.shareId}/video.mp4`)
    expect(Math.abs(mp4.duration - 6)).toBeLessThan(0.5)
    // The slot is free again.
    expect(await again.chunk(0, 0, media.subarray(0, 1000))).toMatchObject({ type: 'ack', offset: 1000 })
  }, 60_000)

  it('an uploader told busy keeps its bytes and retries until there is room, then publishes', async () => {
    const target = await server({ limits: { maxProcessing: 1, processingIdleMs: 1500 } })
    const [holder, waiting] = [await createRecording(target), await createRecording(target)]
    const client = await UploadClient.open(target.url)
    await client.hello(holder.id, holder.writeToken)
    expect(await client.chunk(0, 0, media.subarray(0, 50_000))).toMatchObject({ type: 'ack' })
    const uploader = new Uploader({
      recording: waiting.id,
      token: waiting.writeToken,
      connect: connectWebSocket(`${target.url.replace('http', 'ws')}/api/recordings/upload`),
    })
    await uploader.append(media)
    // The holder goes quiet; its slot frees, and the waiting upload goes through.
    expect(await uploader.publish()).toBe(waiting.shareId)
    expect(uploader.progress.reconnects).toBeGreaterThanOrEqual(1)
    expect(Buffer.compare(await readFile(target.store.mediaPath(waiting.id)), media)).toBe(0)
  }, 30_000)

  it('lets go of the descriptor of a download the viewer cut short', async () => {
    const storeRoot = await mkdtemp(join(root, 'downloads-'))
    const big = await writeRecordingFolder(storeRoot, {
      mimeType: 'video/webm',
      media: new Uint8Array(64 * 1024 * 1024),
      state: 'published',
    })
    const peer = await spawnRecordingServer({ root: storeRoot }, children)
    const pid = peer.child.pid!
    expect((await fetch(`${peer.url}/v/${big.shareId}/media`, { method: 'HEAD' })).status).toBe(200)
    await new Promise((r) => setTimeout(r, 300))
    const baseline = await openDescriptors(pid)
    for (let i = 0; i < 6; i++) {
      const socket = await rawConnect(peer.url)
      socket.write(`GET /v/${big.shareId}/media HTTP/1.1\r\nHost: x\r\n\r\n`)
      // The viewer reads the start, stops reading (the server's buffers fill), then goes.
      await new Promise((resolve) => socket.once('data', resolve))
      socket.pause()
      await new Promise((r) => setTimeout(r, 200))
      socket.destroy()
    }
    expect(await settle(() => openDescriptors(pid), baseline)).toBe(baseline)
    expect(peer.child.exitCode).toBe(null)
  }, 30_000)

  it('caps the viewers of a live recording, and ends a live stream that stops growing', async () => {
    const target = await server({ limits: { maxLiveViewers: 2, liveStallMs: 4000 } })
    const live = await createRecording(target, { mimeType: 'video/webm', live: true })
    const url = `${target.url}/v/${live.shareId}/live.mp4`
    // A viewer who comes before anything is recorded waits for the first fragment.
    const early = fetch(url)
    await new Promise((r) => setTimeout(r, 500))
    const client = await UploadClient.open(target.url)
    await client.hello(live.id, live.writeToken)
    expect(await client.upload(media)).toMatchObject({ type: 'ack' })
    const viewers = [await early, await fetch(url)]
    expect(viewers.map((v) => v.status)).toEqual([200, 200])
    expect((await fetch(url)).status).toBe(429)
    // Nothing more is recorded: each stream ends on its own after the stall time.
    const t0 = performance.now()
    const ended = await Promise.race([
      Promise.all(viewers.map(async (v) => (await v.arrayBuffer()).byteLength)),
      new Promise<number[]>((resolve) => setTimeout(() => resolve([]), 15_000)),
    ])
    expect(ended).toHaveLength(2)
    for (const bytes of ended) expect(bytes).toBeGreaterThan(1000)
    expect(performance.now() - t0).toBeLessThan(12_000)
    // The viewers are gone: there is room again.
    const later = await fetch(url)
    expect(later.status).toBe(200)
    await later.body?.cancel()
  }, 60_000)

  it('refuses a chunk past the recording size limit, and past the disk quota; and new recordings past it', async () => {
    const target = await server({ limits: { maxRecordingBytes: 100_000, maxTotalBytes: 200_000 } })
    const [a, b, c] = [
      await createRecording(target),
      await createRecording(target),
      await createRecording(target),
    ]
    const bytes = (n: number) => new Uint8Array(n).fill(7)
    const one = await UploadClient.open(target.url)
    await one.hello(a.id, a.writeToken)
    expect(await one.chunk(0, 0, bytes(60_000))).toMatchObject({ type: 'ack', offset: 60_000 })
    const tooLarge = await one.chunk(1, 60_000, bytes(60_000))
    expect(tooLarge).toMatchObject({ type: 'error', code: 'too-large' })
    expect((tooLarge as { message: string }).message).toMatch(/100000 bytes/)
    expect((await stat(target.store.mediaPath(a.id))).size).toBe(60_000)
    const two = await UploadClient.open(target.url)
    await two.hello(b.id, b.writeToken)
    expect(await two.chunk(0, 0, bytes(90_000))).toMatchObject({ type: 'ack', offset: 90_000 })
    const three = await UploadClient.open(target.url)
    await three.hello(c.id, c.writeToken)
    expect(await three.chunk(0, 0, bytes(60_000))).toMatchObject({ type: 'error', code: 'storage-full' })
    expect(await three.chunk(1, 0, bytes(50_000))).toMatchObject({ type: 'ack', offset: 50_000 })
    const full = await fetch(`${target.url}/api/recordings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${target.recorderKey}` },
      body: JSON.stringify({ mimeType: 'video/webm' }),
    })
    expect(full.status).toBe(507)
    expect(((await full.json()) as { error: string }).error).toMatch(/storage/)
    // The disk itself: a reserve larger than the free space refuses everything.
    const reserve = await server({ limits: { minFreeBytes: 2 ** 52 } })
    const refused = await fetch(`${reserve.url}/api/recordings`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reserve.recorderKey}` },
      body: JSON.stringify({ mimeType: 'video/webm' }),
    })
    expect(refused.status).toBe(507)
    expect(((await refused.json()) as { error: string }).error).toMatch(/free/)
    // And the number of recordings in progress, whatever their size.
    const few = await server({ limits: { maxUnpublishedRecordings: 2 } })
    await createRecording(few)
    await createRecording(few)
    await expect(createRecording(few)).rejects.toThrow(/503: .*unfinished recordings/)
  }, 30_000)

  it('deletes recordings nobody finished, at start and while it runs, and never a published one', async () => {
    const storeRoot = await mkdtemp(join(root, 'expiry-'))
    const old = Date.now() / 1000 - 3 * 24 * 3600
    const abandoned = await writeRecordingFolder(storeRoot, {
      mimeType: 'video/webm',
      media: new Uint8Array(1000),
      state: 'recording',
    })
    const kept = await writeRecordingFolder(storeRoot, { mimeType: 'video/webm', media, state: 'published' })
    for (const folder of [abandoned.folder, kept.folder])
      for (const file of ['meta.json', 'media.bin']) await utimes(join(folder, file), old, old)
    const target = await server({
      root: storeRoot,
      limits: { abandonedAfterMs: 2000, sweepIntervalMs: 500, processingIdleMs: 500 },
    })
    expect(await stat(abandoned.folder).catch(() => undefined)).toBe(undefined)
    expect((await fetch(`${target.url}/v/${kept.shareId}/media`)).status).toBe(200)
    // A recording created now, fed once, then left.
    const fresh = await createRecording(target)
    const client = await UploadClient.open(target.url)
    await client.hello(fresh.id, fresh.writeToken)
    expect(await client.chunk(0, 0, new Uint8Array(500))).toMatchObject({ type: 'ack' })
    await client.close()
    const folder = target.store.folderOf(fresh.id)
    expect(
      await settle(async () => (await stat(folder).catch(() => undefined)) === undefined, true, 8000),
    ).toBe(true)
    const late = await UploadClient.open(target.url)
    expect(await late.hello(fresh.id, fresh.writeToken)).toMatchObject({
      type: 'error',
      code: 'unauthorized',
    })
    expect(Buffer.compare(await readFile(join(kept.folder, 'media.bin')), media)).toBe(0)
  }, 30_000)
})
