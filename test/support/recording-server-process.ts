import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startRecordingServer, type RecordingServerInit } from '../../peer/server/recording-server.ts'
import { repoRoot } from './fixtures.ts'

/** A server peer in its own process, so a test can kill it the hard way. */
export interface ServerProcess {
  url: string
  port: number
  child: ChildProcess
}

/** Starts `startRecordingServer(init)` in a child process; resolves once it listens (and registered). */
export async function spawnRecordingServer(
  init: Omit<RecordingServerInit, 'logger'>,
  children: ChildProcess[] = [],
): Promise<ServerProcess> {
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'test/support/recording-server-process.ts'), JSON.stringify(init)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.push(child)
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)))
  })
  const { url } = JSON.parse(line) as { url: string }
  return { url, port: Number(new URL(url).port), child }
}

/** A new recording on a server peer (POST /api/recordings): its id, write token and share id. */
export async function createRecording(
  serverUrl: string,
  body: { mimeType: string; live?: boolean } = { mimeType: 'video/webm' },
): Promise<{ id: string; writeToken: string; shareId: string }> {
  const response = await fetch(`${serverUrl}/api/recordings`, { method: 'POST', body: JSON.stringify(body) })
  if (response.status !== 201) throw new Error(`creating a recording answered ${response.status}`)
  return (await response.json()) as { id: string; writeToken: string; shareId: string }
}

// Run as a script: `node recording-server-process.ts '{"root":…}'`.
if (process.argv[1] === import.meta.filename && process.argv[2] !== undefined) {
  const server = await startRecordingServer(JSON.parse(process.argv[2]) as RecordingServerInit)
  await server.rtc?.registered()
  process.stdout.write(`${JSON.stringify({ url: server.url })}\n`)
}
