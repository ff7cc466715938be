import { spawn } from 'node:child_process'
import { stat } from 'node:fs/promises'
import { runTool } from '../../protocol/run-tool.ts'
import { matchDefaults, VideoInputError } from './defaults.ts'
import { fingerprintFormat } from './format.ts'
import type { FingerprintFile } from './fingerprint-file.ts'
import { decodeSpan, type Fingerprint, type FingerprintRange, SegmentFingerprinter } from './fingerprint.ts'

/*
 * Node's decoder for fingerprints: ffmpeg (Debian's) samples a video at `sampleFps` and scales each
 * frame to `decodeSize`² luminance; frames stream through a pipe with backpressure into the
 * fingerprinter, so memory stays a few seconds of frames whatever the length.
 */

export { VideoInputError }

/** What ffprobe says of a video. */
export interface VideoProbe {
  /** Seconds (the container's, else the stream's). */
  duration: number
  width: number
  height: number
}

/** Probes a video file: a clear `VideoInputError` for anything that is not a video ffmpeg decodes. */
export async function probeVideo(path: string, signal?: AbortSignal): Promise<VideoProbe> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw new VideoInputError(`${path}: cannot read it (${error.code ?? error.message})`)
  })
  if (!info.isFile()) throw new VideoInputError(`${path}: not a file`)
  if (info.size === 0) throw new VideoInputError(`${path}: empty file`)
  const { stdout, stderr, code } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=width,height,duration:format=duration',
      '-of',
      'json',
      path,
    ],
    signal,
  )
  if (code !== 0) throw new VideoInputError(`${path}: not a video ffmpeg can read (${firstLine(stderr)})`)
  let parsed: {
    streams?: { width?: number; height?: number; duration?: string }[]
    format?: { duration?: string }
  }
  try {
    parsed = JSON.parse(stdout) as typeof parsed
  } catch {
    throw new VideoInputError(`${path}: ffprobe gave no answer`)
  }
  const stream = parsed.streams?.[0]
  if (stream === undefined || !(stream.width! > 0) || !(stream.height! > 0))
    throw new VideoInputError(`${path}: no video stream`)
  const duration = Number(parsed.format?.duration ?? stream.duration ?? Number.NaN)
  if (Number.isFinite(duration) && duration > matchDefaults.maxVideoSeconds)
    throw new VideoInputError(
      `${path}: ${Math.round(duration)} s is longer than the ${matchDefaults.maxVideoSeconds} s a video may be`,
    )
  return { duration: Number.isFinite(duration) ? duration : 0, width: stream.width!, height: stream.height! }
}

/** Options of `fingerprintFile`. */
export interface FingerprintFileInit extends FingerprintRange {
  /**
   * The video's duration as probed before (a task's): the fingerprints are exactly
   * `fingerprintsIn(duration, range)`, and only the span the range needs is decoded.
   */
  duration?: number
  signal?: AbortSignal
  /** Called with the frames decoded so far (progress). */
  onFrames?: (frames: number) => void
}

/**
 * The fingerprints of a video file's segments, decoded by ffmpeg. Throws `VideoInputError` for a
 * video that cannot be fingerprinted (and for one that decodes to no frame at all).
 */
export async function fingerprintFile(
  path: string,
  init: FingerprintFileInit = {},
): Promise<FingerprintFile> {
  const probe = await probeVideo(path, init.signal)
  const { decodeSize, sampleFps } = fingerprintFormat
  const frameBytes = decodeSize * decodeSize
  // A range decodes only its span: ffmpeg seeks accurately (it decodes from the keyframe before and
  // drops what precedes), and the fps filter's instants are anchored at the seek point
  // (`start_time=0`), so they fall on the whole decode's. Unanchored, they started at the first
  // frame kept, up to a source frame after the seek point: a frame or two late at 10 fps, and a
  // range's fingerprints then differed from the whole video's by up to 125 bits.
  const span =
    init.count !== undefined && init.duration !== undefined
      ? decodeSpan({ first: init.first ?? 0, count: init.count })
      : undefined
  const firstFrame = span === undefined ? 0 : Math.round(span.from * sampleFps)
  // The fingerprints made are those of the probed duration, whether the whole video or a span is
  // decoded: a task and a whole decode agree on which exist.
  const duration = init.duration ?? (probe.duration > 0 ? probe.duration : undefined)
  const fingerprinter = new SegmentFingerprinter(decodeSize, init, {
    firstFrame,
    ...(duration !== undefined && { duration }),
  })
  const seek =
    span === undefined
      ? []
      : ['-ss', (firstFrame / sampleFps).toFixed(4), '-t', (span.to - firstFrame / sampleFps).toFixed(4)]
  const args = [
    '-v',
    'error',
    '-nostdin',
    ...seek,
    '-i',
    path,
    '-map',
    '0:v:0',
    '-an',
    '-sn',
    // Samples at fixed instants counted from the decode's start (a copy at another frame rate gives
    // the same instants), then averages each frame down to the decoded size: area scaling is what a
    // box filter in the page matches.
    '-vf',
    `fps=${sampleFps}:start_time=0,scale=${decodeSize}:${decodeSize}:flags=area,format=gray`,
    '-frames:v',
    String(Math.ceil(matchDefaults.maxVideoSeconds * sampleFps) + 1),
    '-f',
    'rawvideo',
    'pipe:1',
  ]
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: init.signal })
  let stderr = ''
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) =>
      reject(new VideoInputError(`${path}: cannot run ffmpeg (${error.message})`)),
    )
    child.once('close', (code) => resolve(code))
  })
  const out: Fingerprint[] = []
  let pending = new Uint8Array(0)
  let frames = 0
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let data = pending.length === 0 ? new Uint8Array(chunk) : concat(pending, chunk)
      while (data.length >= frameBytes) {
        out.push(...fingerprinter.push(data.slice(0, frameBytes)))
        data = data.subarray(frameBytes)
        frames++
      }
      pending = data.slice()
      init.onFrames?.(frames)
    }
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  const code = await exited
  init.signal?.throwIfAborted()
  if (code !== 0) throw new VideoInputError(`${path}: ffmpeg could not decode it (${firstLine(stderr)})`)
  if (frames === 0) throw new VideoInputError(`${path}: no frame could be decoded`)
  // A file cut short (a truncated upload) still decodes up to the cut: its header's duration says
  // what should have come. Fingerprints past the cut would come from no frames at all.
  if (duration !== undefined) {
    const decodedTo = (firstFrame + frames) / sampleFps
    const expectedTo = Math.min(duration, span?.to ?? duration)
    if (decodedTo < expectedTo - matchDefaults.maxMissingSeconds)
      throw new VideoInputError(
        `${path}: truncated or damaged: it decodes to ${decodedTo.toFixed(1)} s of the ${duration.toFixed(1)} s its header says`,
      )
  }
  out.push(...fingerprinter.end())
  return {
    duration: init.duration ?? (probe.duration > 0 ? probe.duration : frames / sampleFps),
    fingerprints: out,
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

const firstLine = (text: string) => text.trim().split('\n')[0]?.slice(0, 300) || 'no message'

/** Runs ffprobe (a missing tool is a `VideoInputError`). */
const run = (command: string, args: string[], signal?: AbortSignal) =>
  runTool(command, args, {
    signal,
    maxStdout: 65_536,
    maxStderr: 4096,
    cannotRun: (message) => new VideoInputError(message),
  })
