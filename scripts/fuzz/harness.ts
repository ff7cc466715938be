import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { fetchBootstrap } from '../../peer/mesh/bootstrap.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { connectRtc } from '../../peer/recorder/rtc-connection.ts'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { holdWebRTC } from '../../peer/protocol/webrtc-hold.ts'
import { recorderLikeWebm } from '../bench/recording.ts'
import type { FuzzDiagnostics, FuzzEventReady } from './event-process.ts'
import { consoleActionBody, hostileHttpRequest, signalingMessages, uploadSession } from './inputs.ts'
import {
  type FuzzRecording,
  rtcUploadCase,
  sendHttp,
  signalingCase,
  uploadCase,
  type Verdict,
} from './targets.ts'
import { meshTargets, type MeshFuzzer } from './mesh-targets.ts'

/** Options of a fuzz run; each defaults as documented. */
export interface FuzzInit {
  /** How long to send hostile input, ms (the event's start and the settling come on top). */
  durationMs: number
  /** Seed of the generators (default: random; the report names it, to rerun the same cases). */
  seed?: number
  /** How long resources may take to return to their baseline after the last case, ms (default 30 s). */
  settleMs?: number
  /** Only this family of targets (to find which one disturbs the witnesses); default all. */
  only?: 'http' | 'ws' | 'rtc' | 'mesh'
  /** Called after each batch. */
  onProgress?: (progress: { elapsedMs: number; durationMs: number; cases: number; failures: number }) => void
  signal?: AbortSignal
}

/** One case whose answer was not clear, or a health check that failed. */
export interface FuzzFailure {
  target: string
  why: string
  /** The input, abbreviated. */
  input: string
}

/** What a fuzz run found. */
export interface FuzzReport {
  seed: number
  durationMs: number
  cases: number
  casesByTarget: Record<string, number>
  /** The event process died (it must never). */
  crashes: number
  /** Resources that did not return to their baseline. */
  leaks: string[]
  failures: FuzzFailure[]
  baseline: FuzzDiagnostics
  after: FuzzDiagnostics
  /** Frames the witness participant helped complete while the fuzzer ran (must be more than 0). */
  framesDuringFuzz: number
  /** The witness participant's disconnections and reconnections while the fuzzer ran (seconds into the run). */
  witnessDisconnects: string[]
  /** The witness recorder's upload, made while the fuzzer ran: published and byte-identical. */
  witnessRecording: { bytes: number; identical: boolean; error?: string }
}

/** Tolerances of the leak check: what an idle event may legitimately move by. */
const leakTolerance = { fds: 8, heapBytes: 32 * 1024 * 1024, heapShare: 0.5 }

/**
 * Runs the event in a process of its own, a witness participant and a witness recorder beside it,
 * and hostile clients against every listener for `durationMs`: HTTP on each server, the signaling
 * WebSocket, the upload protocol over WebSocket and a data channel, the work protocol's frames and
 * gossip. Then checks: the process is alive, the witnesses were unaffected, and open descriptors,
 * child processes and heap are back to their baseline.
 */
