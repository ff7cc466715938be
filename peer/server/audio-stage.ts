import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { feedStdin } from './media-pipeline.ts'

/*
 * The audio stages of the recording pipeline, fed with the recording's bytes as they arrive, like
 * the video stages (media-pipeline.ts) but in their own ffmpeg so that a recording without sound
 * fails only here: the microphone's track is copied out as it is (Opus from WebM, AAC from MP4),
 * and, when a speech-to-text engine is plugged in, decoded to 16 kHz mono PCM and streamed to it
 * while recording, so captions are ready about when the recording is. No model is bundled: an
 * operator plugs in their own (whisper.cpp, Vosk, a cloud API) through `SpeechToText`.
 */

/** A caption: seconds from the recording's start, and the words. */
export interface Cue {
  start: number
  end: number
  text: string
}

/** A pluggable speech-to-text engine. */
export interface SpeechToText {
  /** Its name, recorded beside the captions. */
  readonly name: string
  /**
   * Takes the recording's sound as it arrives (16 kHz, mono, signed 16-bit little-endian PCM, in
   * pieces of any length) and yields captions as it recognises them.
   */
  transcribe(pcm: AsyncIterable<Int16Array>, signal: AbortSignal): AsyncIterable<Cue>
}

/** What the audio stages wrote (file names in the recording's folder). */
export const audioOutputs = {
  webmAudio: 'audio.opus',
  mp4Audio: 'audio.m4a',
  captions: 'captions.vtt',
} as const

/** How the audio stages ended. */
export interface AudioResult {
  /** The extracted sound's file, or undefined when the recording has none. */
  audio: string | undefined
  /** The captions' file, when an engine ran. */
  captions: string | undefined
  /** Why there is no audio or captions, when there is not. */
  note?: string
}

/** Runs the audio stages to the end of the input. Never rejects: a recording without sound is fine. */
export async function runAudioStages(init: {
  input: AsyncIterable<Uint8Array>
  folder: string
  mimeType: string
  signal: AbortSignal
  speechToText?: SpeechToText | undefined
  ffmpeg?: string
}): Promise<AudioResult> {
  const webm = /webm/i.test(init.mimeType)
  const audioFile = webm ? audioOutputs.webmAudio : audioOutputs.mp4Audio
  const args = [
    ...['-hide_banner', '-loglevel', 'error', '-y', '-f', webm ? 'webm' : 'mp4', '-i', 'pipe:0'],
    ...['-map', '0:a:0', '-c:a', 'copy', '-f', webm ? 'ogg' : 'ipod', join(init.folder, audioFile)],
    ...(init.speechToText === undefined
      ? []
      : ['-map', '0:a:0', '-ac', '1', '-ar', '16000', '-f', 's16le', 'pipe:1']),
  ]
  const child = spawn(init.ffmpeg ?? 'ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)))
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(-1))
    child.once('exit', (code) => resolve(code))
  })
  const onAbort = () => child.kill('SIGKILL')
  init.signal.addEventListener('abort', onAbort, { once: true })
  const captions =
    init.speechToText === undefined ? undefined : transcribe(init.speechToText, child.stdout, init.signal)
  try {
    await feedStdin(child, init.input)
    const code = await exited
    const cues = await captions
    if (code !== 0)
      return {
        audio: undefined,
        captions: undefined,
        note: `no sound extracted: ${stderr.trim() || `ffmpeg exit ${code}`}`,
      }
    let captionsFile: string | undefined
    if (cues !== undefined) {
      await writeFile(join(init.folder, audioOutputs.captions), webVtt(cues, init.speechToText!.name))
      captionsFile = audioOutputs.captions
    }
    return { audio: audioFile, captions: captionsFile }
  } catch (error) {
    return { audio: undefined, captions: undefined, note: (error as Error).message }
  } finally {
    init.signal.removeEventListener('abort', onAbort)
    if (child.exitCode === null) child.kill('SIGKILL')
  }
}

/** Feeds ffmpeg's PCM to the engine as it comes; collects its captions. */
async function transcribe(
  engine: SpeechToText,
  stdout: AsyncIterable<Buffer>,
  signal: AbortSignal,
): Promise<Cue[]> {
  async function* pcm(): AsyncGenerator<Int16Array> {
    let carry: Buffer | undefined
    for await (const raw of stdout) {
      // Samples are two bytes; a read may end between them.
      const chunk: Buffer = carry === undefined ? raw : Buffer.concat([carry, raw])
      const whole = chunk.length & ~1
      carry = whole < chunk.length ? chunk.subarray(whole) : undefined
      const samples = new Int16Array(whole / 2)
      Buffer.from(samples.buffer).set(chunk.subarray(0, whole))
      yield samples
    }
  }
  const cues: Cue[] = []
  for await (const cue of engine.transcribe(pcm(), signal)) cues.push(cue)
  return cues
}

/** Captions as WebVTT, which the share page's `<track>` shows. */
export function webVtt(cues: readonly Cue[], engine: string): string {
  const time = (s: number) => {
    const ms = Math.round(s * 1000)
    const h = Math.floor(ms / 3_600_000)
    const m = Math.floor(ms / 60_000) % 60
    const sec = (ms / 1000) % 60
    return `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:${sec.toFixed(3).padStart(6, '0')}`
  }
  const body = cues
    .map((c) => `${time(c.start)} --> ${time(c.end)}\n${c.text.replace(/-->/g, '→')}`)
    .join('\n\n')
  return `WEBVTT - ${engine.replace(/\s+/g, ' ')}\n\n${body}\n`
}
