import { createHash, timingSafeEqual } from 'node:crypto'
import { HttpError } from '../../signaling/http.ts'
import { parseJoinLink } from '../mesh/bootstrap.ts'
import { recordingLimits } from '../protocol/defaults.ts'

/*
 * Who may create a recording on the server peer: the bearer of `POST /api/recordings`. With an
 * event, a recorder's (or the operator's) join link of that event, checked with the event's
 * signaling server, which alone holds the key that signs links; a standalone server mints its own
 * recorder key at start. The write token a creation returns is what guards the upload after that.
 */

/**
 * Checks the bearer token of a request to create a recording: resolves if it may, else throws an
 * `HttpError` (403: refused; 503: cannot be checked now).
 */
export type AuthorizeRecorder = (token: string, signal: AbortSignal) => Promise<void>

/** Roles whose join links may create recordings. */
const recorderRoles = new Set(['recorder', 'operator'])

/** The signaling server's answers that refuse a token (any other failure is its own trouble). */
const refusals = new Set([400, 401, 403, 404, 410])

/** Longest bearer looked at: join tokens and keys are far shorter. */
const maxTokenLength = 2048

/** Accepts exactly `key` (compared in constant time). */
export function recorderKeyAuthorizer(key: string): AuthorizeRecorder {
  const expected = digest(key)
  return (token) =>
    token.length <= maxTokenLength && timingSafeEqual(digest(token), expected)
      ? Promise.resolve()
      : Promise.reject(new HttpError(403, 'wrong recorder key'))
}

/** Options of `eventLinkAuthorizer`; each defaults from `recordingLimits`. */
export interface EventLinkAuthorizerInit {
  /** How long an answer of the signaling server is trusted, ms. */
  cacheMs?: number
  /** Answers kept at once; the oldest goes first. */
  maxEntries?: number
  /** How long the signaling server may take to answer, ms (default 5 s). */
  timeoutMs?: number
}

/**
 * Accepts a join token of `eventLink`'s event whose role is recorder or operator, asking the event's
 * signaling server (`GET /api/bootstrap?token=…`, which verifies the token and names its role).
 * Answers, yes and no, are cached for `cacheMs`, so a recorder that creates a recording every few
 * seconds does not cost a request each; a signaling server that cannot be reached is a 503, never
 * cached, never a guess.
 */
export function eventLinkAuthorizer(
  eventLink: string,
  init: EventLinkAuthorizerInit = {},
): AuthorizeRecorder {
  const { base, event } = parseJoinLink(eventLink)
  const cacheMs = init.cacheMs ?? recordingLimits.authCacheMs
  const maxEntries = init.maxEntries ?? recordingLimits.maxAuthCacheEntries
  const timeoutMs = init.timeoutMs ?? 5000
  const cache = new Map<string, { until: number; answer: Promise<void> }>()

  async function ask(token: string, signal: AbortSignal): Promise<void> {
    let response: Response
    try {
      response = await fetch(`${base}/api/bootstrap?token=${encodeURIComponent(token)}`, {
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
      })
    } catch (error) {
      throw new HttpError(
        503,
        `cannot check the link with the event's signaling server: ${(error as Error).message}`,
      )
    }
    const body = (await response.json().catch(() => ({}))) as {
      role?: unknown
      event?: unknown
      error?: unknown
    }
    if (!response.ok && !refusals.has(response.status))
      throw new HttpError(503, `the event's signaling server answered ${response.status}`)
    if (!response.ok) {
      const reason = typeof body.error === 'string' ? body.error.slice(0, 200) : String(response.status)
      throw new HttpError(403, `the event's signaling server refused this link: ${reason}`)
    }
    if (body.event !== event) throw new HttpError(403, 'this link is of another event')
    const role = typeof body.role === 'string' ? body.role.slice(0, 40) : 'unknown'
    if (!recorderRoles.has(role))
      throw new HttpError(403, `a ${role}'s link cannot create recordings: use the event's recorder link`)
  }

  return (token, signal) => {
    if (token.length > maxTokenLength) return Promise.reject(new HttpError(403, 'not a join token'))
    const now = Date.now()
    const known = cache.get(token)
    if (known !== undefined && known.until > now) return known.answer
    cache.delete(token)
    const answer = ask(token, signal)
    cache.set(token, { until: now + cacheMs, answer })
    // Only the signaling server's own answers are kept: a failure to ask is asked again.
    answer.catch((error: unknown) => {
      if (!(error instanceof HttpError) || error.status !== 403) cache.delete(token)
    })
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!)
    return answer
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
