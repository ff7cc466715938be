import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { type SignalingServer, startSignaling } from '../../signaling/server.ts'
import { signJoinToken } from '../../signaling/join-token.ts'

let server: SignalingServer

beforeAll(async () => {
  server = await startSignaling({
    tokenSecret: 'test-secret',
    operatorKey: 'operator-key',
    maxSignalBytes: 4096,
    maxSignalsPerSecond: 20,
    ice: {
      stunUrls: ['stun:127.0.0.1:3478'],
      turnUrls: ['turn:127.0.0.1:3478?transport=udp'],
      turnSecret: 'turn-secret',
      ttlSeconds: 600,
    },
  })
})
afterAll(async () => {
  await server.close()
  await server.close()
})

const api = (path: string, init: RequestInit = {}) => fetch(`${server.url}${path}`, init)
const operator = { authorization: 'Bearer operator-key', 'content-type': 'application/json' }

async function newEvent() {
  const response = await api('/api/events', {
    method: 'POST',
    headers: operator,
    body: JSON.stringify({ name: 'gig' }),
  })
  expect(response.status).toBe(201)
  return (await response.json()) as { event: string; joinLinks: Record<string, string> }
}

function tokenOf(link: string): string {
  return link.split('/').at(-1)!
}

function open(token: string): Promise<{ ws: WebSocket; messages: unknown[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/signal?token=${token}`)
    const messages: unknown[] = []
    ws.on('message', (data) => messages.push(JSON.parse((data as Buffer).toString('utf8'))))
    ws.once('open', () => resolve({ ws, messages }))
    ws.once('error', reject)
  })
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 20))
  expect(check()).toBe(true)
}

describe('signaling server', () => {
  it('creates events for the operator only, with signed join links per role', async () => {
    expect((await api('/api/events', { method: 'POST', body: '{}' })).status).toBe(401)
    expect(
      (
        await api('/api/events', {
          method: 'POST',
          headers: { ...operator, authorization: 'Bearer nope' },
          body: '{}',
        })
      ).status,
    ).toBe(401)
    const bad = await api('/api/events', {
      method: 'POST',
      headers: operator,
      body: JSON.stringify({ ttlSeconds: 5 }),
    })
    expect(bad.status).toBe(400)
    expect(((await bad.json()) as { error: string }).error).toMatch(/ttlSeconds/)
    expect(
      (await api('/api/events', { method: 'POST', headers: operator, body: 'x'.repeat(20_000) })).status,
    ).toBe(413)
    const { event, joinLinks } = await newEvent()
    expect(Object.keys(joinLinks).sort()).toEqual(['operator', 'participant', 'recorder', 'viewer'])
    expect(joinLinks.participant).toMatch(new RegExp(`^${server.url}/join/${event}/`))
  })

  it('serves the app at a good link and refuses a bad signature, another event’s link or an expired one, saying why', async () => {
    const { event, joinLinks } = await newEvent()
    const good = await api(new URL(joinLinks.participant!).pathname)
    expect(good.status).toBe(200)
    expect(await good.text()).toMatch(/as a participant/)
    const token = tokenOf(joinLinks.participant!)
    const tampered = await api(`/join/${event}/${token.slice(0, -2)}xx`)
    expect(tampered.status).toBe(403)
    expect(await tampered.text()).toMatch(/bad signature/)
    const other = await newEvent()
    const wrong = await api(`/join/${other.event}/${token}`)
    expect(wrong.status).toBe(403)
    expect(await wrong.text()).toMatch(new RegExp(`for event &#34;${event}&#34;`))
    const expired = signJoinToken({ event, role: 'participant', exp: 1000, jti: 'old' }, 'test-secret')
    const late = await api(`/join/${event}/${expired}`)
    expect(late.status).toBe(403)
    expect(await late.text()).toMatch(/expired/)
  })

  it('bootstraps a joining peer: coordinator, relay addresses and ephemeral TURN credentials', async () => {
    const { event, joinLinks } = await newEvent()
    const put = await api(`/api/events/${event}/bootstrap`, {
      method: 'PUT',
      headers: operator,
      body: JSON.stringify({
        coordinatorPeerId: '12D3KooWcoord',
        relayAddrs: ['/ip4/127.0.0.1/tcp/9000/ws/p2p/12D3KooWrelay'],
      }),
    })
    expect(put.status).toBe(204)
    const response = await api(`/api/bootstrap?token=${tokenOf(joinLinks.participant!)}`)
    expect(response.status).toBe(200)
    const bootstrap = (await response.json()) as {
      coordinatorPeerId: string
      relayAddrs: string[]
      iceServers: { urls: string[]; username?: string; credential?: string }[]
    }
    expect(bootstrap.coordinatorPeerId).toBe('12D3KooWcoord')
    expect(bootstrap.relayAddrs).toHaveLength(1)
    const turn = bootstrap.iceServers.find((s) => s.username !== undefined)!
    expect(turn.username).toMatch(/^\d+:[\w-]+$/)
    expect(Number(turn.username!.split(':')[0])).toBeGreaterThan(Date.now() / 1000)
    expect((await api('/api/bootstrap?token=garbage')).status).toBe(400)
  })

  it('relays SDP between two peers of an event, refuses bad tokens, and closes only a peer that misbehaves', async () => {
    const { joinLinks } = await newEvent()
    const a = await open(tokenOf(joinLinks.participant!))
    const b = await open(tokenOf(joinLinks.recorder!))
    await until(() => a.messages.length > 0 && b.messages.length > 0)
    const bId = (b.messages[0] as { peer: string }).peer
    const aId = (a.messages[0] as { peer: string }).peer
    a.ws.send(JSON.stringify({ to: bId, data: { type: 'offer', sdp: 'v=0' } }))
    await until(() => b.messages.length > 1)
    expect(b.messages[1]).toEqual({ type: 'signal', from: aId, data: { type: 'offer', sdp: 'v=0' } })
    // Malformed: an error back, connection kept.
    a.ws.send('not json')
    await until(() => a.messages.some((m) => (m as { type: string }).type === 'error'))
    expect(a.ws.readyState).toBe(WebSocket.OPEN)
    // Oversized: that peer is closed (1009); the other keeps working.
    const closed = new Promise<number>((resolve) => a.ws.once('close', (code) => resolve(code)))
    a.ws.send(JSON.stringify({ to: bId, data: 'x'.repeat(10_000) }))
    expect(await closed).toBe(1009)
    const c = await open(tokenOf(joinLinks.viewer!))
    await until(() => c.messages.length > 0)
    c.ws.send(JSON.stringify({ to: bId, data: 'still here' }))
    await until(() => b.messages.some((m) => (m as { data?: unknown }).data === 'still here'))
    // Flooding: cut off past the rate limit.
    const flooded = new Promise<number>((resolve) => c.ws.once('close', (code) => resolve(code)))
    for (let i = 0; i < 40; i++) c.ws.send(JSON.stringify({ to: bId, data: i }))
    expect(await flooded).toBe(4429)
    b.ws.close()
    await expect(open('bad.token')).rejects.toThrow(/403|Unexpected server response/)
  })

  it('reports health and Prometheus metrics', async () => {
    const health = (await (await api('/health')).json()) as { status: string; events: number }
    expect(health.status).toBe('ok')
    expect(health.events).toBeGreaterThan(0)
    const metrics = await (await api('/metrics')).text()
    expect(metrics).toMatch(/^# TYPE crowdmesh_signaling_events_created_total counter$/m)
    expect(metrics).toMatch(/^crowdmesh_signaling_joins_total\{result="refused"\} \d+$/m)
    expect(metrics).toMatch(/^crowdmesh_signaling_events \d+$/m)
    expect((await api('/nowhere')).status).toBe(404)
  })
})
