import { startRecordingServer } from '../../peer/server/recording-server.ts'

// A server peer in its own process, so a test can kill it the hard way: `node … ROOT [PORT]`.
const server = await startRecordingServer({ root: process.argv[2]!, port: Number(process.argv[3] ?? 0) })
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`)
