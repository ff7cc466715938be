import { type ChildProcess, spawn } from 'node:child_process'
import type { Writable } from 'node:stream'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { sleep } from '../protocol/clock.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import type { FragmentIndex } from './mp4-faststart.ts'

/*
 * Post-processing fed with the recording's bytes while they arrive (the seed: every step a stream).
 * One ffmpeg process reads the bytes from its stdin as the recorder uploads them and writes, at once:
 * a fragmented MP4 kept up to date during recording (H.264; a fragment a second, so even a static
 * screen with one keyframe yields playable fragments), a WebM (the recorder's own streams copied;
 * ffmpeg writes its duration and cues when the input ends), and a thumbnail. At publish the input
 * ends, so what remains is only the backlog of the last second or so, whatever the length.
 */

/** A stage of the pipeline failed (ffmpeg refused the input, or died). */
export class MediaProcessingError extends CrowdmeshError {}

/** What the pipeline writes in the recording's folder. */
export const pipelineOutputs = {
  /** Fragmented MP4 (empty moov, a fragment a second), written during recording. */
  fragmentedMp4: 'video.fmp4.mp4',
  webm: 'video.webm',
  thumbnail: 'thumb.jpg',
  /** The moov-first MP4's header (ftyp, moov, mdat header), written at publish (`mp4-faststart.ts`). */
  faststartHeader: 'video.mp4.head',
  /** Where the moov-first MP4's body lies in the fragmented file: `{ bodyOffset, bodyLength }`. */
  faststartLayout: 'video.mp4.json',
} as const

/** Options of a pipeline run. */
export interface PipelineInit {
  /** The recording's bytes as they arrive (ends at publish). */
  input: AsyncIterable<Uint8Array>
  /** The recording's folder. */
  folder: string
  /** The recorder's MIME type: WebM input is copied into the WebM; MP4 (avc1) into the MP4. */
  mimeType: string
  signal: AbortSignal
  /** ffmpeg's path (default `ffmpeg` on PATH: Debian's package). */
  ffmpeg?: string
  /** Kept up to date with the fragmented MP4 while it is written (every second, and at the end). */
  index?: FragmentIndex
}

/** Runs the pipeline to the end of its input; resolves once every output is complete. */
export async function runPipeline(init: PipelineInit): Promise<void> {
  const webmInput = /webm/i.test(init.mimeType)
  const out = (name: string) => join(init.folder, name)
  const args = [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    // The input is a live stream of a recording: no seeking back, timestamps as recorded.
    '-f',
    webmInput ? 'webm' : 'mp4',
    '-i',
    'pipe:0',
    // Fragmented MP4: H.264 (from WebM) or the recorder's H.264 as it is.
    '-map',
    '0:v:0',
    '-map',
    '0:a?',
    ...(webmInput
      ? ['-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '60']
      : ['-c:v', 'copy']),
    // A browser's WebM has variable frame timing on a 1 ms time base: ffmpeg would guess 1000 fps
    // and, for MP4, duplicate frames up to it. Each frame keeps its own timestamp instead.
    '-fps_mode:v',
    'vfr',
    '-c:a',
    'aac',
    '-movflags',
    'frag_keyframe+empty_moov+default_base_moof',
    '-frag_duration',
    '1000000',
    // Each fragment reaches the file when it is complete, not when ffmpeg's buffer fills: live
    // viewers follow the file.
    '-flush_packets',
    '1',
    '-f',
    'mp4',
    out(pipelineOutputs.fragmentedMp4),
    // WebM: the recorder's VP8/VP9 and Opus copied (cues and duration written when the input ends).
    '-map',
    '0:v:0',
    '-map',
    '0:a?',
    ...(webmInput
      ? ['-c', 'copy']
      : ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '1M', '-c:a', 'libopus']),
    '-f',
    'webm',
    out(pipelineOutputs.webm),
    // Thumbnail: the first frame.
    '-map',
    '0:v:0',
    '-frames:v',
    '1',
    '-q:v',
    '4',
    out(pipelineOutputs.thumbnail),
  ]
  const child = spawn(init.ffmpeg ?? 'ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000)
  })
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (error) =>
      reject(new MediaProcessingError(`cannot run ffmpeg (apt-get install ffmpeg): ${error.message}`)),
    )
    child.once('exit', (code) => resolve(code))
  })
  const onAbort = () => child.kill('SIGKILL')
  init.signal.addEventListener('abort', onAbort, { once: true })
  // Indexing the fragments as they appear leaves only the last one or two for publish.
  let indexing = Promise.resolve()
  const indexer = setInterval(() => {
    if (init.index !== undefined) indexing = indexing.then(() => init.index!.update()).catch(() => {})
  }, 1000)
  try {
    await feedStdin(child, init.input)
    const code = await exited
    if (code !== 0)
      throw new MediaProcessingError(
        `ffmpeg could not process the recording (exit ${code}): ${stderr.trim()}`,
      )
    clearInterval(indexer)
    await indexing
    await init.index?.update()
  } finally {
    clearInterval(indexer)
    init.signal.removeEventListener('abort', onAbort)
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}

/**
 * Writes the input to a child's stdin with backpressure (waiting for it to drain before the next
 * piece), then ends it; stops early if the child exits or its stdin breaks.
 */
export async function feedStdin(child: ChildProcess & { stdin: Writable }, input: AsyncIterable<Uint8Array>) {
  let broken = false
  child.stdin.on('error', () => (broken = true))
  for await (const piece of input) {
    if (broken || child.exitCode !== null) break
    if (!child.stdin.write(piece))
      await new Promise<void>((resolve) => {
        // Whichever comes first; both listeners go with it.
        const done = () => {
          child.stdin.off('drain', done)
          child.off('exit', done)
          resolve()
        }
        child.stdin.once('drain', done)
        child.once('exit', done)
      })
  }
  child.stdin.end()
}

/**
 * Reads a file from its start as it grows, until `end()` names a length and that many bytes were
 * read: the pipeline's input while the recorder uploads. `grew` resolves when more bytes may be
 * there (the store pokes it on every append); a short poll covers anything it misses.
 */
export async function* followFile(
  path: string,
  follow: { end: () => number | undefined; grew: () => Promise<void>; signal: AbortSignal },
): AsyncGenerator<Uint8Array> {
  const file = await open(path, 'r')
  try {
    let position = 0
    const buffer = new Uint8Array(256 * 1024)
    while (!follow.signal.aborted) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
      if (bytesRead > 0) {
        position += bytesRead
        yield buffer.slice(0, bytesRead)
        continue
      }
      const end = follow.end()
      if (end !== undefined && position >= end) return
      await Promise.race([follow.grew(), sleep(50, follow.signal)])
    }
  } finally {
    await file.close()
  }
}
