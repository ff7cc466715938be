import './app.css'
import { type Bootstrap, fetchBootstrap } from '../mesh/bootstrap.ts'
import { sleep } from '../protocol/clock.ts'
import { recorderDefaults } from '../protocol/defaults.ts'
import { QualityController } from '../recorder/quality.ts'
import { connectRtc } from '../recorder/rtc-connection.ts'
import { type Connect, Uploader, type UploadProgress } from '../recorder/uploader.ts'
import { connectWebSocket } from '../recorder/websocket-connection.ts'
import { type Capture, type ScreenSource, startCapture } from './recorder-capture.ts'
import { RecordingJournal } from './recording-journal.ts'

/*
 * The recorder, served at an event's recorder link: records the screen with the camera bubble and
 * the microphone, streams the bytes to the event's server peer while recording (a WebRTC data
 * channel, else a WebSocket), keeps every byte in IndexedDB until the server holds it, lowers the
 * quality when the link cannot keep up, and gives the share link the moment the person stops.
 */

/**
 * What MediaRecorder is asked for, in order. WebM with VP8 first: MediaRecorder writes it as a
 * stream of clusters that the server's ffmpeg reads as it arrives; VP8 encodes in real time on a
 * phone's processor at a fraction of VP9's cost while the page also composites; the server copies it
 * into the WebM untouched and encodes H.264 once for the MP4. VP9 next (smaller, if VP8 is missing),
 * then MP4 with H.264 for Safari, which records only that: the server copies it into the MP4.
 */
export const recordingTypes = [
  'video/webm;codecs=vp8,opus',
  'video/webm;codecs=vp9,opus',
  'video/webm',
  'video/mp4;codecs=avc1,mp4a.40.2',
  'video/mp4;codecs=avc1',
  'video/mp4',
] as const

/** What the page shows, and what tests read as `crowdmesh.recorder`. */
export interface RecorderState {
  phase:
    | 'starting'
    | 'waiting'
    | 'finishing'
    | 'idle'
    | 'recording'
    | 'paused'
    | 'publishing'
    | 'published'
    | 'failed'
  message: string
  mimeType: string
  produced: number
  acknowledged: number
  transport: UploadProgress['transportKind'] | null
  /** Every transport the upload has used, in order of first use. */
  transportsUsed: string[]
  reconnects: number
  quality: string
  qualityChanges: { at: number; level: string; direction: 'up' | 'down' }[]
  notice: string
  /** Seconds recorded, pauses excluded. */
  activeSeconds: number
  recording: string | null
  shareUrl: string | null
  /** Recordings finished from the journal after a reload: their share links. */
  finishedFromJournal: string[]
}

const params = new URL(location.href).searchParams
// `?screen=test` records a generated picture instead of sharing the screen (tests, trying it out).
const screenSource: ScreenSource =
  (['display', 'test', 'none'] as const).find((s) => s === params.get('screen')) ?? 'display'
// `?relay=1`: WebRTC only through the event's TURN relay.
const relayOnly = params.get('relay') === '1'
// `?audit=1` keeps a copy of every byte produced, so a test can compare it with what the server stored.
const audit = params.get('audit') === '1'
const produced: Uint8Array[] = []

const state: RecorderState = {
  phase: 'starting',
  message: '',
  mimeType: '',
  produced: 0,
  acknowledged: 0,
  transport: null,
  transportsUsed: [],
  reconnects: 0,
  quality: recorderDefaults.qualityLevels[0].name,
  qualityChanges: [],
  notice: '',
  activeSeconds: 0,
  recording: null,
  shareUrl: null,
  finishedFromJournal: [],
}
Object.assign(globalThis, {
  crowdmesh: {
    recorder: state,
    /** SHA-256 (hex) of every byte produced (with `?audit=1`). */
    producedSha256: async () => {
      const all = new Uint8Array(produced.reduce((n, b) => n + b.length, 0))
      let at = 0
      for (const bytes of produced) {
        all.set(bytes, at)
        at += bytes.length
      }
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', all))
      return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('')
    },
  },
})

const view = renderShell()
let bootstrap: Bootstrap | undefined
let journal: RecordingJournal | undefined
let current:
  { recorder: MediaRecorder; capture: Capture; uploader: Uploader; stop: () => Promise<void> } | undefined
