import { execFile } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import type { Cue, SpeechToText } from '../../peer/server/audio-stage.ts'
import { type RecordingServer, startRecordingServer } from '../../peer/server/recording-server.ts'
import { probe, recorderLikeWebm, topLevelBoxes } from '../support/media.ts'
import { createRecording } from '../support/recording-server-process.ts'

/*
 * The audio stages, fed with the bytes while they arrive: the microphone's track is copied out, and
 * a plugged-in speech-to-text engine receives the sound as 16 kHz PCM while recording. The engine
 * here is a real one of the simplest kind (it captions each second that has sound in it), enough
 * to show that every sample reaches it in order; no model is bundled.
 */

const run = promisify(execFile)
const stops: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const stop of stops.reverse()) await stop()
})

/** Captions every second whose loudness (RMS) is over a threshold; counts the samples it got. */
function soundDetector(): SpeechToText & { samples: number } {
  const engine = {
    name: 'sound detector',
    samples: 0,
    async *transcribe(pcm: AsyncIterable<Int16Array>): AsyncIterable<Cue> {
      let second = 0
      let sum = 0
      let n = 0
      for await (const piece of pcm) {
        for (const s of piece) {
          sum += s * s
          if (++n === 16_000) {
            if (Math.sqrt(sum / n) > 1000) yield { start: second, end: second + 1, text: '[tone]' }
            second++
            sum = 0
            n = 0
          }
        }
        engine.samples += piece.length
      }
    },
  }
  return engine
}

async function upload(server: RecordingServer, media: Uint8Array): Promise<{ id: string; shareId: string }> {
  const created = await createRecording(server)
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: connectWebSocket(`${server.url.replace('http', 'ws')}/api/recordings/upload`),
  })
  for (let i = 0; i < media.length; i += 50_000) {
    await uploader.append(media.subarray(i, i + 50_000))
    await new Promise((r) => setTimeout(r, 20))
  }
  await uploader.publish()
  return created
}

describe('the audio stages', () => {
  it('extract the sound and stream it to a speech-to-text engine while recording; the share page shows captions', async () => {
    const engine = soundDetector()
    const server = await startRecordingServer(
      { root: await mkdtemp(join(tmpdir(), 'crowdmesh-stages-')) },
      { speechToText: engine },
    )
    stops.push(() => server.close())
    const media = await recorderLikeWebm(server.store.root, 8)
    const { id, shareId } = await upload(server, media)
    const audio = await probe(join(server.store.folderOf(id), 'audio.opus'))
    expect(audio.codecs).toEqual(['opus'])
    expect(Math.abs(audio.duration - 8)).toBeLessThanOrEqual(0.1)
    // Captions come when the engine is done, at about the same time as publish.
    let vtt = ''
    await expect
      .poll(async () => {
        const response = await fetch(`${server.url}/v/${shareId}/captions.vtt`)
        vtt = response.ok ? await response.text() : ''
        return response.status
      })
      .toBe(200)
    expect(Math.abs(engine.samples - 8 * 16_000)).toBeLessThanOrEqual(16_000 * 0.05)
    expect(vtt).toMatch(/^WEBVTT - sound detector\n/)
    expect(vtt.match(/\[tone\]/g)?.length).toBe(8)
    expect(vtt).toContain('00:00:07.000 --> 00:00:08.000\n[tone]')
    const page = await (await fetch(`${server.url}/v/${shareId}`)).text()
    expect(page).toContain(`<track kind="captions" src="/v/${shareId}/captions.vtt"`)
  }, 60_000)

  it('a recording without sound publishes all the same, with no audio file', async () => {
    const server = await startRecordingServer({ root: await mkdtemp(join(tmpdir(), 'crowdmesh-stages-')) })
    stops.push(() => server.close())
    const silent = join(server.store.root, 'silent.webm')
    await run('ffmpeg', [
      ...[
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc=size=160x120:rate=15',
        '-t',
        '3',
      ],
      ...['-c:v', 'libvpx', '-deadline', 'realtime', '-live', '1', '-f', 'webm', silent],
    ])
    const { shareId } = await upload(server, new Uint8Array(await readFile(silent)))
    expect((await fetch(`${server.url}/v/${shareId}/video.mp4`)).status).toBe(200)
    const audio = await fetch(`${server.url}/v/${shareId}/audio.opus`)
    expect(audio.status).toBe(404)
    expect(((await audio.json()) as { error: string }).error).toMatch(/no audio\.opus/)
    expect(await (await fetch(`${server.url}/v/${shareId}`)).text()).not.toContain('<track')
  }, 60_000)
})

describe('live recordings', () => {
  it('a live recording plays at its share link while it is recorded (fragmented MP4 as it grows); a private one does not', async () => {
    const server = await startRecordingServer({ root: await mkdtemp(join(tmpdir(), 'crowdmesh-live-')) })
    stops.push(() => server.close())
    const create = (live: boolean) => createRecording(server, { mimeType: 'video/webm', live })
    const live = await create(true)
    const hidden = await create(false)
    const media = await recorderLikeWebm(server.store.root, 10)
    const uploader = new Uploader({
      recording: live.id,
      token: live.writeToken,
      connect: connectWebSocket(`${server.url.replace('http', 'ws')}/api/recordings/upload`),
    })
    // The recording goes on at about real time while a viewer watches.
    const piece = Math.ceil(media.length / 40)
    const append = async (from: number, to: number) => {
      for (let i = from; i < to; i++) {
        await uploader.append(media.subarray(i * piece, (i + 1) * piece))
        await new Promise((r) => setTimeout(r, 250))
      }
    }
    await append(0, 12)
    const recording = append(12, 40)
    expect((await fetch(`${server.url}/v/${hidden.shareId}`)).status).toBe(404)
    const page = await fetch(`${server.url}/v/${live.shareId}`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain(`src="/v/${live.shareId}/live.mp4"`)
    expect((await fetch(`${server.url}/v/${live.shareId}/video.mp4`)).status).toBe(404)
    // The stream so far holds the MP4's header and whole fragments, and it is still open.
    const stream = await fetch(`${server.url}/v/${live.shareId}/live.mp4`)
    expect(stream.headers.get('content-type')).toBe('video/mp4')
    const reader = stream.body!.getReader()
    const received: Uint8Array[] = []
    let bytes = 0
    const deadline = Date.now() + 15_000
    while (Date.now() < deadline) {
      const { value, done } = await reader.read()
      if (done) break
      received.push(value)
      bytes += value.length
      const boxes = topLevelBoxes(Buffer.concat(received))
      if (boxes.filter((b) => b === 'moof').length >= 3) break
    }
    const boxes = topLevelBoxes(Buffer.concat(received))
    expect(boxes.slice(0, 2)).toEqual(['ftyp', 'moov'])
    expect(boxes.filter((b) => b === 'moof').length).toBeGreaterThanOrEqual(3)
    expect(bytes).toBeGreaterThan(0)
    // The recording ends and is published: the live stream ends, and the whole files are there.
    const rest = (async () => {
      for (;;) {
        const { done } = await reader.read()
        if (done) return
      }
    })()
    await recording
    await uploader.publish()
    await rest
    expect((await fetch(`${server.url}/v/${live.shareId}/video.mp4`)).status).toBe(200)
    expect((await fetch(`${server.url}/v/${live.shareId}/live.mp4`)).status).toBe(404)
  }, 60_000)
})
