import { connect } from 'node:net'
import { WebSocket } from 'ws'
import type { Connect, UploadConnection } from '../../peer/recorder/uploader.ts'
import { encodeChunk, toRecorderSchema } from '../../peer/server/upload-protocol.ts'
import { encodeHttpRequest, type HostileHttpRequest, type SocketMessage, type UploadStep } from './inputs.ts'

/** How one case ended: `ok`, or why the server's answer was not a clear one. */
export type Verdict = { ok: true } | { ok: false; why: string }

const ok: Verdict = { ok: true }

/**
 * Sends a raw request and reads until the server closes. A clear answer is an HTTP status line
 * below 500 (an internal error is a bug the guard should have turned into a refusal), or the
 * connection closed without one (a request the parser gave up on mid-way).
 */
export function sendHttp(baseUrl: string, request: HostileHttpRequest, timeoutMs = 5000): Promise<Verdict> {
  const { hostname, port } = new URL(baseUrl)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    let answer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ ok: false, why: `no answer and not closed within ${timeoutMs} ms` })
    }, timeoutMs)
    socket.on('connect', () => socket.end(encodeHttpRequest(request)))
    socket.on('data', (chunk: Buffer) => {
      if (answer.length < 200) answer += chunk.toString('latin1')
    })
    // A reset is the server closing on us: fine.
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      if (answer === '') return resolve(ok)
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(answer)
      if (status === null) return resolve({ ok: false, why: `not an HTTP answer: ${answer.slice(0, 60)}` })
      if (Number(status[1]) >= 500) return resolve({ ok: false, why: `answered ${status[1]}` })
      resolve(ok)
    })
  })
}

/** Close codes that are a clear refusal or an ordinary end; 1011 (internal error) is not. */
const clearCloseCodes = new Set([
  1000, 1001, 1005, 1006, 1007, 1008, 1009, 4008, 4400, 4401, 4403, 4408, 4409, 4413, 4429,
])

/** Opens a WebSocket; resolves once open (or with why not). */
function openSocket(url: string, timeoutMs = 5000): Promise<WebSocket | string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => {
      ws.terminate()
      resolve('did not open in time')
    }, timeoutMs)
    ws.once('open', () => {
      clearTimeout(timer)
      resolve(ws)
    })
    ws.once('unexpected-response', (_request, response) => {
      clearTimeout(timer)
      ws.terminate()
      resolve(`refused with ${response.statusCode}`)
    })
    ws.once('error', (error) => {
      clearTimeout(timer)
      resolve(error.message)
    })
  })
}

/**
 * Sends messages on a WebSocket, then waits `settleMs` for answers; every answer must pass `check`
 * and a close must carry a clear code. Returns the answers too.
 */
async function socketCase(
  url: string,
  messages: readonly SocketMessage[],
  check: (answer: unknown) => string | undefined,
  settleMs: number,
): Promise<Verdict> {
  const ws = await openSocket(url)
  if (typeof ws === 'string') return { ok: false, why: `could not connect: ${ws}` }
  let problem: string | undefined
  let closeCode: number | undefined
  ws.on('error', () => {})
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) {
      problem ??= 'answered with a binary message'
      return
    }
    let answer: unknown
    try {
      answer = JSON.parse(data.toString('utf8'))
    } catch {
      problem ??= `answered with something not JSON: ${data.toString('utf8').slice(0, 60)}`
      return
    }
    problem ??= check(answer)
  })
  const closed = new Promise<void>((resolve) =>
    ws.once('close', (code) => {
      closeCode = code
      resolve()
    }),
  )
  for (const message of messages) {
    if (ws.readyState !== WebSocket.OPEN) break
    ws.send('text' in message ? message.text : message.binary)
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, settleMs))])
  if (closeCode === undefined) {
    ws.terminate()
    await closed
  } else if (!clearCloseCodes.has(closeCode)) problem ??= `closed with code ${closeCode}`
  return problem === undefined ? ok : { ok: false, why: problem }
}

/** A signaling session: every answer is `welcome`, `signal` or `error`. */
export function signalingCase(signalUrl: string, messages: readonly SocketMessage[]): Promise<Verdict> {
  return socketCase(
    signalUrl,
    messages,
    (answer) => {
      const type = (answer as { type?: unknown }).type
      return type === 'welcome' || type === 'signal' || type === 'error'
        ? undefined
        : `answered type ${String(type)}`
    },
    150,
  )
}

