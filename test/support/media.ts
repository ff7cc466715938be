import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'
import { recorderLikeWebm as makeRecorderLikeWebm } from '../../scripts/bench/recording.ts'

const run = promisify(execFile)

/** A recorder-like WebM of `seconds` (see `scripts/bench/recording.ts`), as bytes. */
export async function recorderLikeWebm(dir: string, seconds: number): Promise<Uint8Array> {
  return new Uint8Array(await readFile(await makeRecorderLikeWebm(dir, seconds)))
}

/** ffprobe's view of a media file: its duration (s) and its streams' codecs. */
export async function probe(path: string): Promise<{ duration: number; codecs: string[]; format: string }> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-show_entries', 'format=duration,format_name:stream=codec_name', '-of', 'json', path],
  ])
  const parsed = JSON.parse(stdout) as {
    format: { duration?: string; format_name: string }
    streams: { codec_name: string }[]
  }
  return {
    duration: Number(parsed.format.duration ?? Number.NaN),
    codecs: parsed.streams.map((s) => s.codec_name),
    format: parsed.format.format_name,
  }
}

/** What ffmpeg reports decoding every frame of a file (empty when it decodes cleanly). */
export async function decodeErrors(path: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-'])
  return stderr.trim()
}

/** The number of video frames in a file, counted by decoding them. */
export async function frameCount(path: string): Promise<number> {
  const { stdout } = await run('ffprobe', [
    ...['-v', 'error', '-count_frames', '-select_streams', 'v:0'],
    ...['-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', path],
  ])
  return Number(stdout.trim())
}

/** The types of an MP4's top-level boxes, in order. */
export function topLevelBoxes(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const types: string[] = []
  for (let p = 0; p + 8 <= bytes.length;) {
    let size = view.getUint32(p)
    if (size === 1) size = Number(view.getBigUint64(p + 8))
    if (size === 0) size = bytes.length - p
    types.push(String.fromCharCode(...bytes.subarray(p + 4, p + 8)))
    p += size
  }
  return types
}
