import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A WebM like MediaRecorder's (VP8 + Opus, written as a live stream: no cues, no duration), made by
 * ffmpeg from its test sources: what a recorder uploads, without a browser.
 */
export async function recorderLikeWebm(dir: string, seconds: number): Promise<Uint8Array> {
  const path = join(dir, `source-${seconds}s.webm`)
  await run('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y'],
    ...['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30'],
    ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
    ...['-t', String(seconds), '-c:v', 'libvpx', '-b:v', '500k', '-deadline', 'realtime', '-cpu-used', '8'],
    ...['-g', '30', '-c:a', 'libopus', '-live', '1', '-f', 'webm', path],
  ])
  return new Uint8Array(await readFile(path))
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
