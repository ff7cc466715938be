import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RecorderState } from '../../peer/browser/recorder-page.ts'
import { RecordingStore } from '../../peer/server/recording-store.ts'
import { type SignalingServer, startSignaling } from '../../signaling/server.ts'
import { webAppDir } from '../../signaling/web-app.ts'
import { fakeMediaFlags, launchChromium } from '../../scripts/chromium.ts'
import { repoRoot } from '../support/fixtures.ts'
import { probe } from '../support/media.ts'
import { spawnRecordingServer } from '../support/recording-server-process.ts'
import { startProxy } from '../support/tcp-proxy.ts'

/*
 * The recorder in real headless Chromium with a fake camera and microphone (a generated picture
 * stands in for the screen): it records, streams to a server peer in its own process while
 * recording, and publishes; the share page plays the MP4 and the WebM with the right duration and
 * seeks. WebRTC is the transport unless it is blocked; then the WebSocket is. The network is cut,
 * the server is killed and restarted, the page is reloaded: the stored bytes are always exactly the
 * bytes the recorder produced.
 */

const children: ChildProcess[] = []
const browsers: Browser[] = []
let signaling: SignalingServer
afterAll(async () => {
  for (const browser of browsers) await browser.close()
  for (const child of children) child.kill('SIGKILL')
  await signaling?.close()
})
beforeAll(async () => {
  signaling = await startSignaling({ webAppDir })
})

const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex')
const recorderState = (page: Page) =>
  page.evaluate(
    () => (globalThis as unknown as { crowdmesh: { recorder: RecorderState } }).crowdmesh.recorder,
  )
const producedSha256 = (page: Page) =>
  page.evaluate(() =>
    (
      globalThis as unknown as { crowdmesh: { producedSha256: () => Promise<string> } }
    ).crowdmesh.producedSha256(),
  )
async function until(
  page: Page,
  test: (s: RecorderState) => boolean,
  timeout = 30_000,
): Promise<RecorderState> {
  const deadline = Date.now() + timeout
  for (;;) {
    const state = await recorderState(page)
    if (test(state)) return state
    if (state.phase === 'failed') throw new Error(`the recorder failed: ${state.message}`)
    if (Date.now() > deadline) throw new Error(`timed out; recorder state: ${JSON.stringify(state)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** An event with a server peer in its own process, and a recorder page open at its recorder link. */
async function setUp(options: { blockWebRtc?: boolean; proxy?: boolean; live?: boolean } = {}) {
  const { joinLinks } = signaling.createEvent('recordings')
  const root = await mkdtemp(join(tmpdir(), 'crowdmesh-recorder-'))
  let server = await spawnRecordingServer({ root, eventLink: joinLinks.operator }, children)
  const proxy = options.proxy === true ? await startProxy(server.port) : undefined
  if (proxy !== undefined) {
    // Recorders reach the server through the proxy, which the test can cut.
    server.child.kill('SIGKILL')
    server = await spawnRecordingServer(
      { root, port: server.port, eventLink: joinLinks.operator, publicUrl: `http://127.0.0.1:${proxy.port}` },
      children,
    )
  }
  const browser = await launchChromium({ extraFlags: fakeMediaFlags })
  browsers.push(browser)
  const page = await browser.newPage({ viewport: { width: 960, height: 720 } })
  page.on('pageerror', (error) => console.error(`recorder page: ${error.message}`))
  // WebRTC blocked: relay-only ICE, and this event has no TURN server, so Chromium finds no candidate
  // pair at all, as on a network that blocks UDP and has no relay.
  const flags = `${options.blockWebRtc === true ? '&relay=1' : ''}${options.live === true ? '&live=1' : ''}`
  await page.goto(`${joinLinks.recorder}?screen=test&audit=1${flags}`)
  await until(page, (s) => s.phase === 'idle')
  const store = new RecordingStore(root)
  return {
    page,
    browser,
    root,
    proxy,
    store,
    get server() {
      return server
    },
    async restart() {
      server = await spawnRecordingServer(
        {
          root,
          port: server.port,
          eventLink: joinLinks.operator,
          ...(proxy !== undefined && { publicUrl: `http://127.0.0.1:${proxy.port}` }),
        },
        children,
      )
    },
  }
}

/** Waits until the recorder has recorded `seconds` (pauses excluded). */
const recordUntil = (page: Page, seconds: number) =>
  until(page, (s) => s.activeSeconds >= seconds, seconds * 1000 + 30_000)

