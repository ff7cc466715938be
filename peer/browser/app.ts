import './app.css'
import type { OutcomeSnapshot } from '../jobs/vertex/outcome-codec.ts'
import { type JoinInit, joinEvent, JoinRefusedError, type ParticipantEvent } from '../mesh/join.ts'
import type { MeshNode } from '../mesh/node.ts'
import type { AnyTaskWorker, WorkerFactory } from '../participant/job-directory.ts'
import { WorkGate } from '../participant/participant.ts'
import { AbortError } from '../protocol/errors.ts'
import { openKeyedImage } from '../protocol/frame-keys.ts'
import { type AppState, initialState } from './app-state.ts'
import { browserFrameSource } from './frame-decode.ts'
import { PointCloudViewer } from './viewer.ts'
import { probeWebgl } from './webgl-context.ts'
import { browserWorkerEnv } from './worker-env.ts'

/*
 * The participant web app, served at the join link: checks the browser can take part, joins the
 * event's mesh, computes blocks on the GPU (WebGL) within the duty cycle, and shows the 3D result
 * as it is built. Everything a person needs is on one screen that fits a phone.
 */

const state: AppState = initialState()
// `?duty=0.5` lends half the device (an operator's kiosk, a test); clamped to 5–100 %.
const params = new URL(location.href).searchParams
const dutyParam = Number(params.get('duty'))
if (dutyParam > 0) state.dutyCycle = Math.min(1, Math.max(0.05, dutyParam))
// `?relay=1`: every WebRTC connection through the event's TURN relay (networks that block the direct path).
const relayOnly = params.get('relay') === '1'
// `?backend=webgl` or `cpu` forces what computes; by default the GPU, unless WebGL is software-rendered.
const backendParam = params.get('backend')
// Tests and curious participants read the state from the console: `crowdmesh.state`.
Object.assign(globalThis, { crowdmesh: { state } })

/** What browsers call a WebGL implementation that runs on the processor. */
const softwareRenderer = /swiftshader|llvmpipe|softpipe|software|basic render/i

const view = renderShell()
const gate = new WorkGate()
const leaving = new AbortController()
const started = performance.now()
const outcomeTimes: number[] = []

async function main(): Promise<void> {
  if (!('RTCPeerConnection' in globalThis)) {
    return unsupported(
      'This browser cannot open WebRTC connections, which is how devices at the event talk to each other, so it cannot take part. A current Chrome, Firefox or Safari can.',
    )
  }
  // Frames of keyed leases arrive sealed; their key is in the block's image URL.
  const frames = browserFrameSource({ transform: openKeyedImage })
  // GPU or processor is decided once; each job kind's worker (its code, its WebGL programs) is
  // loaded when its first task arrives.
  let gpu = false
  state.backend = 'cpu'
  if (backendParam !== 'cpu') {
    try {
      const probe = probeWebgl()
      state.renderer = probe.renderer
      if (backendParam !== 'webgl' && softwareRenderer.test(probe.renderer)) {
        // WebGL drawn by the processor (no GPU, or a blocklisted one) is many times slower than
        // computing on the processor directly: measured 0.6 M against 14 M vertex views/s.
        state.notice =
          'This device has no graphics hardware the browser can use, so it computes on its processor instead.'
      } else {
        state.backend = probe.backend
        gpu = true
      }
    } catch (error) {
      // No WebGL (disabled, blocklisted GPU, very old phone): the processor computes instead, slower.
      state.notice =
        'This browser offers no usable WebGL, so your device computes on its processor instead, more slowly.'
      console.warn(`crowdmesh: no WebGL compute: ${(error as Error).message}`)
    }
  }
  // Videos (fingerprint tasks) and files (match tasks): the page decodes and fetches them itself.
  // Match data kept between tasks stays small unless the person agrees to more (asked once).
  const { capabilities, env } = browserWorkerEnv({ gpu, askStorage: (bytes) => askStorage(view, bytes) })
  const workers: WorkerFactory = async (kind) => {
    let worker: AnyTaskWorker | undefined
    if (gpu && kind.workers.webgl !== undefined) {
      try {
        worker = (await kind.workers.webgl({ frames, ...env })) as AnyTaskWorker
      } catch (error) {
        // This kind's programs would not run here: its tasks go to the processor.
        console.warn(`crowdmesh: no WebGL for ${kind.name} tasks: ${(error as Error).message}`)
      }
    }
    worker ??= (await kind.workers.cpu({ frames, ...env })) as AnyTaskWorker
    const inner = worker
    return {
      backend: inner.backend,
      run: async (job, task, signal) => {
        const begun = performance.now()
        try {
          const result = await inner.run(job, task, signal)
          state.blocksDone++
          state.threadsDone += kind.taskUnits(task)
          return result
        } catch (error) {
          if (!signal?.aborted) state.blocksFailed++
          throw error
        } finally {
          state.busyMs += performance.now() - begun
          update()
        }
      },
      ...(inner.dispose !== undefined && { dispose: () => inner.dispose?.() }),
    }
  }
  let node: MeshNode | undefined
  const peers = setInterval(() => {
    state.peers = node?.getConnections().length ?? 0
    update()
  }, 1000)
  state.phase = 'joining'
  update()
  try {
    const result = await joinEvent({
      link: `${location.origin}${location.pathname}`,
      cores: navigator.hardwareConcurrency || 1,
      dutyCycle: state.dutyCycle,
      workers,
      capabilities,
      gate,
      relayOnly,
      agent: `crowdmesh-web/${state.backend} ${browserName(navigator.userAgent)}`,
      signal: leaving.signal,
      onNode: (n) => (node = n),
      onEvent: onParticipantEvent,
      onOutcome: onOutcome,
    })
    state.phase = 'left'
    state.message = leaving.signal.aborted
      ? 'You left the event. Thank you for lending your device!'
      : `The event ended (${result.ended}). Thank you for taking part!`
  } finally {
    clearInterval(peers)
    state.peers = 0
    update()
  }
}

