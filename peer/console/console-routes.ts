import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError, readJsonBody, sendJson } from '../../signaling/http.ts'
import { consoleDefaults } from '../protocol/defaults.ts'
import { UnknownJobError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'
import { consoleActionSchema, type ConsoleSnapshot } from './console-protocol.ts'
import { type EventConsole, UnknownParticipantError } from './event-console.ts'

/** Largest action a console page posts, bytes. */
const maxActionBytes = 4 * 1024

/**
 * The console's routes under its operator link (`/console/<event>/<token>/…`; the signaling server
 * checked the token): `stream` (Server-Sent Events, one snapshot per message), `api/actions`
 * (POST one action), `api/recordings` (GET the list).
 */
export async function serveConsole(
  console: EventConsole,
  rest: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  if (rest === 'stream' && request.method === 'GET') return openStream(console, request, response)
  if (rest === 'api/actions' && request.method === 'POST') {
    const action = parseMessage(consoleActionSchema, await readJsonBody(request, maxActionBytes))
    try {
      return sendJson(response, 200, console.act(action))
    } catch (error) {
      if (error instanceof UnknownJobError || error instanceof UnknownParticipantError)
        throw new HttpError(404, error.message)
      throw error
    }
  }
  if (rest === 'api/recordings' && request.method === 'GET')
    return sendJson(response, 200, { recordings: await console.listRecordings() })
  throw new HttpError(404, `no such console resource: ${request.method} ${rest.slice(0, 80)}`)
}

/**
 * A Server-Sent Events stream of snapshots. A page that does not read (a phone gone to sleep) is not
 * buffered for: past `maxStreamBacklogBytes` unsent it misses snapshots until its socket drains.
 */
function openStream(console: EventConsole, request: IncomingMessage, response: ServerResponse): void {
  let unwatch: (() => void) | undefined
  const send = (snapshot: ConsoleSnapshot) => {
    // The first message (whole diagrams) always goes; later ones only to a page that keeps up.
    if (!snapshot.seriesWhole && response.writableLength > consoleDefaults.maxStreamBacklogBytes) return
    response.write(`data: ${JSON.stringify(snapshot)}\n\n`)
  }
  // Refused before anything is written, so the page reads a status rather than a broken stream.
  if (console.viewers >= consoleDefaults.maxViewers)
    throw new HttpError(429, `${consoleDefaults.maxViewers} consoles are open already`)
  response.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
  })
  // The page reconnects by itself (EventSource) this long after the stream breaks, ms.
  response.write('retry: 1000\n\n')
  unwatch = console.watch(send)
  const stop = () => {
    unwatch?.()
    unwatch = undefined
  }
  request.once('close', stop)
  response.once('close', stop)
}
