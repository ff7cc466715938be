import type { ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventLinkAuthorizer } from '../../peer/server/recorder-auth.ts'
import {
  type RecordingServer,
  type RecordingServerComponents,
  type RecordingServerInit,
  startRecordingServer,
} from '../../peer/server/recording-server.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { startSignaling } from '../../signaling/server.ts'
import { recorderLikeWebm } from '../support/media.ts'
import {
  bytesRead,
  closeCode,
  ffmpegChildren,
  frameHeader,
  rawRequest,
  rawUpgrade,
  readUntilClosed,
} from '../support/raw-socket.ts'
import { webmTitled, writeRecordingFolder } from '../support/recording-fixtures.ts'
import { createRecording, linkToken, spawnRecordingServer } from '../support/recording-server-process.ts'
import { UploadClient } from '../support/upload-client.ts'

/*
 * The server peer for recordings against hostile input (issue 12): requests and frames that used to
 * crash it, creating recordings without the event's recorder link, content types a creator chose,
 * script in a recording's metadata, sockets that never say hello or go quiet, frames too large for
 * a stranger, a second publish, and share ids that do not exist. Every test runs a real server on
 * 127.0.0.1 (in its own process where the process itself is observed) and real clients.
 */

const children: ChildProcess[] = []
const stops: (() => Promise<void>)[] = []
let browser: Browser | undefined
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL')
  for (const stop of stops.reverse()) await stop()
  await browser?.close()
})

let root: string
let media: Uint8Array
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'crowdmesh-recording-security-'))
  media = await recorderLikeWebm(root, 3)
}, 60_000)

async function server(
  init: Partial<RecordingServerInit> = {},
  components: RecordingServerComponents = {},
): Promise<RecordingServer> {
  const started = await startRecordingServer(
    { root: await mkdtemp(join(root, 'server-')), ...init },
    components,
  )
  stops.push(() => started.close())
  return started
}

/** Creates a recording with `authorization` as given (undefined: no header); answers status and body. */
async function create(url: string, authorization: string | undefined, mimeType = 'video/webm') {
  const response = await fetch(`${url}/api/recordings`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization !== undefined && { authorization }),
    },
    body: JSON.stringify({ mimeType }),
  })
  return { status: response.status, body: (await response.json()) as { error?: string; id?: string } }
}

async function publishedRecording(target: RecordingServer) {
  const created = await createRecording(target)
  const client = await UploadClient.open(target.url)
  expect(await client.hello(created.id, created.writeToken)).toEqual({ type: 'ready', offset: 0 })
  expect(await client.upload(media)).toMatchObject({ type: 'ack', offset: media.length })
  expect(await client.publish(media.length, 30_000)).toMatchObject({ type: 'published' })
  return { ...created, client }
}

