import { resolve } from 'node:path'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'

const help = `Usage: crowdmesh serve [options]

Runs the server peer for recordings: recorders create a recording (POST /api/recordings), upload
its bytes as they record (WebSocket /api/recordings/upload; every chunk acknowledged once it is on
disk), and publish; the recording is processed while it arrives (ffmpeg: a fragmented MP4, the WebM
with cues, a thumbnail) and is playable at its share link /v/<id> the moment it is published.
Recordings live in the folder --root: one folder each, named by its id, holding media.bin (the
recorder's bytes), meta.json and the outputs. Ctrl-C stops it; a restarted server resumes every
recording from its acknowledged bytes.

Creating a recording needs a key (authorization: Bearer <key>). Without --link the server has its
own recorder key: --recorder-key (or $CROWDMESH_RECORDER_KEY), else a random one minted at start
and printed; give it to "crowdmesh record --recorder-key". With --link (an event's operator join
link) the server registers with that event's signaling server: the event's recorder links find it,
create recordings with their own token (checked with the signaling server) and upload over WebRTC
data channels, falling back to the WebSocket. "crowdmesh start" runs one for its event already.

Options:
  --root DIR      where recordings live                                [default: recordings]
  --link URL      an operator join link of the event whose recorders it serves
  --public-url URL
                  the URL recorders reach it at, when not the one it listens on (a proxy)
  --recorder-key KEY
                  the key that creates recordings, without --link  [default: $CROWDMESH_RECORDER_KEY, else random]
  --host ADDR     address to listen on                                 [default: 127.0.0.1]
  --port N        port (0: any free one)                                       [default: 8090]
  --json          print one JSON object when ready: { type: 'ready', url, root, recorderKey }
  -h, --help      show this help
`

/** `crowdmesh serve`. */
export async function serveCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      root: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      link: { type: 'string' },
      'public-url': { type: 'string' },
      'recorder-key': { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const root = resolve(stringOption(values, 'root') ?? 'recordings')
  const portText = stringOption(values, 'port')
  const link = stringOption(values, 'link')
  const recorderKey = stringOption(values, 'recorder-key') ?? process.env.CROWDMESH_RECORDER_KEY
  if (link !== undefined && recorderKey !== undefined && stringOption(values, 'recorder-key') !== undefined)
    throw new UsageError(
      "--recorder-key is for a server without --link: the event's recorder links create recordings",
    )
  if (recorderKey !== undefined && !/^[\w.~+/=-]{16,512}$/.test(recorderKey))
    throw new UsageError('--recorder-key must be 16 to 512 characters of letters, digits and -._~+/=')
  const server = await startRecordingServer({
    root,
    host: stringOption(values, 'host') ?? '127.0.0.1',
    port: portText === '0' ? 0 : positiveInt(portText, 'port', 8090),
    ...(link !== undefined && { eventLink: link }),
    ...(link === undefined && recorderKey !== undefined && { recorderKey }),
    ...(stringOption(values, 'public-url') !== undefined && {
      publicUrl: stringOption(values, 'public-url')!,
    }),
  })
  if (values.json === true)
    process.stdout.write(
      `${JSON.stringify({
        type: 'ready',
        url: server.url,
        root,
        signalingPeer: server.rtc?.peer ?? null,
        recorderKey: server.recorderKey ?? null,
      })}\n`,
    )
  else {
    process.stdout.write(`crowdmesh server peer: ${server.url}\n  recordings in ${root}\n`)
    if (server.rtc !== undefined)
      process.stdout.write(`  registered with the event's signaling server: recorders upload over WebRTC\n`)
    if (server.recorderKey !== undefined)
      process.stdout.write(
        `  recorder key: ${server.recorderKey}\n  upload one: npx crowdmesh record --server ${server.url} --recorder-key ${server.recorderKey} FILE.webm\n`,
      )
    else
      process.stdout.write(
        `  upload one: npx crowdmesh record --server ${server.url} --recorder-key <the recorder link's token> FILE.webm\n`,
      )
  }
  await new Promise<void>((done) => {
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
  })
  await server.close()
}