describe('the recorder in Chromium', () => {
  it('records 20 s over WebRTC with a pause, watchable live while recording; publishes, and the share page plays both files with the right duration and seeks', async () => {
    const { page, browser, store } = await setUp({ live: true })
    await page.click('[data-id="record"]')
    await until(page, (s) => s.phase === 'recording')
    await recordUntil(page, 6)
    // Live: the share link plays while the recording goes on.
    const live = await browser.newPage()
    await live.goto((await recorderState(page)).shareUrl!)
    const watching = await live.evaluate(async () => {
      const video = document.querySelector('video')!
      const deadline = performance.now() + 15_000
      while ((video.readyState < 2 || video.currentTime < 1) && performance.now() < deadline)
        await new Promise((r) => setTimeout(r, 200))
      return {
        readyState: video.readyState,
        currentTime: video.currentTime,
        error: video.error?.message ?? null,
      }
    })
    expect(watching.error).toBe(null)
    expect(watching.readyState).toBeGreaterThanOrEqual(2)
    expect(watching.currentTime).toBeGreaterThanOrEqual(1)
    await live.close()
    await recordUntil(page, 8)
    // The page while recording, for the README (out/artifacts/recorder.png).
    await page.screenshot({ path: join(repoRoot, 'out', 'artifacts', 'recorder.png') })
    await page.click('[data-id="pause"]')
    await until(page, (s) => s.phase === 'paused')
    await new Promise((r) => setTimeout(r, 2000))
    await page.click('[data-id="pause"]')
    await recordUntil(page, 20)
    await page.click('[data-id="stop"]')
    const done = await until(page, (s) => s.phase === 'published', 60_000)
    expect(done.transportsUsed).toEqual(['webrtc'])
    expect(done.mimeType).toBe('video/webm;codecs=vp8,opus')
    expect(done.acknowledged).toBe(done.produced)
    expect(done.activeSeconds).toBeGreaterThan(19.5)
    expect(done.activeSeconds).toBeLessThan(24)
    const id = done.recording!
    expect(await sha256(store.mediaPath(id))).toBe(await producedSha256(page))
    // ffprobe agrees with the recorder's clock (pause excluded).
    for (const file of ['video.webm', 'video.fmp4.mp4']) {
      const { duration } = await probe(join(store.folderOf(id), file))
      expect(Math.abs(duration - done.activeSeconds), file).toBeLessThanOrEqual(0.5)
    }
    // The share page's <video>, with each file in turn: duration, then a seek to the middle.
    const viewer = await browser.newPage()
    await viewer.goto(done.shareUrl!)
    for (const file of ['video.mp4', 'video.webm']) {
      const played = await viewer.evaluate(async (src) => {
        const video = document.querySelector('video')!
        video.src = src
        await new Promise((resolve, reject) => {
          video.addEventListener('loadedmetadata', resolve, { once: true })
          video.addEventListener(
            'error',
            () => reject(new Error(`cannot play ${src}: ${video.error?.message}`)),
            { once: true },
          )
        })
        const duration = video.duration
        video.currentTime = duration / 2
        await new Promise((resolve) => video.addEventListener('seeked', resolve, { once: true }))
        await new Promise((resolve) =>
          video.readyState >= 2
            ? resolve(null)
            : video.addEventListener('loadeddata', resolve, { once: true }),
        )
        return {
          duration,
          currentTime: video.currentTime,
          readyState: video.readyState,
          width: video.videoWidth,
        }
      }, `${done.shareUrl}/${file}`)
      expect(Math.abs(played.duration - done.activeSeconds), file).toBeLessThanOrEqual(0.5)
      expect(Math.abs(played.currentTime - played.duration / 2), file).toBeLessThanOrEqual(0.5)
      expect(played.readyState, file).toBeGreaterThanOrEqual(2)
      expect(played.width, file).toBe(1280)
    }
  }, 120_000)

  it('falls back to the WebSocket with WebRTC blocked, and survives the network cut for 5 s: stored bytes identical', async () => {
    const { page, store, proxy } = await setUp({ blockWebRtc: true, proxy: true })
    await page.click('[data-id="record"]')
    // WebRTC is given its connect timeout (4 s) before the WebSocket takes over.
    const before = await until(page, (s) => s.activeSeconds >= 4 && s.acknowledged > 0)
    expect(before.transport).toBe('websocket')
    proxy!.cut(5000)
    await recordUntil(page, before.activeSeconds + 10)
    await page.click('[data-id="stop"]')
    const done = await until(page, (s) => s.phase === 'published', 60_000)
    expect(done.transportsUsed).toEqual(['websocket'])
    expect(done.reconnects).toBeGreaterThanOrEqual(1)
    expect(await sha256(store.mediaPath(done.recording!))).toBe(await producedSha256(page))
  }, 120_000)

  it('keeps every acknowledged byte when the server is killed mid-recording, and completes after its restart', async () => {
    const setup = await setUp()
    const { page, store } = setup
    await page.click('[data-id="record"]')
    const atKill = await until(
      page,
      (s) => s.activeSeconds >= 5 && s.transport === 'webrtc' && s.acknowledged > 0,
    )
    expect(atKill.transportsUsed).toEqual(['webrtc'])
    setup.server.child.kill('SIGKILL')
    await recordUntil(page, 9)
    const id = atKill.recording!
    const held = await readFile(store.mediaPath(id))
    expect(held.length).toBeGreaterThanOrEqual(atKill.acknowledged)
    await setup.restart()
    await recordUntil(page, 13)
    await page.click('[data-id="stop"]')
    const done = await until(page, (s) => s.phase === 'published', 60_000)
    expect(done.reconnects).toBeGreaterThanOrEqual(1)
    const stored = await readFile(store.mediaPath(id))
    // What the server held at the kill is the start of the final recording, unchanged.
    expect(Buffer.compare(stored.subarray(0, held.length), held)).toBe(0)
    expect(await sha256(store.mediaPath(id))).toBe(await producedSha256(page))
  }, 120_000)

  it('loses nothing when the page is reloaded before the upload finished: the journal (IndexedDB) uploads the rest', async () => {
    const setup = await setUp()
    const { page, store } = setup
    await page.click('[data-id="record"]')
    await recordUntil(page, 3)
    setup.server.child.kill('SIGKILL')
    await recordUntil(page, 7)
    await page.click('[data-id="stop"]')
    await until(page, (s) => s.phase === 'publishing')
    const before = await recorderState(page)
    expect(before.acknowledged).toBeLessThan(before.produced)
    const digest = await producedSha256(page)
    await page.reload()
    await setup.restart()
    // The page notes the finished recording, forgets its journal, then goes idle.
    const done = await until(page, (s) => s.finishedFromJournal.length === 1 && s.phase === 'idle', 60_000)
    expect(done.finishedFromJournal).toEqual([expect.stringContaining('/v/')])
    expect(await sha256(store.mediaPath(before.recording!))).toBe(digest)
    const { duration } = await probe(join(store.folderOf(before.recording!), 'video.webm'))
    expect(Math.abs(duration - before.activeSeconds)).toBeLessThanOrEqual(0.5)
  }, 120_000)

  it('steps the quality down when the link cannot keep up, says so, and still loses nothing', async () => {
    const { page, store, proxy } = await setUp({ blockWebRtc: true, proxy: true })
    await page.click('[data-id="record"]')
    await until(page, (s) => s.acknowledged > 0)
    const before = await recorderState(page)
    const bitrate = before.produced / before.activeSeconds
    // The link now carries a fifth of what the recorder produces.
    proxy!.throttle(Math.round(bitrate / 5))
    const slowed = await until(page, (s) => s.qualityChanges.some((c) => c.direction === 'down'), 40_000)
    expect(slowed.quality).toBe('medium')
    expect(slowed.notice).toMatch(/slower than the recording.*960×540, 24 frames a second/)
    expect(await page.textContent('[data-id="notice"]')).toMatch(/slower than the recording/)
    expect(await page.evaluate(() => document.querySelector('.viewer canvas')?.getAttribute('width'))).toBe(
      '960',
    )
    proxy!.throttle(undefined)
    await page.click('[data-id="stop"]')
    const done = await until(page, (s) => s.phase === 'published', 60_000)
    expect(await sha256(store.mediaPath(done.recording!))).toBe(await producedSha256(page))
    const { duration } = await probe(join(store.folderOf(done.recording!), 'video.fmp4.mp4'))
    expect(Math.abs(duration - done.activeSeconds)).toBeLessThanOrEqual(0.5)
  }, 120_000)
})