export async function runFuzz(init: FuzzInit): Promise<FuzzReport> {
  const seed = init.seed ?? Math.floor(Math.random() * 2 ** 31)
  const settleMs = init.settleMs ?? 30_000
  const work = await mkdtemp(join(tmpdir(), 'crowdmesh-fuzz-'))
  const event = await spawnEvent(join(work, 'recordings'))
  const failures: FuzzFailure[] = []
  const casesByTarget: Record<string, number> = {}
  let crashes = 0
  event.child.once('exit', () => crashes++)
  const witness = new ParticipantProcess(event.ready.joinLinks.participant!, { dutyCycle: 1, cores: 1 })
  let mesh: MeshFuzzer | undefined
  // The WebRTC upload cases open and close connections while the mesh targets' live on: none may
  // take node-datachannel down with it.
  const releaseWebRTC = holdWebRTC()
  try {
    await witness.waitFor('connected')
    await untilDiagnostics(event, (d) => d.framesCompleted > 0, 60_000)
    const baseline = await event.diagnostics()
    mesh = await meshTargets(event.ready)
    const recorder = await witnessRecorder(event.ready, work)

    const started = performance.now()
    let batch = 0
    const record = (target: string, verdict: Verdict, input: unknown) => {
      casesByTarget[target] = (casesByTarget[target] ?? 0) + 1
      if (!verdict.ok) failures.push({ target, why: verdict.why, input: abbreviate(input) })
    }
    const consolePath = new URL(event.ready.consoleLink).pathname
    const uploadUrl = `${event.ready.recordings.replace(/^http/, 'ws')}/api/recordings/upload`
    const signalUrl = `${event.ready.signaling.replace(/^http/, 'ws')}/signal?token=${tokenOf(event.ready.joinLinks.participant!)}`
    let recording = await createRecording(event.ready)
    const recorderLink = event.ready.joinLinks.recorder!
    const recorderSignalUrl = `${event.ready.signaling.replace(/^http/, 'ws')}/signal?token=${tokenOf(recorderLink)}`
    const rtc = connectRtc({
      signalUrl: recorderSignalUrl,
      serverPeer: async (signal) => (await fetchBootstrap(recorderLink, signal)).recordingServer?.peer,
    })
    while (performance.now() - started < init.durationMs && crashes === 0 && !init.signal?.aborted) {
      const batchSeed = seed + batch++
      const sample = <T>(arbitrary: fc.Arbitrary<T>, n: number) =>
        fc.sample(arbitrary, { numRuns: n, seed: batchSeed })
      const only = init.only
      if (only === undefined || only === 'http')
        for (const request of sample(hostileHttpRequest, 6))
          for (const [name, url] of [
            ['http:signaling', event.ready.signaling],
            ['http:frames', event.ready.frameStore],
            ['http:recordings', event.ready.recordings],
            ['http:dashboard', event.ready.dashboard],
          ] as const)
            record(name, await sendHttp(url, request), request)
      // The dashboard's API past its key: hostile bodies and paths from someone who has the URL.
      if (only === undefined || only === 'http')
        for (const request of sample(hostileHttpRequest, 3)) {
          const keyed = {
            ...request,
            target: `${request.target}${request.target.includes('?') ? '&' : '?'}key=${event.ready.dashboardKey}`,
          }
          record('http:dashboard-keyed', await sendHttp(event.ready.dashboard, keyed), keyed)
        }
      // The console's actions past its token: hostile bodies from someone who has the console link.
      if (only === undefined || only === 'http')
        for (const [request, body] of sample(fc.tuple(hostileHttpRequest, consoleActionBody), 3)) {
          const keyed = { ...request, method: 'POST', target: `${consolePath}/api/actions`, body }
          record('http:console-keyed', await sendHttp(event.ready.signaling, keyed), keyed)
        }
      for (const messages of sample(
        signalingMessages(() => []),
        4,
      ))
        record('ws:signaling', await signalingCase(signalUrl, messages), messages)
      // A stranger with a recorder link signals the server peer for recordings itself.
      const serverPeer = (await fetchBootstrap(recorderLink, AbortSignal.timeout(5000))).recordingServer?.peer
      for (const messages of sample(
        signalingMessages(() => (serverPeer === undefined ? [] : [serverPeer])),
        2,
      ))
        record('ws:signaling-server-peer', await signalingCase(recorderSignalUrl, messages), messages)
      if (batch % 5 === 0) recording = await createRecording(event.ready)
      if (only === undefined || only === 'ws')
        for (const steps of sample(uploadSession, 4))
          record('ws:upload', await uploadCase(uploadUrl, steps, recording), steps)
      if (only === undefined || only === 'rtc')
        for (const steps of sample(uploadSession, 1))
          record('rtc:upload', await rtcUploadCase(rtc, steps, recording), steps)
      if (only === undefined || only === 'mesh')
        for (const [name, verdict, input] of await mesh.batch(batchSeed)) record(name, verdict, input)
      // Health between batches: alive and serving.
      const health = await fetch(`${event.ready.signaling}/health`)
        .then((r) => r.status)
        .catch(() => 0)
      if (health !== 200) failures.push({ target: 'health', why: `/health answered ${health}`, input: '' })
      init.onProgress?.({
        elapsedMs: performance.now() - started,
        durationMs: init.durationMs,
        cases: Object.values(casesByTarget).reduce((a, b) => a + b, 0),
        failures: failures.length,
      })
    }
    const duringFuzz =
      crashes === 0 ? (await event.diagnostics()).framesCompleted - baseline.framesCompleted : 0
    if (crashes === 0 && (await event.diagnostics()).outbox !== baseline.outbox)
      failures.push({
        target: 'libp2p:gossip',
        why: 'a match result left the outbox with no writer',
        input: '',
      })
    const witnessRecording = await recorder.finish()
    await mesh.stop()
    mesh = undefined
    // Every stranger has gone: resources must come back to where they were.
    const after =
      crashes === 0
        ? await untilDiagnostics(event, (d) => leaksOf(baseline, d).length === 0, settleMs).catch(() =>
            event.diagnostics(),
          )
        : baseline
    return {
      seed,
      durationMs: init.durationMs,
      cases: Object.values(casesByTarget).reduce((a, b) => a + b, 0),
      casesByTarget,
      crashes,
      leaks: crashes === 0 ? leaksOf(baseline, after) : [],
      failures: [
        ...failures,
        ...(crashes > 0
          ? [{ target: 'process', why: `the event process died: ${event.stderr().slice(-1500)}`, input: '' }]
          : []),
      ],
      baseline,
      after,
      framesDuringFuzz: duringFuzz,
      witnessDisconnects: witness.events
        .filter((e) => ['disconnected', 'connected', 'welcome'].includes(e.type) && e.receivedAt >= started)
        .map((e) => `${((e.receivedAt - started) / 1000).toFixed(1)} s: ${JSON.stringify(e)}`),
      witnessRecording,
    }
  } finally {
    await mesh?.stop()
    releaseWebRTC()
    await witness.stop('SIGKILL')
    await event.stop()
    await rm(work, { recursive: true, force: true })
  }
}