/** A recording the fuzzer may upload to: its id and write token. */
export interface FuzzRecording {
  id: string
  writeToken: string
}

/**
 * An upload session of hostile steps: every answer must be one of the protocol's (`ready`, `ack`,
 * `published`, `error`), and no error may be `internal`.
 */
export function uploadCase(
  uploadUrl: string,
  steps: readonly UploadStep[],
  recording: FuzzRecording,
): Promise<Verdict> {
  return socketCase(uploadUrl, uploadMessages(steps, recording), uploadAnswerProblem, 300)
}

/** What is wrong with an upload answer, if anything. */
function uploadAnswerProblem(answer: unknown): string | undefined {
  const parsed = toRecorderSchema.safeParse(answer)
  if (!parsed.success) return `answered outside the protocol: ${JSON.stringify(answer).slice(0, 80)}`
  if (parsed.data.type === 'error' && parsed.data.code === 'internal')
    return `internal error: ${parsed.data.message}`
  return undefined
}

/**
 * The same hostile upload session over a WebRTC data channel to the server peer (negotiated through
 * the signaling server as a recorder's is): answers are read through the uploader's own parser, so
 * an answer outside the protocol ends the connection and shows here as a problem.
 */
export async function rtcUploadCase(
  connect: Connect,
  steps: readonly UploadStep[],
  recording: FuzzRecording,
): Promise<Verdict> {
  let connection: UploadConnection | undefined
  // A negotiation now and then fails inside libdatachannel on the fuzzer's side under a long run's
  // load ("remote candidate without ICE transport": 4 of 435 cases twice in a row in a 10-minute
  // run, none in a 1-minute one). The case is about the server's answers, so it gets more tries, a
  // moment apart; a server that cannot be reached at all still fails it.
  for (let attempt = 1; connection === undefined; attempt++) {
    try {
      connection = await connect(AbortSignal.timeout(8000))
    } catch (error) {
      if (attempt === 4)
        return { ok: false, why: `could not connect over WebRTC: ${(error as Error).message}` }
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt))
    }
  }
  let problem: string | undefined
  const reading = (async () => {
    try {
      for await (const answer of connection.messages()) problem ??= uploadAnswerProblem(answer)
    } catch (error) {
      problem ??= `unreadable answer: ${(error as Error).message}`
    }
  })()
  for (const message of uploadMessages(steps, recording)) {
    try {
      // A data channel carries at most 64 KiB in one message: larger chunks are what a browser cannot send.
      const data = 'text' in message ? message.text : message.binary
      if (data.length <= 64 * 1024) connection.send(data)
    } catch {
      break
    }
  }
  await Promise.race([reading, new Promise((r) => setTimeout(r, 400))])
  connection.close()
  await Promise.race([reading, new Promise((r) => setTimeout(r, 1000))])
  return problem === undefined ? ok : { ok: false, why: problem }
}

/** The messages of an upload session, against one real recording. */
function uploadMessages(steps: readonly UploadStep[], recording: FuzzRecording): SocketMessage[] {
  let next = 0
  const messages: SocketMessage[] = steps.map((step) => {
    switch (step.kind) {
      case 'hello':
        return {
          text: JSON.stringify({
            type: 'hello',
            recording:
              step.recording === 'valid'
                ? recording.id
                : step.recording === 'other'
                  ? 'AAAAAAAAAAAAAAAAAAAAAA'
                  : '../../etc/passwd',
            token:
              step.token === 'valid' ? recording.writeToken : step.token === 'wrong' ? 'x'.repeat(43) : '',
          }),
        }
      case 'chunk': {
        const offset =
          step.offset === 'next'
            ? next
            : step.offset === 'zero'
              ? 0
              : step.offset === 'far'
                ? next + 1_000_000
                : step.offset === 'negative'
                  ? -1
                  : Number.NaN
        if (step.offset === 'next') next += step.bytes
        return { binary: encodeChunk(step.seq % 2 ** 32, offset, new Uint8Array(step.bytes).fill(0x1a)) }
      }
      case 'publish':
        return {
          text: JSON.stringify({
            type: 'publish',
            bytes:
              step.bytes === 'held'
                ? next
                : step.bytes === 'more'
                  ? next + 10
                  : step.bytes === 'negative'
                    ? -5
                    : 2 ** 60,
          }),
        }
      case 'text':
        return { text: step.text }
      case 'binary':
        return { binary: step.bytes }
    }
  })
  return messages
}
