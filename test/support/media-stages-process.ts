/**
 * The recording pipeline's ffmpeg stages (video and audio) in a process of their own, fed half a
 * recording and then nothing more, so that a test can kill this parent the hard way and see whether
 * the ffmpeg children outlive it. Prints one line, `{"fed":true}`, once both have their input.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAudioStages } from '../../peer/server/audio-stage.ts'
import { runPipeline } from '../../peer/server/media-pipeline.ts'
import { recorderLikeWebm } from './media.ts'

const folder = await mkdtemp(join(tmpdir(), 'crowdmesh-stages-'))
const bytes = await recorderLikeWebm(folder, 4)
let fed = 0
async function* halfThenNothing(): AsyncGenerator<Uint8Array> {
  yield bytes.subarray(0, bytes.length >> 1)
  if (++fed === 2) process.stdout.write(`${JSON.stringify({ fed: true })}\n`)
  await new Promise(() => {})
}
const signal = new AbortController().signal
const stt = {
  name: 'never',
  async *transcribe(pcm: AsyncIterable<Int16Array>) {
    for await (const samples of pcm) if (samples.length < 0) yield { start: 0, end: 0, text: '' }
  },
}
await Promise.all([
  runPipeline({ input: halfThenNothing(), folder, mimeType: 'video/webm', signal }),
  runAudioStages({ input: halfThenNothing(), folder, mimeType: 'video/webm', signal, speechToText: stt }),
])
