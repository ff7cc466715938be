import { WebSocket } from 'ws'
import { encodeChunk, type ToRecorder, toRecorderSchema } from '../../peer/server/upload-protocol.ts'

/**
 * A recorder's upload connection driven message by message (the upload protocol over a real
 * WebSocket): tests send exactly what they mean, and read the server's answers in order.
 */
export class UploadClient {
  readonly ws: WebSocket
  /** The close code and reason, once the connection closes. */
  readonly closed: Promise<{ code: number; reason: string }>
  private readonly answers: ToRecorder[] = []
  private waiting: ((answer: ToRecorder) => void) | undefined

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data: Buffer) => {
      const answer = toRecorderSchema.parse(JSON.parse(data.toString('utf8')))
      const waiting = this.waiting
      this.waiting = undefined
      if (waiting !== undefined) waiting(answer)
      else this.answers.push(answer)
    })
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })),
    )
  }

  /** Opens a connection to a server peer's upload socket. */
  static async open(serverUrl: string): Promise<UploadClient> {
    const ws = new WebSocket(`${serverUrl.replace(/^http/, 'ws')}/api/recordings/upload`)
    const client = new UploadClient(ws)
    await new Promise((resolve, reject) => {
      ws.once('open', resolve)
      ws.once('error', reject)
    })
    return client
  }

  /** The server's next answer; rejects after `timeoutMs` without one. */
  next(timeoutMs = 20_000): Promise<ToRecorder> {
    const answer = this.answers.shift()
    if (answer !== undefined) return Promise.resolve(answer)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
      this.waiting = (a) => {
        clearTimeout(timer)
        resolve(a)
      }
    })
  }

  hello(recording: string, token: string): Promise<ToRecorder> {
    this.ws.send(JSON.stringify({ type: 'hello', recording, token }))
    return this.next()
  }

  chunk(seq: number, offset: number, data: Uint8Array): Promise<ToRecorder> {
    this.ws.send(encodeChunk(seq, offset, data))
    return this.next()
  }

  publish(bytes: number, timeoutMs?: number): Promise<ToRecorder> {
    this.ws.send(JSON.stringify({ type: 'publish', bytes }))
    return this.next(timeoutMs)
  }

  /** Sends `data` from `offset` in chunks of `size`, each acknowledged before the next; the last answer. */
  async upload(data: Uint8Array, offset = 0, size = 64 * 1024): Promise<ToRecorder> {
    let answer: ToRecorder = { type: 'ready', offset }
    for (let at = 0, seq = 0; at < data.length; at += size, seq++) {
      answer = await this.chunk(seq, offset + at, data.subarray(at, Math.min(at + size, data.length)))
      if (answer.type !== 'ack') return answer
    }
    return answer
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close()
    return this.closed
  }
}
