import { resolve } from 'node:path'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { parseCommand, positiveInt, stringOption } from '../options.ts'

const help = `Usage: crowdmesh serve [options]

Runs the server peer for recordings: recorders create a recording (POST /api/recordings), upload
its bytes as they record (WebSocket /api/recordings/upload; every chunk acknowledged once it is on
disk), and publish; the recording is processed while it arrives (ffmpeg: a fragmented MP4, the WebM
with cues, a thumbnail) and is playable at its share link /v/<id> the moment it is published.
Recordings live in the folder --root: one folder each, named by its id, holding media.bin (the
recorder's bytes), meta.json and the outputs. Ctrl-C stops it; a restarted server resumes every
recording from its acknowledged bytes.

Options:
  --root DIR      where recordings live                                [default: recordings]
  --host ADDR     address to listen on                                 [default: 127.0.0.1]
  --port N        port (0: any free one)                                       [default: 8090]
  --json          print one JSON object when ready: { type: 'ready', url, root }
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
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const root = resolve(stringOption(values, 'root') ?? 'recordings')
  const portText = stringOption(values, 'port')
  const server = await startRecordingServer({
    root,
    host: stringOption(values, 'host') ?? '127.0.0.1',
    port: portText === '0' ? 0 : positiveInt(portText, 'port', 8090),
  })
  if (values.json === true)
    process.stdout.write(`${JSON.stringify({ type: 'ready', url: server.url, root })}\n`)
  else {
    process.stdout.write(`crowdmesh server peer: ${server.url}\n  recordings in ${root}\n`)
    process.stdout.write(`  upload one: npx crowdmesh record --server ${server.url} FILE.webm\n`)
  }
  await new Promise<void>((done) => {
    process.once('SIGINT', done)
    process.once('SIGTERM', done)
  })
  await server.close()
}
