import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { followFile, pipelineOutputs, runPipeline } from '../../peer/server/media-pipeline.ts'
import { faststartLayout } from '../../peer/server/mp4-faststart.ts'
import { type RecordingServer, startRecordingServer } from '../../peer/server/recording-server.ts'
import { maxChunkBytes } from '../../peer/server/upload-protocol.ts'

const run = promisify(execFile)

/**
 * A WebM like MediaRecorder's (VP8 + Opus, a live stream: no cues, no duration) of `seconds`, from
 * ffmpeg's test sources: one minute is encoded, longer ones loop it with stream copy (fast).
 */
export async function recorderLikeWebm(dir: string, seconds: number): Promise<string> {
  const minute = join(dir, 'source-60s.webm')
  const encode = async (path: string, s: number) =>
    run('ffmpeg', [
      ...['-hide_banner', '-loglevel', 'error', '-y'],
      ...['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...['-t', String(s), '-c:v', 'libvpx', '-b:v', '500k', '-deadline', 'realtime', '-cpu-used', '8'],
      ...['-g', '30', '-c:a', 'libopus', '-live', '1', '-f', 'webm', path],
    ])
  if (seconds <= 60) {
    const path = join(dir, `source-${seconds}s.webm`)
    await encode(path, seconds)
    return path
  }
  await stat(minute).catch(() => encode(minute, 60))
  const path = join(dir, `source-${seconds}s.webm`)
  await run('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y', '-stream_loop', '-1', '-i', minute],
    ...['-t', String(seconds), '-c', 'copy', '-live', '1', '-f', 'webm', path],
  ])
  return path
}

/** One recording's figures. */
export interface RecordingRun {
  minutes: number
  bytes: number
  /** Publish pressed (every byte already acknowledged) to the moov-first MP4 downloadable, ms. */
  publishToPlayableMs: number
  /** Wall time to feed the recording through the upload protocol, s. */
  feedSeconds: number
}

/** The baseline: upload the whole file after recording stops, then process it. */
export interface BaselineRun {
  minutes: number
  /** Recording stopped to the MP4 downloadable: the whole upload over loopback, then processing, ms. */
  stopToPlayableMs: number
  uploadMs: number
  processMs: number
}

/** Options of the recording benchmark. */
export interface RecordingBenchInit {
  /** Recording lengths, minutes (default 1, 10, 60). */
  minutes?: readonly number[]
  /** Feeding pace, times real time (default 8: faster than a recorder, slower than this machine transcodes (about 11×), so an hour takes 7.5 min). */
  pace?: number
  /** Recordings per length, for percentiles (default 10 of 1 min, 5 of 10 min, 2 of 60 min). */
  repeats?: (minutes: number) => number
  /** Lengths the baseline runs at (default 10). */
  baselineMinutes?: readonly number[]
  /** Called as media is fed: (media seconds done, media seconds in all, baselines included). */
  onProgress?: (done: number, total: number) => void
}

/**
 * Measures publish → playable through the real upload protocol (WebSocket on loopback) and the real
 * server peer: pre-encoded media is fed in 250 ms chunks at `pace` × real time, the server processes
 * it as it arrives, and the clock runs from publish to the moov-first MP4 being served. Beside it, the
 * baseline of uploading the whole file after recording stops and processing it then.
 */