describe('the server peer for recordings, against hostile input', () => {
  it('survives a //a:b request and upgrade and an unmasked frame: the process lives and serves on', async () => {
    const peer = await spawnRecordingServer({ root: await mkdtemp(join(root, 'crash-')) }, children)
    const alive = async () => {
      await new Promise((r) => setTimeout(r, 300))
      return peer.child.exitCode === null && (await fetch(`${peer.url}/v/${'A'.repeat(22)}`)).status === 404
    }
    const upgrade =
      'GET //a:b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`
    expect(await rawRequest(peer.url, upgrade)).toBe(404)
    expect(await alive()).toBe(true)
    // A client's frame must be masked: an unmasked one is a protocol error for that socket alone.
    const socket = await rawUpgrade(peer.url, '/api/recordings/upload')
    socket.write(Buffer.concat([frameHeader(0x1, 5, false), Buffer.from('hello')]))
    expect((await readUntilClosed(socket, 3000)).closed).toBe(true)
    expect(await alive()).toBe(true)
    // A plain request for that target is a clear 404, not an internal error.
    expect(await rawRequest(peer.url, 'GET //a:b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toBe(404)
    expect(await alive()).toBe(true)
  }, 30_000)

  it('creates recordings only for the bearer of its recorder key when it has no event', async () => {
    const target = await server()
    expect(target.recorderKey).toMatch(/^[\w-]{32,}$/)
    const none = await create(target.url, undefined)
    expect(none.status).toBe(401)
    expect(none.body.error).toMatch(/recorder/)
    expect((await create(target.url, 'Bearer not-the-key')).status).toBe(403)
    expect((await create(target.url, `Basic ${target.recorderKey}`)).status).toBe(401)
    expect((await create(target.url, `Bearer ${target.recorderKey}`)).status).toBe(201)
    // The recorder page lives on the signaling server's origin: its preflight may send the bearer.
    const preflight = await fetch(`${target.url}/api/recordings`, { method: 'OPTIONS' })
    expect(preflight.status).toBe(204)
    expect(preflight.headers.get('access-control-allow-headers')).toMatch(/authorization/)
  })

  it('with an event, creates recordings only for its recorder or operator link, checked with the signaling server and cached', async () => {
    const signaling = await startSignaling()
    let signalingUp = true
    stops.push(async () => {
      if (signalingUp) await signaling.close()
    })
    const event = signaling.createEvent('recordings')
    const other = signaling.createEvent('another')
    const target = await server(
      {},
      { authorizeRecorder: eventLinkAuthorizer(event.joinLinks.operator, { cacheMs: 60_000 }) },
    )
    const bearer = (link: string) => `Bearer ${linkToken(link)}`
    expect((await create(target.url, bearer(event.joinLinks.recorder))).status).toBe(201)
    expect((await create(target.url, bearer(event.joinLinks.operator))).status).toBe(201)
    const participant = await create(target.url, bearer(event.joinLinks.participant))
    expect(participant.status).toBe(403)
    expect(participant.body.error).toMatch(/participant/)
    expect((await create(target.url, bearer(event.joinLinks.viewer))).status).toBe(403)
    // Another event's recorder link, and a token the signaling server never signed.
    expect((await create(target.url, bearer(other.joinLinks.recorder))).status).toBe(403)
    expect((await create(target.url, 'Bearer abc.def')).status).toBe(403)
    expect((await create(target.url, undefined)).status).toBe(401)
    // Answers are cached: with the signaling server gone, a link it accepted still works a while,
    // and one it never saw cannot be checked (503, not a guess).
    await signaling.close()
    signalingUp = false
    expect((await create(target.url, bearer(event.joinLinks.recorder))).status).toBe(201)
    expect((await create(target.url, bearer(other.joinLinks.operator))).status).toBe(503)
  }, 30_000)

  it('accepts only recorder media types, and serves a recording only as media whatever its meta says', async () => {
    const target = await server()
    const key = `Bearer ${target.recorderKey}`
    for (const mimeType of [
      'video/webm',
      'video/webm;codecs=vp8,opus',
      'video/webm; codecs="vp9, opus"',
      'video/mp4;codecs=avc1,mp4a.40.2',
    ])
      expect((await create(target.url, key, mimeType)).status).toBe(201)
    for (const mimeType of [
      'text/html; x=webm',
      'video/webm;codecs=<script>',
      'video/webm; charset=utf-8',
      'image/svg+xml',
      'video/webm\r\nx-injected: 1',
    ])
      expect((await create(target.url, key, mimeType)).status).toBe(400)

    // A recording an earlier version stored with its creator's type, a title that is a script.
    const storeRoot = await mkdtemp(join(root, 'old-meta-'))
    const titled = await webmTitled(root, '<script>window.pwned = 1</script>')
    const old = await writeRecordingFolder(storeRoot, {
      mimeType: 'text/html; x=webm',
      media: titled,
      state: 'published',
    })
    const again = await server({ root: storeRoot })
    const served = await fetch(`${again.url}/v/${old.shareId}/media`)
    expect(served.status).toBe(200)
    expect(served.headers.get('content-type')).toBe('video/webm')
    expect(served.headers.get('x-content-type-options')).toBe('nosniff')
    expect(Buffer.from(await served.arrayBuffer()).includes('<script>window.pwned')).toBe(true)
    // A browser opening it plays media, and the title's script never runs.
    browser ??= await launchChromium()
    const page = await browser.newPage()
    await page.goto(`${again.url}/v/${old.shareId}/media`).catch(() => undefined)
    await page.waitForTimeout(500)
    expect(await page.evaluate(() => (globalThis as { pwned?: number }).pwned)).toBe(undefined)
    await page.close()
  }, 60_000)

  it('share pages carry a strict CSP that their inline style matches, and no script; they render under it in Chromium', async () => {
    const target = await server()
    const { shareId } = await publishedRecording(target)
    const response = await fetch(`${target.url}/v/${shareId}`)
    const html = await response.text()
    const csp = response.headers.get('content-security-policy') ?? ''
    expect(html).not.toMatch(/<script/i)
    expect(csp).toMatch(/default-src 'none'/)
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval/)
    expect(csp).toMatch(/frame-ancestors 'none'/)
    const style = /<style>([^<]*)<\/style>/.exec(html)![1]!
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`)
    browser ??= await launchChromium()
    const page = await browser.newPage()
    const violations: string[] = []
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text())
    })
    await page.goto(`${target.url}/v/${shareId}`)
    const duration = await page.evaluate(async () => {
      const video = document.querySelector('video')!
      if (Number.isNaN(video.duration))
        await new Promise((resolve) => video.addEventListener('loadedmetadata', resolve, { once: true }))
      return video.duration
    })
    expect(Math.abs(duration - 3)).toBeLessThan(0.5)
    // The inline style applied (a refused one leaves the browser's white page).
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe('rgb(15, 17, 23)')
    expect(violations).toEqual([])
    await page.close()
  }, 60_000)

  it('answers a second publish with the share id it has, doing no work and touching no file', async () => {
    const target = await server()
    const { id, shareId, writeToken, client } = await publishedRecording(target)
    const folder = target.store.folderOf(id)
    const outputs = ['video.webm', 'video.fmp4.mp4', 'video.mp4.head', 'thumb.jpg', 'meta.json']
    const mtimes = async () => Promise.all(outputs.map(async (f) => (await stat(join(folder, f))).mtimeMs))
    const before = await mtimes()
    const started = performance.now()
    expect(await client.publish(media.length)).toEqual({ type: 'published', shareId, bytes: media.length })
    // A new connection too, even one that names a different length: the recording is what it is.
    const other = await UploadClient.open(target.url)
    expect(await other.hello(id, writeToken)).toEqual({ type: 'ready', offset: media.length })
    expect(await other.publish(media.length + 10)).toEqual({
      type: 'published',
      shareId,
      bytes: media.length,
    })
    expect(performance.now() - started).toBeLessThan(500)
    expect(await ffmpegChildren(process.pid)).toBe(0)
    expect(await mtimes()).toEqual(before)
  }, 60_000)

  it('closes a socket that says no hello in time, and an upload socket that goes quiet', async () => {
    const target = await server({ limits: { helloTimeoutMs: 500, uploadIdleTimeoutMs: 1500 } })
    const silent = await UploadClient.open(target.url)
    const t0 = performance.now()
    expect(await silent.closed).toEqual({ code: 1008, reason: 'hello-timeout' })
    expect(performance.now() - t0).toBeLessThan(1500)

    const created = await createRecording(target)
    const quiet = await UploadClient.open(target.url)
    expect(await quiet.hello(created.id, created.writeToken)).toEqual({ type: 'ready', offset: 0 })
    // Past the hello timeout, a connection that said hello is open; while it sends, it stays open.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 500))
      expect(await quiet.chunk(i, i * 10, new Uint8Array(10))).toMatchObject({ type: 'ack' })
    }
    const t1 = performance.now()
    expect(await quiet.closed).toEqual({ code: 1008, reason: 'idle-timeout' })
    expect(performance.now() - t1).toBeGreaterThan(1000)
    expect(performance.now() - t1).toBeLessThan(3500)
  }, 30_000)

  it('refuses a 1 MiB frame before hello at its header, without waiting for its bytes; after hello a whole chunk passes', async () => {
    const target = await server()
    const socket = await rawUpgrade(target.url, '/api/recordings/upload')
    // The header announces 1 MiB; only 10 bytes follow. The server must not wait for the rest.
    socket.write(Buffer.concat([frameHeader(0x2, 1024 * 1024), Buffer.alloc(10)]))
    const { data, closed } = await readUntilClosed(socket, 2000)
    expect(closed).toBe(true)
    expect(closeCode(data)).toBe(1009)
    const created = await createRecording(target)
    const client = await UploadClient.open(target.url)
    expect(await client.hello(created.id, created.writeToken)).toEqual({ type: 'ready', offset: 0 })
    expect(await client.chunk(0, 0, new Uint8Array(1024 * 1024))).toEqual({
      type: 'ack',
      seq: 0,
      offset: 1024 * 1024,
    })
    await client.close()
  }, 30_000)

  it('answers unknown share ids from its index, reading no file', async () => {
    const storeRoot = await mkdtemp(join(root, 'index-'))
    const first = await spawnRecordingServer({ root: storeRoot }, children)
    const made = []
    for (let i = 0; i < 100; i++) made.push(await createRecording(first))
    first.child.kill('SIGKILL')
    // A restarted server builds its index from the folders once, at start.
    const peer = await spawnRecordingServer({ root: storeRoot }, children)
    const pid = peer.child.pid!
    const unknown = () => `/v/${randomBytes(16).toString('base64url')}/media`
    expect((await fetch(`${peer.url}${unknown()}`)).status).toBe(404)
    const before = await bytesRead(pid)
    for (let i = 0; i < 30; i++) expect((await fetch(`${peer.url}${unknown()}`)).status).toBe(404)
    // Each request reads its own few hundred bytes from the socket; 100 metas would be ~25 KB each.
    expect(await bytesRead(pid)).toBeLessThan(before + 30 * 1024)
    expect(made).toHaveLength(100)
  }, 60_000)
})