function onParticipantEvent(event: ParticipantEvent): void {
  switch (event.type) {
    case 'bootstrap':
      state.event = event.event
      // Creating a recording takes a recorder's or an operator's link: only theirs offer it.
      state.mayRecord = event.role === 'operator' || event.role === 'recorder'
      state.message = 'Connecting to the event…'
      break
    case 'welcome':
      state.participantId = event.participantId
      state.phase = gate.paused ? 'paused' : 'computing'
      state.message = ''
      break
    case 'disconnected':
      state.message = event.willRetry
        ? `Connection lost (${event.reason}); reconnecting…`
        : `Disconnected: ${event.reason}`
      if (event.willRetry) state.phase = 'joining'
      break
    case 'status':
      state.framesDone = event.status.framesCompleted
      break
    default:
      break
  }
  update()
}

let viewer: PointCloudViewer | undefined
function onOutcome(outcome: OutcomeShown): void {
  // The viewer draws a vertex job's outcome (a point cloud); other kinds, under it, as their kind
  // pictures them or by their summary.
  if (outcome.kind !== 'vertex') return showOtherJob(outcome)
  const snapshot = outcome.snapshot as OutcomeSnapshot
  const now = performance.now()
  outcomeTimes.push(now)
  while (outcomeTimes.length > 0 && outcomeTimes[0]! < now - 30_000) outcomeTimes.shift()
  state.frameIndex = snapshot.frameIndex
  state.outcomes++
  state.colouredTotal = snapshot.colouredTotal
  try {
    viewer ??= new PointCloudViewer(view.canvas)
    viewer.show(snapshot)
    state.points = viewer.points
  } catch (error) {
    view.viewerNote.textContent = (error as Error).message
  }
  update()
}

const maxOtherJobsShown = 4

type OutcomeShown = Parameters<NonNullable<JoinInit['onOutcome']>>[0]