export async function runRecordingBench(
  init: RecordingBenchInit = {},
): Promise<{ runs: RecordingRun[]; baseline: BaselineRun[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-recording-bench-'))
  const pace = init.pace ?? 8
  const lengths = init.minutes ?? [1, 10, 60]
  const repeats = init.repeats ?? ((m: number) => (m <= 1 ? 10 : m <= 10 ? 5 : 2))
  const baselines = (init.baselineMinutes ?? [10]).filter((m) => lengths.includes(m))
  const total = 60 * (lengths.reduce((a, m) => a + m * repeats(m), 0) + baselines.reduce((a, b) => a + b, 0))
  let done = 0
  const progress = (seconds: number) => init.onProgress?.(done + seconds, total)
  try {
    const server = await startRecordingServer({ root: join(dir, 'recordings') })
    benchRecorderKey = server.recorderKey ?? ''
    const runs: RecordingRun[] = []
    const baseline: BaselineRun[] = []
    try {
      for (const minutes of lengths) {
        const media = new Uint8Array(await readFile(await recorderLikeWebm(dir, minutes * 60)))
        for (let i = 0; i < repeats(minutes); i++) {
          runs.push({ minutes, ...(await publishRun(server.url, media, minutes, pace, progress)) })
          done += minutes * 60
          progress(0)
        }
        if (baselines.includes(minutes)) {
          baseline.push({
            minutes,
            ...(await baselineRun(server, media, join(dir, `baseline-${minutes}`))),
          })
          done += minutes * 60
          progress(0)
        }
      }
    } finally {
      await server.close()
    }
    return { runs, baseline }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** The bench's server peer's recorder key: creating a recording takes it, as a recorder's link does. */
let benchRecorderKey = ''

async function create(url: string): Promise<{ id: string; writeToken: string; shareId: string }> {
  const response = await fetch(`${url}/api/recordings`, {
    method: 'POST',
    headers: { authorization: `Bearer ${benchRecorderKey}` },
    body: JSON.stringify({ mimeType: 'video/webm;codecs=vp8,opus' }),
  })
  return (await response.json()) as { id: string; writeToken: string; shareId: string }
}

async function publishRun(
  url: string,
  media: Uint8Array,
  minutes: number,
  pace: number,
  progress: (seconds: number) => void,
): Promise<Omit<RecordingRun, 'minutes'>> {
  const created = await create(url)
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: connectWebSocket(`${url.replace(/^http/, 'ws')}/api/recordings/upload`),
  })
  // A 250 ms timeslice's worth of bytes per chunk, at `pace` times real time.
  const chunks = minutes * 60 * 4
  const size = Math.ceil(media.length / chunks)
  const started = performance.now()
  for (let i = 0; i < chunks; i++) {
    await uploader.append(media.subarray(i * size, Math.min((i + 1) * size, media.length)))
    const due = started + ((i + 1) * 250) / pace
    progress((i + 1) / 4)
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
  // The recorder stops; its last chunk is acknowledged a moment later, then publish is pressed.
  while (uploader.progress.acknowledged < media.length) await new Promise((r) => setTimeout(r, 5))
  const feedSeconds = (performance.now() - started) / 1000
  const pressed = performance.now()
  const shareId = await uploader.publish()
  const head = await fetch(`${url}/v/${shareId}/video.mp4`, { method: 'HEAD' })
  if (!head.ok) throw new Error(`the MP4 is not downloadable after publish (${head.status})`)
  return { bytes: media.length, publishToPlayableMs: performance.now() - pressed, feedSeconds }
}

async function baselineRun(
  server: RecordingServer,
  media: Uint8Array,
  folder: string,
): Promise<Omit<BaselineRun, 'minutes'>> {
  const { url } = server
  // Recording has stopped: the whole file goes up now (loopback: as fast as it can), then processing
  // starts on the complete file, as upload-after-recording services do.
  const stopped = performance.now()
  const created = await create(url)
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: connectWebSocket(`${url.replace(/^http/, 'ws')}/api/recordings/upload`),
    windowBytes: 8 * 1024 * 1024,
    chunkBytes: maxChunkBytes,
  })
  for (let i = 0; i < media.length; i += 1024 * 1024)
    await uploader.append(media.subarray(i, i + 1024 * 1024))
  while (uploader.progress.acknowledged < media.length) await new Promise((r) => setTimeout(r, 5))
  uploader.stop()
  const uploaded = performance.now()
  await mkdir(folder, { recursive: true })
  const controller = new AbortController()
  const source = server.store.mediaPath(created.id)
  await runPipeline({
    input: followFile(source, {
      end: () => media.length,
      grew: () => new Promise(() => {}),
      signal: controller.signal,
    }),
    folder,
    mimeType: 'video/webm',
    signal: controller.signal,
  })
  await faststartLayout(join(folder, pipelineOutputs.fragmentedMp4))
  const done = performance.now()
  return { stopToPlayableMs: done - stopped, uploadMs: uploaded - stopped, processMs: done - uploaded }
}

/** Publish-to-playable per length: nearest-rank percentiles over the repeated runs. */
export function publishPercentiles(
  runs: readonly RecordingRun[],
): Record<string, { n: number; p50: number; p95: number; max: number }> {
  const out: Record<string, { n: number; p50: number; p95: number; max: number }> = {}
  for (const minutes of [...new Set(runs.map((r) => r.minutes))]) {
    const values = runs
      .filter((r) => r.minutes === minutes)
      .map((r) => r.publishToPlayableMs)
      .sort((a, b) => a - b)
    const rank = (q: number) => values[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)]!
    out[`${minutes}min`] = {
      n: values.length,
      p50: Math.round(rank(0.5)),
      p95: Math.round(rank(0.95)),
      max: Math.round(values.at(-1)!),
    }
  }
  return out
}
