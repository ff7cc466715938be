import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { Uploader } from '../../peer/recorder/uploader.ts'
import { connectWebSocket } from '../../peer/recorder/websocket-connection.ts'
import { parseCommandWithPositionals, stringOption, UsageError } from '../options.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh record FILE [options]

Uploads a recording as a recorder does, to a server peer (crowdmesh serve): creates it, sends the
file's bytes in 250 ms chunks through the upload protocol (as fast as the link allows, or at --pace
times real time, taking the file's length from --seconds), publishes it, and prints its share link
and how long publish took to give a playable video. For developers and benchmarks; participants
record in the web app.

Options:
  --server URL    the server peer                                 [default: http://127.0.0.1:8090]
  --recorder-key KEY
                  what creates the recording: the server's recorder key (printed by crowdmesh
                  serve), or the token of the event's recorder link   [default: $CROWDMESH_RECORDER_KEY]
  --seconds S     the recording's length, for --pace
  --pace X        send at X times real time (needs --seconds)            [default: as fast as possible]
  --json          print one JSON object at the end: { shareUrl, bytes, publishToPlayableMs, ... }
  -h, --help      show this help
`

/** `crowdmesh record FILE`. */
export async function recordCommand(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(
    args,
    {
      server: { type: 'string' },
      'recorder-key': { type: 'string' },
      seconds: { type: 'string' },
      pace: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
    1,
  )
  if (parsed === undefined) return
  const { values, positionals } = parsed
  const server = (stringOption(values, 'server') ?? 'http://127.0.0.1:8090').replace(/\/$/, '')
  const seconds = Number(stringOption(values, 'seconds') ?? Number.NaN)
  const pace = Number(stringOption(values, 'pace') ?? Number.NaN)
  if (!Number.isNaN(pace) && !(seconds > 0))
    throw new UsageError('--pace needs --seconds (the recording length)')
  const recorderKey = stringOption(values, 'recorder-key') ?? process.env.CROWDMESH_RECORDER_KEY
  if (recorderKey === undefined)
    throw new UsageError(
      'creating a recording needs --recorder-key (or $CROWDMESH_RECORDER_KEY): the key crowdmesh serve printed',
    )
  const media = new Uint8Array(await readFile(positionals[0]!))
  const mimeType = extname(positionals[0]!).toLowerCase() === '.mp4' ? 'video/mp4' : 'video/webm'
  const response = await fetch(`${server}/api/recordings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${recorderKey}` },
    body: JSON.stringify({ mimeType }),
  })
  if (!response.ok)
    throw new UsageError(`the server peer at ${server} refused: ${response.status} ${await response.text()}`)
  const created = (await response.json()) as { id: string; writeToken: string; shareId: string }
  const uploader = new Uploader({
    recording: created.id,
    token: created.writeToken,
    connect: connectWebSocket(`${server.replace(/^http/, 'ws')}/api/recordings/upload`),
  })
  const bar = progressBar('uploading', { quiet: values.json === true })
  const chunks = seconds > 0 ? Math.max(1, Math.round(seconds * 4)) : Math.ceil(media.length / 65_536)
  const size = Math.ceil(media.length / chunks)
  const started = performance.now()
  for (let i = 0; i < chunks; i++) {
    await uploader.append(media.subarray(i * size, Math.min((i + 1) * size, media.length)))
    bar.update(uploader.progress.acknowledged, media.length)
    if (pace > 0) {
      const wait = started + ((i + 1) * 250) / pace - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
  }
  while (uploader.progress.acknowledged < media.length) {
    bar.update(uploader.progress.acknowledged, media.length)
    await new Promise((r) => setTimeout(r, 10))
  }
  bar.done()
  const pressed = performance.now()
  const shareId = await uploader.publish()
  const publishToPlayableMs = Math.round(performance.now() - pressed)
  const report = {
    shareUrl: `${server}/v/${shareId}`,
    mp4: `${server}/v/${shareId}/video.mp4`,
    webm: `${server}/v/${shareId}/video.webm`,
    bytes: media.length,
    uploadSeconds: Math.round(pressed - started) / 1000,
    publishToPlayableMs,
    reconnects: uploader.progress.reconnects,
  }
  if (values.json === true) process.stdout.write(`${JSON.stringify(report)}\n`)
  else
    process.stdout.write(
      `published: ${report.shareUrl}\n  playable ${publishToPlayableMs} ms after publish; MP4 ${report.mp4}\n`,
    )
}