/** Another job's latest outcome, in its figure under the viewer (one per job, made on its first outcome). */
function showOtherJob(outcome: OutcomeShown): void {
  let figure = [...view.jobs.children].find((f) => (f as HTMLElement).dataset.job === outcome.jobId)
  if (figure === undefined) {
    figure = document.createElement('figure')
    ;(figure as HTMLElement).dataset.job = outcome.jobId
    figure.append(document.createElement('canvas'), document.createElement('figcaption'))
    view.jobs.append(figure)
    // A long event runs many batch jobs: the page shows the latest few.
    while (view.jobs.children.length > maxOtherJobsShown) {
      const oldest = view.jobs.firstElementChild as HTMLElement
      state.otherJobs = state.otherJobs.filter((job) => job.jobId !== oldest.dataset.job)
      oldest.remove()
    }
  }
  const canvas = figure.querySelector('canvas')!
  let picture
  try {
    picture = outcome.picture()
  } catch (error) {
    console.warn(`crowdmesh: ${outcome.jobId}'s outcome has no picture: ${(error as Error).message}`)
  }
  canvas.hidden = picture === undefined
  if (picture !== undefined) {
    canvas.width = picture.width
    canvas.height = picture.height
    const pixels = new ImageData(picture.width, picture.height)
    pixels.data.set(picture.rgba)
    canvas.getContext('2d')!.putImageData(pixels, 0, 0)
  }
  figure.querySelector('figcaption')!.textContent =
    `${outcome.jobId} (${outcome.kind}): round ${outcome.frameIndex}, ${outcome.items.toLocaleString()} done`
  const shown = {
    jobId: outcome.jobId,
    kind: outcome.kind,
    frameIndex: outcome.frameIndex,
    items: outcome.items,
    pictureWidth: picture?.width ?? 0,
    pictureHeight: picture?.height ?? 0,
  }
  state.otherJobs = [...state.otherJobs.filter((job) => job.jobId !== outcome.jobId), shown]
  view.jobs.hidden = false
  update()
}

function unsupported(message: string): void {
  state.phase = 'unsupported'
  state.message = message
  update()
}

function fail(error: unknown): void {
  if (error instanceof AbortError) return
  state.phase = error instanceof JoinRefusedError ? 'refused' : 'error'
  state.message = (error as Error).message
  update()
}

/** The page's fixed parts; `update` fills in the numbers. */
function renderShell() {
  document.title = 'crowdmesh — lend your device'
  const root = document.createElement('main')
  root.innerHTML = `
    <header>
      <h1>crowdmesh <a class="record-link" data-id="recordLink" href="?record=1" target="_blank" rel="noopener" hidden>Record your screen</a></h1>
      <p class="status" data-id="status" role="status" aria-live="polite"></p>
    </header>
    <section class="viewer">
      <canvas data-id="canvas" aria-label="The 3D scene the crowd is colouring"></canvas>
      <div class="overlay"><span data-id="frame"></span><span data-id="rate"></span></div>
      <p class="viewer-note" data-id="viewerNote">The 3D scene appears here with the first result.</p>
    </section>
    <section class="jobs" data-id="jobs" aria-label="The event's other jobs" hidden></section>
    <section class="stats" aria-label="Your contribution">
      <div><b data-id="blocks">0</b><span>blocks done</span></div>
      <div><b data-id="share">0%</b><span data-id="shareLabel">of your time</span></div>
      <div><b data-id="peers">0</b><span>peers connected</span></div>
    </section>
    <p class="notice" data-id="notice" hidden></p>
    <form class="ask" data-id="ask" hidden>
      <p data-id="askText"></p>
      <button data-id="askYes" type="submit">Allow</button>
      <button data-id="askNo" type="button">Not now</button>
    </form>
    <nav>
      <button data-id="pause" type="button" disabled>Pause</button>
      <button data-id="leave" type="button">Leave</button>
    </nav>`
  document.body.append(root)
  const get = <T extends HTMLElement>(id: string) => root.querySelector<T>(`[data-id="${id}"]`)!
  const parts = {
    status: get('status'),
    canvas: get<HTMLCanvasElement>('canvas'),
    frame: get('frame'),
    rate: get('rate'),
    viewerNote: get('viewerNote'),
    jobs: get('jobs'),
    recordLink: get<HTMLAnchorElement>('recordLink'),
    blocks: get('blocks'),
    share: get('share'),
    shareLabel: get('shareLabel'),
    peers: get('peers'),
    notice: get('notice'),
    ask: get<HTMLFormElement>('ask'),
    askText: get('askText'),
    askNo: get<HTMLButtonElement>('askNo'),
    pause: get<HTMLButtonElement>('pause'),
    leave: get<HTMLButtonElement>('leave'),
  }
  parts.pause.addEventListener('click', () => {
    if (gate.paused) {
      gate.resume()
      state.phase = 'computing'
    } else {
      gate.pause()
      state.phase = 'paused'
    }
    update()
  })
  parts.leave.addEventListener('click', () => {
    leaving.abort()
    state.message = 'Leaving…'
    update()
  })
  return parts
}

