import { toRecorderSchema, type ToRecorder } from '../server/upload-protocol.ts'

/**
 * The server's answers on one connection, as the uploader reads them: pushed by the transport's
 * message events, read in order; after `end` every read is done. An answer that is not valid JSON
 * of the protocol ends the queue (and the transport closes the connection).
 */
export class AnswerQueue {
  private readonly queue: ToRecorder[] = []
  private waiting: ((result: IteratorResult<ToRecorder>) => void) | undefined
  private ended = false

  /** Takes one text message; returns false if it is not a protocol answer. */
  push(text: string): boolean {
    let message: ToRecorder
    try {
      message = toRecorderSchema.parse(JSON.parse(text))
    } catch {
      this.end()
      return false
    }
    const waiting = this.waiting
    this.waiting = undefined
    if (waiting !== undefined) waiting({ value: message, done: false })
    else this.queue.push(message)
    return true
  }

  end(): void {
    this.ended = true
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.({ value: undefined, done: true })
  }

  messages(): AsyncIterable<ToRecorder> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          const message = this.queue.shift()
          if (message !== undefined) return Promise.resolve({ value: message, done: false })
          if (this.ended) return Promise.resolve({ value: undefined, done: true })
          return new Promise<IteratorResult<ToRecorder>>((resolve) => (this.waiting = resolve))
        },
      }),
    }
  }
}