const clock = { started: 0, activeMs: 0 }

/** This page's join token (the last part of its link). */
function linkToken(): string {
  return location.pathname.split('/').at(-1)!
}

/** The transports, best first: WebRTC through the event's signaling server, then the WebSocket. */
function transports(): Connect[] {
  const token = linkToken()
  const base = location.origin
  const rtc = connectRtc({
    signalUrl: `${base.replace(/^http/, 'ws')}/signal?token=${encodeURIComponent(token)}`,
    // Asked again on every connection: a restarted server peer registers again.
    serverPeer: async (signal) => {
      bootstrap = await fetchBootstrap(location.href, signal)
      return bootstrap.recordingServer?.peer
    },
    iceServers: bootstrap?.iceServers ?? [],
    relayOnly,
  })
  const websocket: Connect = (signal) =>
    connectWebSocket(`${serverUrl().replace(/^http/, 'ws')}/api/recordings/upload`)(signal)
  return [rtc, websocket]
}

function serverUrl(): string {
  const url = bootstrap?.recordingServer?.url
  if (url === undefined) throw new Error('the event has no server for recordings right now')
  return url
}

async function main(): Promise<void> {
  if (!('MediaRecorder' in globalThis)) return fail('This browser cannot record video (no MediaRecorder).')
  journal = await RecordingJournal.open().catch(() => {
    state.notice =
      'This browser keeps no local copy (private mode?): if the page is closed before the upload ends, the rest is lost.'
    return undefined
  })
  // The link may be opened before the operator starts the server peer.
  for (;;) {
    bootstrap = await fetchBootstrap(location.href, AbortSignal.timeout(10_000))
    if (bootstrap.recordingServer !== null) break
    setPhase('waiting', 'Waiting for the event’s recording server…')
    await sleep(2000, new AbortController().signal)
  }
  await finishJournalled()
  setPhase('idle', '')
}

/** Uploads and publishes what an earlier life of this page left unfinished. */
async function finishJournalled(): Promise<void> {
  if (journal === undefined) return
  for (const left of await journal.unfinished()) {
    setPhase('finishing', 'Finishing the upload of an earlier recording…')
    state.recording = left.id
    const uploader = new Uploader({
      recording: left.id,
      token: left.writeToken,
      connect: transports(),
      journal: journal.for(left.id),
      restored: await journal.chunks(left.id),
      onProgress: progress,
    })
    try {
      const shareId = await uploader.publish()
      state.finishedFromJournal.push(`${left.serverUrl}/v/${shareId}`)
      state.shareUrl = `${left.serverUrl}/v/${shareId}`
      await journal.forget(left.id)
    } catch (error) {
      state.notice = `An earlier recording could not be finished: ${(error as Error).message}`
      // A refusal is final (wrong token, already published): keeping it would retry it for ever.
      await journal.forget(left.id)
    }
  }
}

