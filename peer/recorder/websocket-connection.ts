import { AbortError } from '../protocol/errors.ts'
import { AnswerQueue } from './answers.ts'
import type { Connect } from './uploader.ts'

/**
 * An upload connection over a WebSocket (the fallback transport): the standard WebSocket of browsers
 * and of Node ≥ 22, so the same code runs in the recorder's page and in tests and benchmarks.
 */
export function connectWebSocket(url: string): Connect {
  return (signal) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      ws.binaryType = 'arraybuffer'
      const answers = new AnswerQueue()
      const onAbort = () => {
        ws.close()
        reject(new AbortError('the connection did not open in time'))
      }
      signal.addEventListener('abort', onAbort, { once: true })
      ws.addEventListener('message', (event) => {
        if (typeof event.data === 'string' && !answers.push(event.data)) ws.close()
      })
      ws.addEventListener('close', () => answers.end())
      ws.addEventListener('error', () => reject(new Error(`cannot connect to ${url}`)), { once: true })
      ws.addEventListener(
        'open',
        () => {
          signal.removeEventListener('abort', onAbort)
          resolve({
            kind: 'websocket',
            send: (message) => ws.send(message),
            get bufferedAmount() {
              return ws.bufferedAmount
            },
            messages: () => answers.messages(),
            close: () => ws.close(),
          })
        },
        { once: true },
      )
    })
}