const phaseText: Record<AppState['phase'], string> = {
  checking: 'Checking your browser…',
  joining: 'Joining the event…',
  computing: 'Your device is helping colour the scene.',
  paused: 'Paused: your device is not computing. The scene still updates.',
  left: '',
  refused: 'This link cannot be used.',
  unsupported: 'This browser cannot take part.',
  error: 'Something went wrong.',
}

function update(): void {
  const elapsed = performance.now() - started
  state.sharePercent = Math.round((100 * state.busyMs) / Math.max(elapsed, 1))
  // Outcomes over the last 30 s, per minute.
  state.outcomeRatePerMin = outcomeTimes.length * 2
  const v = view
  v.status.textContent = [phaseText[state.phase], state.message].filter((t) => t !== '').join(' ')
  v.status.dataset.phase = state.phase
  v.blocks.textContent = state.blocksDone.toLocaleString()
  v.share.textContent = `${state.sharePercent}%`
  v.shareLabel.textContent = `of your time (cap ${Math.round(state.dutyCycle * 100)}%)`
  v.peers.textContent = String(state.peers)
  v.frame.textContent = state.frameIndex < 0 ? '' : `frame ${state.frameIndex}`
  v.rate.textContent = state.outcomes === 0 ? '' : `${state.outcomeRatePerMin} results/min`
  v.viewerNote.hidden = state.points > 0
  v.recordLink.hidden = !state.mayRecord
  v.notice.hidden = state.notice === ''
  v.notice.textContent = state.notice
  const live = state.phase === 'computing' || state.phase === 'paused'
  v.pause.disabled = !live
  v.pause.textContent = state.phase === 'paused' ? 'Resume' : 'Pause'
  v.leave.disabled = !(live || state.phase === 'joining')
}

// Last, once every module-level constant above is initialised.
main().catch((error: unknown) => fail(error))

/**
 * Asks, in the page, whether match data may be kept on this device: resolves with the answer. Until
 * it comes, tasks go on keeping only a little.
 */
function askStorage(parts: ReturnType<typeof renderShell>, bytes: number): Promise<boolean> {
  return new Promise((resolve) => {
    parts.askText.textContent =
      `This event matches videos. May it keep up to ${Math.round(bytes / 2 ** 20)} MB of match data on ` +
      'this device, so it downloads less? It is deleted when you next open the page.'
    parts.ask.hidden = false
    const answer = (yes: boolean) => {
      parts.ask.hidden = true
      state.storage = yes ? 'granted' : 'declined'
      update()
      resolve(yes)
    }
    state.storage = 'asking'
    update()
    parts.ask.addEventListener('submit', (event) => (event.preventDefault(), answer(true)), { once: true })
    parts.askNo.addEventListener('click', () => answer(false), { once: true })
  })
}

/**
 * The browser's name and major version from its user agent, for the operator's devices table
 * (`Chrome 131`, `Firefox 133`, `Safari 18`); `browser` when unknown. Edge and Opera name
 * themselves before the Chrome they are built on.
 */
export function browserName(userAgent: string): string {
  for (const [name, pattern] of [
    ['Edge', /Edg\/(\d+)/],
    ['Opera', /OPR\/(\d+)/],
    ['Firefox', /Firefox\/(\d+)/],
    ['Samsung Internet', /SamsungBrowser\/(\d+)/],
    ['Chrome', /(?:Chrome|CriOS)\/(\d+)/],
    ['Safari', /Version\/(\d+).*Safari/],
  ] as const) {
    const match = pattern.exec(userAgent)
    if (match !== null) return `${name} ${match[1]}`
  }
  return 'browser'
}