/** What moved past its tolerance between two diagnostics. */
export function leaksOf(baseline: FuzzDiagnostics, now: FuzzDiagnostics): string[] {
  const leaks: string[] = []
  if (now.fds > baseline.fds + leakTolerance.fds) leaks.push(`file descriptors ${baseline.fds} → ${now.fds}`)
  if (now.children > baseline.children) leaks.push(`child processes ${baseline.children} → ${now.children}`)
  const heapLimit =
    baseline.heapUsed + Math.max(leakTolerance.heapBytes, baseline.heapUsed * leakTolerance.heapShare)
  if (now.heapUsed > heapLimit)
    leaks.push(
      `heap ${(baseline.heapUsed / 2 ** 20).toFixed(1)} → ${(now.heapUsed / 2 ** 20).toFixed(1)} MiB`,
    )
  return leaks
}

interface EventUnderFuzz {
  child: ChildProcess
  ready: FuzzEventReady
  diagnostics(): Promise<FuzzDiagnostics>
  stderr(): string
  stop(): Promise<void>
}

async function spawnEvent(root: string): Promise<EventUnderFuzz> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', join(import.meta.dirname, 'event-process.ts'), JSON.stringify({ root })],
    { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] },
  )
  let stderr = ''
  // With DEBUG=crowdmesh:* the event's own log lines (every refusal) land here; this keeps them all.
  const log = process.env.CROWDMESH_FUZZ_EVENT_LOG
  const logFile = log === undefined ? undefined : createWriteStream(log)
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000)
    logFile?.write(chunk)
  })
  child.once('exit', () => logFile?.end())
  const ready = await new Promise<FuzzEventReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the event did not start in 60 s: ${stderr}`)), 60_000)
    child.on('message', (message: { type?: string }) => {
      if (message.type !== 'ready') return
      clearTimeout(timer)
      resolve(message as FuzzEventReady)
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the event process exited with ${code} while starting: ${stderr}`))
    })
  })
  return {
    child,
    ready,
    stderr: () => stderr,
    diagnostics: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no diagnostics in 10 s')), 10_000)
        const onMessage = (message: { type?: string }) => {
          if (message.type !== 'diagnostics') return
          clearTimeout(timer)
          child.off('message', onMessage)
          resolve(message as FuzzDiagnostics)
        }
        child.on('message', onMessage)
        child.send({ type: 'diagnostics' })
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((r) => child.once('exit', r))
      child.disconnect()
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(kill)
    },
  }
}

async function untilDiagnostics(
  event: EventUnderFuzz,
  done: (d: FuzzDiagnostics) => boolean,
  timeoutMs: number,
): Promise<FuzzDiagnostics> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const now = await event.diagnostics()
    if (done(now)) return now
    if (performance.now() > deadline) throw new Error('diagnostics did not settle')
    await new Promise((r) => setTimeout(r, 500))
  }
}

/** A recording created as a recorder does: with the event's recorder link as its bearer token. */
async function createRecording(ready: FuzzEventReady): Promise<FuzzRecording> {
  const response = await fetch(`${ready.recordings}/api/recordings`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${tokenOf(ready.joinLinks.recorder!)}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ mimeType: 'video/webm' }),
  })
  if (response.status !== 201)
    throw new Error(`creating a recording answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as FuzzRecording
}

/**
 * A recorder uploading a real recording over WebSocket while the fuzzer runs, at a steady pace;
 * `finish` publishes it and compares the served bytes with what was sent.
 */
async function witnessRecorder(ready: FuzzEventReady, work: string) {
  const media = new Uint8Array(await readFile(await recorderLikeWebm(work, 4)))
  const created = await createRecording(ready)
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: connectWebSocket(`${ready.recordings.replace(/^http/, 'ws')}/api/recordings/upload`),
  })
  let sent = 0
  const piece = 16 * 1024
  const pacing = setInterval(() => {
    // Keep a little back for `finish`, so the upload spans the whole run.
    if (sent + piece >= media.length - piece) return
    void uploader.append(media.subarray(sent, sent + piece)).catch(() => {})
    sent += piece
  }, 250)
  return {
    async finish(): Promise<FuzzReport['witnessRecording']> {
      clearInterval(pacing)
      try {
        await uploader.append(media.subarray(sent))
        const shareId = await uploader.publish()
        const served = new Uint8Array(
          await (await fetch(`${ready.recordings}/v/${shareId}/media`)).arrayBuffer(),
        )
        const hash = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex')
        return { bytes: media.length, identical: hash(served) === hash(media) }
      } catch (error) {
        return { bytes: media.length, identical: false, error: (error as Error).message }
      }
    },
  }
}

function tokenOf(link: string): string {
  return link.slice(link.lastIndexOf('/') + 1).split('?')[0]!
}

function abbreviate(input: unknown): string {
  const text = JSON.stringify(input, (_key, value: unknown) =>
    value instanceof Uint8Array
      ? `<${value.length} bytes>`
      : typeof value === 'string' && value.length > 120
        ? `${value.slice(0, 60)}…(${value.length} chars)`
        : value,
  )
  return text.length > 400 ? `${text.slice(0, 400)}…` : text
}
