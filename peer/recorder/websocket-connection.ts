import { toRecorderSchema, type ToRecorder } from '../server/upload-protocol.ts'
import { AbortError } from '../protocol/errors.ts'
import type { UploadConnection } from './uploader.ts'

/**
 * An upload connection over a WebSocket (the fallback transport): the standard WebSocket of browsers
 * and of Node ≥ 22, so the same code runs in the recorder's page and in tests and benchmarks.
 */
export function connectWebSocket(url: string): (signal: AbortSignal) => Promise<UploadConnection> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      ws.binaryType = 'arraybuffer'
      const queue: ToRecorder[] = []
      let waiting: ((r: IteratorResult<ToRecorder>) => void) | undefined
      let closed = false
      const deliver = (result: IteratorResult<ToRecorder>) => {
        const w = waiting
        waiting = undefined
        w?.(result)
      }
      const onAbort = () => {
        ws.close()
        reject(new AbortError('the connection did not open in time'))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      ws.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') return
        let message: ToRecorder
        try {
          message = toRecorderSchema.parse(JSON.parse(event.data))
        } catch {
          ws.close()
          return
        }
        if (waiting !== undefined) deliver({ value: message, done: false })
        else queue.push(message)
      })
      ws.addEventListener('close', () => {
        closed = true
        deliver({ value: undefined, done: true })
      })
      ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true })
      ws.addEventListener(
        'open',
        () => {
          signal.removeEventListener('abort', onAbort)
          resolve({
            send: (message) => ws.send(message),
            get bufferedAmount() {
              return ws.bufferedAmount
            },
            messages: () => ({
              [Symbol.asyncIterator]: () => ({
                next: () => {
                  const message = queue.shift()
                  if (message !== undefined) return Promise.resolve({ value: message, done: false })
                  if (closed) return Promise.resolve({ value: undefined, done: true })
                  return new Promise<IteratorResult<ToRecorder>>((r) => (waiting = r))
                },
              }),
            }),
            close: () => ws.close(),
          })
        },
        { once: true },
      )
    })
}
