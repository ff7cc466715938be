import { AbortError, CrowdmeshError } from '../protocol/errors.ts'
import type { IceServer } from '../../relay/turn-credentials.ts'

/*
 * A join link and what the signaling server hands its holder: used by participants (join.ts), the
 * recorder page and the server peer for recordings, so it imports nothing heavier than fetch.
 */

/** A join link could not be used: the signaling server's or the coordinator's reason, for the person. */
export class JoinRefusedError extends CrowdmeshError {}

/** What the signaling server hands a joining peer. */
export interface Bootstrap {
  event: string
  role: string
  peer: string
  coordinatorPeerId: string | null
  relayAddrs: string[]
  /** The event's server peer for recordings, while one is connected. */
  recordingServer: { peer: string; url: string } | null
  iceServers: IceServer[]
  expiresAt: number
}

/** The parts of a join link: `<base>/join/<event>/<token>`. */
export function parseJoinLink(link: string): { base: string; event: string; token: string } {
  let url: URL
  try {
    url = new URL(link)
  } catch {
    throw new JoinRefusedError(`not a join link: ${link}`)
  }
  const match = /^(.*)\/join\/([\w-]+)\/([\w.-]+)$/.exec(url.pathname)
  if (match === null) throw new JoinRefusedError(`not a join link (expected …/join/<event>/<token>): ${link}`)
  return { base: `${url.origin}${match[1]}`, event: match[2]!, token: match[3]! }
}

/** Asks the signaling server for the bootstrap of a link's event; a refused link throws with its reason. */
export async function fetchBootstrap(link: string, signal: AbortSignal): Promise<Bootstrap> {
  const { base, token } = parseJoinLink(link)
  let response: Response
  try {
    response = await fetch(`${base}/api/bootstrap?token=${encodeURIComponent(token)}`, { signal })
  } catch (error) {
    if (signal.aborted) throw new AbortError()
    throw new JoinRefusedError(`cannot reach the signaling server at ${base}: ${(error as Error).message}`)
  }
  const body = (await response.json().catch(() => ({}))) as Partial<Bootstrap> & { error?: string }
  if (!response.ok)
    throw new JoinRefusedError(
      `the link was refused (${response.status}): ${body.error ?? 'no reason given'}`,
    )
  return body as Bootstrap
}