async function record(): Promise<void> {
  const mimeType = recordingTypes.find((type) => MediaRecorder.isTypeSupported(type))
  if (mimeType === undefined) return fail('This browser records in no format the server can read.')
  state.mimeType = mimeType
  setPhase('starting', 'Opening the screen and camera…')
  const quality = new QualityController()
  let capture: Capture
  try {
    capture = await startCapture({
      screen: screenSource,
      camera: true,
      microphone: true,
      level: quality.level,
    })
  } catch (error) {
    setPhase('idle', `Cannot record: ${(error as Error).message}`)
    return
  }
  if (capture.notes.length > 0) state.notice = capture.notes.join(' ')
  const base = serverUrl()
  // This page's link is what lets it record: the server checks its token with the event.
  const response = await fetch(`${base}/api/recordings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${linkToken()}` },
    body: JSON.stringify({ mimeType, live: view.live.checked }),
  })
  if (!response.ok) {
    capture.stop()
    const reason = ((await response.json().catch(() => ({}))) as { error?: unknown }).error
    return fail(
      `The server refused a new recording (${response.status}${typeof reason === 'string' ? `: ${reason}` : ''}).`,
    )
  }
  const created = (await response.json()) as { id: string; writeToken: string; shareId: string }
  const entry = {
    ...created,
    serverUrl: base,
    mimeType,
    createdAt: Date.now(),
    state: 'recording' as 'recording' | 'stopped',
  }
  await journal?.save(entry)
  state.recording = created.id
  // A live recording's link works at once: holders watch while it is recorded.
  if (view.live.checked) state.shareUrl = `${base}/v/${created.shareId}`
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: transports(),
    ...(journal !== undefined && { journal: journal.for(created.id) }),
    onProgress: progress,
  })
  const recorder = new MediaRecorder(capture.stream, {
    mimeType,
    videoBitsPerSecond: quality.level.bitsPerSecond,
    audioBitsPerSecond: 96_000,
  })
  // Chunks reach the uploader in order: each waits for the one before (arrayBuffer is async).
  let chain = Promise.resolve()
  recorder.addEventListener('dataavailable', (event) => {
    if (event.data.size === 0) return
    chain = chain.then(async () => {
      const bytes = new Uint8Array(await event.data.arrayBuffer())
      if (audit) produced.push(bytes)
      await uploader.append(bytes)
      state.produced = uploader.progress.produced
      update()
    })
    chain.catch((error: unknown) => fail(`The upload stopped: ${(error as Error).message}`))
  })
  const qos = setInterval(() => {
    const { produced: bytes, acknowledged } = uploader.progress
    const change = quality.sample({ at: performance.now(), produced: bytes, acknowledged })
    if (change === undefined) return
    capture.setLevel(change.level)
    state.quality = change.level.name
    state.qualityChanges.push({
      at: performance.now(),
      level: change.level.name,
      direction: change.direction,
    })
    state.notice = change.message
    update()
  }, 1000)
  const ticker = setInterval(() => {
    state.activeSeconds = activeSeconds()
    update()
  }, 250)
  const stop = async () => {
    if (current === undefined) return
    current = undefined
    const stopped = new Promise((resolve) => recorder.addEventListener('stop', resolve, { once: true }))
    if (recorder.state === 'recording') clock.activeMs += performance.now() - clock.started
    recorder.stop()
    await stopped
    clearInterval(qos)
    clearInterval(ticker)
    capture.stop()
    state.activeSeconds = clock.activeMs / 1000
    await chain
    entry.state = 'stopped'
    await journal?.save(entry)
    setPhase('publishing', 'Publishing…')
    try {
      const shareId = await uploader.publish()
      await journal?.forget(created.id)
      state.shareUrl = `${base}/v/${shareId}`
      setPhase('published', 'Your recording is ready to share.')
    } catch (error) {
      fail(`The recording could not be published: ${(error as Error).message}`)
    }
  }
  current = { recorder, capture, uploader, stop }
  void capture.screenEnded.then(stop)
  clock.activeMs = 0
  clock.started = performance.now()
  recorder.start(recorderDefaults.timesliceMs)
  setPhase('recording', '')
}

function activeSeconds(): number {
  const running = current?.recorder.state === 'recording' ? performance.now() - clock.started : 0
  return (clock.activeMs + running) / 1000
}

function pauseOrResume(): void {
  if (current === undefined) return
  if (current.recorder.state === 'recording') {
    current.recorder.pause()
    clock.activeMs += performance.now() - clock.started
    setPhase('paused', 'Paused: nothing is recorded until you resume.')
  } else if (current.recorder.state === 'paused') {
    clock.started = performance.now()
    current.recorder.resume()
    setPhase('recording', '')
  }
}

function progress(p: UploadProgress): void {
  state.produced = p.produced
  state.acknowledged = p.acknowledged
  state.transport = p.transportKind ?? null
  if (p.transportKind !== undefined && !state.transportsUsed.includes(p.transportKind))
    state.transportsUsed.push(p.transportKind)
  state.reconnects = p.reconnects
  update()
}

function setPhase(phase: RecorderState['phase'], message: string): void {
  state.phase = phase
  state.message = message
  update()
}

function fail(message: string): void {
  setPhase('failed', message)
}

