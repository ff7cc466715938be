import { createHmac } from 'node:crypto'

/** An ICE server entry as RTCPeerConnection takes it. */
export interface IceServer {
  urls: string[]
  username?: string
  credential?: string
}

/** Ephemeral TURN credentials. */
export interface TurnCredentials {
  username: string
  credential: string
  /** Expiry, seconds since the epoch. */
  expiresAt: number
}

/**
 * TURN credentials by the TURN REST convention that coturn implements with `use-auth-secret`:
 * username `<expiry-unix-time>:<id>`, password base64(HMAC-SHA1(secret, username)). coturn checks
 * them with the shared secret alone and refuses them after the expiry; nothing is stored. coturn
 * counts its `user-quota` (allocations held at once) per id, the part after the expiry: fresh
 * credentials for the same id share one quota, so give each connection an id of its own.
 */
export function turnCredentials(
  secret: string,
  id: string,
  ttlSeconds: number,
  nowSeconds = Math.floor(Date.now() / 1000),
): TurnCredentials {
  const expiresAt = nowSeconds + ttlSeconds
  // coturn splits the username at the first colon: keep the id free of separators.
  const username = `${expiresAt}:${id.replace(/[^A-Za-z0-9_-]/g, '_')}`
  const credential = createHmac('sha1', secret).update(username).digest('base64')
  return { username, credential, expiresAt }
}
