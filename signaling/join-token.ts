import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { CrowdmeshError } from '../peer/protocol/errors.ts'

/** What a join link lets its holder do. */
export type Role = 'participant' | 'operator' | 'viewer' | 'recorder'

/** The claims a join token carries. */
export interface JoinClaims {
  /** Event id. */
  event: string
  role: Role
  /** Expiry, seconds since the epoch. */
  exp: number
  /**
   * Unique id of the link: names it in logs and bounds the peers it may have connected at once. Links
   * are not revocable one by one yet: they end with their event (its expiry, or the operator ending it).
   */
  jti: string
}

/** Why a token was refused; `reason` is stable for programs, the message is for people. */
export class InvalidTokenError extends CrowdmeshError {
  readonly reason: 'malformed' | 'bad-signature' | 'expired' | 'wrong-event' | 'wrong-role'
  constructor(reason: InvalidTokenError['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

const claimsSchema = z.object({
  event: z.string().min(1).max(128),
  role: z.enum(['participant', 'operator', 'viewer', 'recorder']),
  exp: z.number().int().positive(),
  jti: z.string().min(1).max(64),
})

/** Longest token accepted: refuse oversized input before any work on it. */
const maxTokenLength = 1024

/**
 * Signs claims as `<base64url(JSON)>.<base64url(HMAC-SHA256)>`: compact enough for a QR code or a
 * URL, verifiable by the signaling server alone, unforgeable without its secret.
 */
export function signJoinToken(claims: JoinClaims, secret: string): string {
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url')
  return `${body}.${mac(body, secret)}`
}

/**
 * Verifies a token and returns its claims. Refuses, with a clear message, a token that is malformed,
 * has a bad signature, is past its expiry, or names another event or role than expected.
 */
export function verifyJoinToken(
  token: string,
  secret: string,
  expect: { event?: string; role?: Role; nowSeconds?: number } = {},
): JoinClaims {
  if (typeof token !== 'string' || token.length > maxTokenLength) {
    throw new InvalidTokenError(
      'malformed',
      'the join link is not a crowdmesh link (token too long or missing)',
    )
  }
  const parts = token.split('.')
  if (parts.length !== 2 || parts[0]!.length === 0 || parts[1]!.length === 0) {
    throw new InvalidTokenError('malformed', 'the join link is damaged: its token has no signature')
  }
  const [body, signature] = parts as [string, string]
  const expected = Buffer.from(mac(body, secret))
  const given = Buffer.from(signature)
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    throw new InvalidTokenError(
      'bad-signature',
      'the join link was not issued by this event server (bad signature)',
    )
  }
  let claims: JoinClaims
  try {
    claims = claimsSchema.parse(JSON.parse(Buffer.from(body, 'base64url').toString('utf8')))
  } catch {
    throw new InvalidTokenError('malformed', 'the join link is damaged: its token cannot be read')
  }
  const now = expect.nowSeconds ?? Math.floor(Date.now() / 1000)
  if (claims.exp <= now) {
    throw new InvalidTokenError(
      'expired',
      `the join link expired at ${new Date(claims.exp * 1000).toISOString()}`,
    )
  }
  if (expect.event !== undefined && claims.event !== expect.event) {
    throw new InvalidTokenError(
      'wrong-event',
      `the join link is for event "${claims.event}", not "${expect.event}"`,
    )
  }
  if (expect.role !== undefined && claims.role !== expect.role) {
    throw new InvalidTokenError('wrong-role', `the join link is for a ${claims.role}, not a ${expect.role}`)
  }
  return claims
}

function mac(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('base64url')
}
