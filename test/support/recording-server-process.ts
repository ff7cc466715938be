import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { startRecordingServer, type RecordingServerInit } from '../../peer/server/recording-server.ts'
import { repoRoot } from './fixtures.ts'

/** A server peer in its own process, so a test can kill it the hard way. */
export interface ServerProcess {
  url: string
  port: number
  /** The bearer that creates recordings on it (standalone: its recorder key). */
  recorderKey: string | undefined
  child: ChildProcess
}

/** Starts `startRecordingServer(init)` in a child process; resolves once it listens (and registered). */
export async function spawnRecordingServer(
  init: RecordingServerInit,
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
  const { url, recorderKey } = JSON.parse(line) as { url: string; recorderKey?: string }
  return { url, port: Number(new URL(url).port), recorderKey, child }
}

/** The token of a join link (`…/join/<event>/<token>`): what a recorder page sends as its bearer. */
export function linkToken(link: string): string {
  return link.split('/').at(-1)!
}

/**
 * A new recording on a server peer (POST /api/recordings): its id, write token and share id. `key`
 * is the bearer that may create one (default the server's own recorder key).
 */
export async function createRecording(
  server: { url: string; recorderKey?: string | undefined },
  body: { mimeType: string; live?: boolean } = { mimeType: 'video/webm' },
  key = server.recorderKey,
): Promise<{ id: string; writeToken: string; shareId: string }> {
  const response = await fetch(`${server.url}/api/recordings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key ?? ''}` },
    body: JSON.stringify(body),
  })
  if (response.status !== 201)
    throw new Error(`creating a recording answered ${response.status}: ${await response.text()}`)
  return (await response.json()) as { id: string; writeToken: string; shareId: string }
}

// Run as a script: `node recording-server-process.ts '{"root":…}'`.
if (process.argv[1] === import.meta.filename && process.argv[2] !== undefined) {
  const server = await startRecordingServer(JSON.parse(process.argv[2]) as RecordingServerInit)
  await server.rtc?.registered()
  process.stdout.write(`${JSON.stringify({ url: server.url, recorderKey: server.recorderKey })}\n`)
}