function renderShell() {
  document.title = 'crowdmesh — record'
  const root = document.createElement('main')
  root.innerHTML = `
    <header>
      <h1>Record</h1>
      <p class="status" data-id="status" role="status" aria-live="polite"></p>
    </header>
    <section class="viewer" data-id="preview"><p class="viewer-note">Your screen, with your camera in the corner, appears here while you record.</p></section>
    <section class="stats" aria-label="Your recording">
      <div><b data-id="time">0:00</b><span>recorded</span></div>
      <div><b data-id="uploaded">0%</b><span data-id="uploadedLabel">uploaded</span></div>
      <div><b data-id="quality">high</b><span data-id="transport">not connected</span></div>
    </section>
    <p class="notice" data-id="notice" hidden></p>
    <p class="share" data-id="share" hidden><a data-id="shareLink" target="_blank" rel="noopener"></a> <button data-id="copy" type="button">Copy link</button></p>
    <label class="live"><input data-id="live" type="checkbox"> Let people with the link watch while I record</label>
    <nav>
      <button data-id="record" type="button" disabled>Record</button>
      <button data-id="pause" type="button" disabled>Pause</button>
      <button data-id="stop" type="button" disabled>Stop and share</button>
    </nav>`
  document.body.append(root)
  const get = <T extends HTMLElement>(id: string) => root.querySelector<T>(`[data-id="${id}"]`)!
  const parts = {
    status: get('status'),
    preview: get('preview'),
    time: get('time'),
    uploaded: get('uploaded'),
    uploadedLabel: get('uploadedLabel'),
    quality: get('quality'),
    transport: get('transport'),
    notice: get('notice'),
    share: get('share'),
    shareLink: get<HTMLAnchorElement>('shareLink'),
    copy: get<HTMLButtonElement>('copy'),
    record: get<HTMLButtonElement>('record'),
    pause: get<HTMLButtonElement>('pause'),
    stop: get<HTMLButtonElement>('stop'),
    live: get<HTMLInputElement>('live'),
  }
  // `?live=1` ticks it (an operator's link for a live session; tests).
  parts.live.checked = params.get('live') === '1'
  parts.record.addEventListener(
    'click',
    () => void record().catch((error: unknown) => fail((error as Error).message)),
  )
  parts.pause.addEventListener('click', pauseOrResume)
  parts.stop.addEventListener('click', () => void current?.stop())
  parts.copy.addEventListener('click', () => void navigator.clipboard?.writeText(state.shareUrl ?? ''))
  return parts
}

const phaseText: Record<RecorderState['phase'], string> = {
  starting: 'Getting ready…',
  waiting: 'Waiting for the event’s recording server…',
  finishing: 'Finishing an earlier recording…',
  idle: 'Press Record to record your screen with your camera.',
  recording: 'Recording. Every second is uploaded as you go.',
  paused: 'Paused.',
  publishing: 'Publishing…',
  published: 'Your recording is ready to share.',
  failed: 'Something went wrong.',
}

function update(): void {
  view.status.textContent = state.message || phaseText[state.phase]
  view.status.dataset.phase = state.phase === 'failed' ? 'error' : state.phase
  const seconds = Math.floor(state.activeSeconds)
  view.time.textContent = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`
  view.uploaded.textContent =
    state.produced === 0 ? '–' : `${Math.floor((100 * state.acknowledged) / state.produced)}%`
  view.uploadedLabel.textContent = `uploaded of ${(state.produced / 1e6).toFixed(1)} MB`
  view.quality.textContent = state.quality
  view.transport.textContent =
    state.transport === null
      ? 'not connected'
      : `via ${state.transport === 'webrtc' ? 'WebRTC' : 'WebSocket'}`
  view.notice.hidden = state.notice === ''
  view.notice.textContent = state.notice
  view.share.hidden = state.shareUrl === null
  if (state.shareUrl !== null) {
    view.shareLink.href = state.shareUrl
    view.shareLink.textContent = state.shareUrl
  }
  const active = state.phase === 'recording' || state.phase === 'paused'
  view.record.disabled = state.phase !== 'idle' && state.phase !== 'published'
  view.pause.disabled = !active
  view.pause.textContent = state.phase === 'paused' ? 'Resume' : 'Pause'
  view.stop.disabled = !active
  view.live.disabled = state.phase !== 'idle' && state.phase !== 'published'
  if (current !== undefined && !view.preview.contains(current.capture.canvas)) {
    view.preview.replaceChildren(current.capture.canvas)
  }
}

update()
main().catch((error: unknown) => fail((error as Error).message))
