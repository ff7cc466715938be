import { MessageTooDeepError } from '../peer/protocol/errors.ts'
import { parseBoundedJson } from '../peer/protocol/json-limits.ts'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Errors with an HTTP status: the message is what the person at the other end reads. */
export class HttpError extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** Answers with a JSON body. */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' })
  response.end(JSON.stringify(body))
}

/**
 * Reads a JSON request body of at most `maxBytes` (413 beyond, 400 when not JSON or nested too
 * deeply; empty is `{}`). A declared length over the limit is refused before a byte is read.
 */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? 0)
  if (declared > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8') || '{}'
  try {
    return parseBoundedJson(text, { maxBytes })
  } catch (error) {
    if (error instanceof MessageTooDeepError) throw new HttpError(400, error.message)
    throw new HttpError(400, 'request body is not JSON')
  }
}
