import { describe, expect, it } from 'vitest'
import { type JoinClaims, signJoinToken, verifyJoinToken } from '../../signaling/join-token.ts'
import { turnCredentials } from '../../relay/turn-credentials.ts'
import { coturnConfig, findTurnserver, privateRanges } from '../../relay/coturn.ts'

const secret = 'event-secret'
const claims: JoinClaims = { event: 'gig', role: 'participant', exp: 2_000_000_000, jti: 'abc' }

const reason = (f: () => unknown) => {
  try {
    f()
  } catch (error) {
    return (error as { reason?: string }).reason
  }
  return 'accepted'
}

describe('join tokens', () => {
  it('round-trip their claims and fit in a URL', () => {
    const token = signJoinToken(claims, secret)
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    expect(verifyJoinToken(token, secret, { event: 'gig', role: 'participant', nowSeconds: 1_000 })).toEqual(
      claims,
    )
  })

  it('refuse a bad signature, a wrong event or role, an expired or malformed token, each with its reason', () => {
    const token = signJoinToken(claims, secret)
    expect(reason(() => verifyJoinToken(token, 'other-secret'))).toBe('bad-signature')
    const [body, signature] = token.split('.') as [string, string]
    const forged = Buffer.from(JSON.stringify({ ...claims, role: 'operator' })).toString('base64url')
    expect(reason(() => verifyJoinToken(`${forged}.${signature}`, secret))).toBe('bad-signature')
    expect(reason(() => verifyJoinToken(token, secret, { event: 'other' }))).toBe('wrong-event')
    expect(reason(() => verifyJoinToken(token, secret, { role: 'operator' }))).toBe('wrong-role')
    expect(reason(() => verifyJoinToken(token, secret, { nowSeconds: 2_000_000_000 }))).toBe('expired')
    expect(reason(() => verifyJoinToken(body, secret))).toBe('malformed')
    expect(reason(() => verifyJoinToken('x'.repeat(5000), secret))).toBe('malformed')
    const junk = Buffer.from('not json').toString('base64url')
    expect(
      reason(() => verifyJoinToken(`${junk}.${signJoinToken(claims, secret).split('.')[1]}`, secret)),
    ).toBe('bad-signature')
  })
})

describe('TURN REST credentials', () => {
  it('follow coturn’s convention: <expiry>:<id> and base64(HMAC-SHA1(secret, username))', () => {
    // Reference computed independently (Python hmac/hashlib) for secret "s3cret".
    const c = turnCredentials('s3cret', 'alice', 600, 1_795_327_235)
    expect(c.username).toBe('1795327835:alice')
    expect(c.credential).toBe('NTq0Yf6cXKOWXYKK5rVrdVYU684=')
    expect(c.expiresAt).toBe(1_795_327_835)
    expect(turnCredentials('s', 'a:b c', 1, 0).username).toBe('1:a_b_c')
  })
})

describe('coturn configuration', () => {
  it('uses the shared secret, denies private peers, and allows loopback only when asked', () => {
    const options = {
      listeningIp: '127.0.0.1',
      port: 3478,
      relayIp: '127.0.0.1',
      minPort: 49160,
      maxPort: 49200,
      realm: 'crowdmesh.test',
      secret: 'x',
      deniedPeerRanges: privateRanges,
      allowLoopbackPeers: false,
      workDir: '/tmp/t',
    }
    const production = coturnConfig(options)
    expect(production).toContain('use-auth-secret\nstatic-auth-secret=x\n')
    expect(production).toContain('denied-peer-ip=10.0.0.0-10.255.255.255')
    expect(production).toContain('denied-peer-ip=127.0.0.0-127.255.255.255')
    expect(production).not.toContain('allow-loopback-peers')
    const test = coturnConfig({ ...options, allowLoopbackPeers: true })
    expect(test).toContain('allow-loopback-peers')
    expect(test).not.toContain('denied-peer-ip=127.')
  })

  it('finds turnserver on PATH, or says it is not there', () => {
    expect(findTurnserver('/nonexistent')).toBeUndefined()
  })
})
