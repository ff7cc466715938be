import { connect } from 'node:net'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { type SignalingServer, startSignaling } from '../../signaling/server.ts'
import { type FrameStore, startFrameStore } from '../../peer/mesh/frame-store.ts'

// Regression tests of issue 12's attacks on the signaling server and the frame store, in this
// process: an attack that used to crash the process now fails the run as an unhandled error.

let server: SignalingServer
let frames: FrameStore
let appDir: string

beforeAll(async () => {
  appDir = await mkdtemp(join(tmpdir(), 'crowdmesh-app-'))
  await mkdir(join(appDir, 'assets'))
  await writeFile(join(appDir, 'index.html'), '<!doctype html><title>app</title>')
  await writeFile(join(appDir, 'record.html'), '<!doctype html><title>recorder</title>')
  await writeFile(join(appDir, 'assets', 'a.js'), 'export {}')
  server = await startSignaling({
    tokenSecret: 'test-secret',
    operatorKey: 'operator-key',
    maxPeersPerLink: 3,
    webAppDir: appDir,
  })
  frames = await startFrameStore()
})
afterAll(async () => {
  await server.close()
  await frames.close()
  await rm(appDir, { recursive: true, force: true })
})

async function newEvent() {
  const response = await fetch(`${server.url}/api/events`, {
    method: 'POST',
    headers: { authorization: 'Bearer operator-key', 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'gig' }),
  })
  expect(response.status).toBe(201)
  return (await response.json()) as { event: string; joinLinks: Record<string, string> }
}

const tokenOf = (link: string) => link.split('/').at(-1)!

interface Peer {
  ws: WebSocket
  messages: { type: string; peer?: string; from?: string; error?: string; data?: unknown }[]
  closed: Promise<number>
}

function open(token: string): Promise<Peer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/signal?token=${token}`)
    const messages: Peer['messages'] = []
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)))
    ws.on('message', (data) => messages.push(JSON.parse((data as Buffer).toString('utf8'))))
    ws.once('open', () => resolve({ ws, messages, closed }))
    ws.once('error', reject)
  })
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10))
  expect(check()).toBe(true)
}

/** Sends raw bytes and collects the answer until the server closes the connection. */
function raw(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(request))
    let answer = ''
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')))
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
}

describe('the signaling server and frame store under hostile input', () => {
  it('answers a request for the path //a:b with 400 instead of crashing (HTTP and upgrade)', async () => {
    for (const url of [server.url, frames.url]) {
      const get = await raw(url, 'GET //a:b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
      expect(get).toMatch(/^HTTP\/1\.1 (400|404) /)
      const upgrade = await raw(
        url,
        'GET //a:b HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n' +
          'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
      )
      expect(upgrade).toMatch(/^HTTP\/1\.1 (400|404) /)
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200)
  })

  it('refuses a signaling message nested 10,000 deep with a clear error, and keeps relaying', async () => {
    const { joinLinks } = await newEvent()
    const a = await open(tokenOf(joinLinks.participant!))
    const b = await open(tokenOf(joinLinks.participant!))
    await until(() => a.messages.length > 0 && b.messages.length > 0)
    const nested = '['.repeat(10_000) + ']'.repeat(10_000)
    a.ws.send(`{"to":"${b.messages[0]!.peer}","data":${nested}}`)
    await until(() => a.messages.some((m) => m.type === 'error'))
    expect(a.messages.find((m) => m.type === 'error')!.error).toMatch(/deeper than/)
    a.ws.send(JSON.stringify({ to: b.messages[0]!.peer, data: { sdp: 'hello' } }))
    await until(() => b.messages.some((m) => m.type === 'signal'))
    expect(b.messages.find((m) => m.type === 'signal')!.data).toEqual({ sdp: 'hello' })
    a.ws.close()
    b.ws.close()
  })

  it('gives every connection its own peer id, so two people can use one link at once', async () => {
    const { joinLinks } = await newEvent()
    const token = tokenOf(joinLinks.recorder!)
    const first = await open(token)
    const second = await open(token)
    await until(() => first.messages.length > 0 && second.messages.length > 0)
    const [one, two] = [first.messages[0]!.peer!, second.messages[0]!.peer!]
    expect(one).not.toBe(two)
    // Neither replaced the other: both are still open and can signal each other.
    second.ws.send(JSON.stringify({ to: one, data: 'offer' }))
    await until(() => first.messages.some((m) => m.type === 'signal'))
    expect(first.messages.find((m) => m.type === 'signal')!.from).toBe(two)
    expect(first.ws.readyState).toBe(WebSocket.OPEN)
    // Each bootstrap names a joiner of its own (its TURN username too).
    const bootstrap = async () =>
      ((await (await fetch(`${server.url}/api/bootstrap?token=${token}`)).json()) as { peer: string }).peer
    expect(await bootstrap()).not.toBe(await bootstrap())
    first.ws.close()
    second.ws.close()
  })

  it('holds a bounded number of connections per link (429 past it)', async () => {
    const { joinLinks } = await newEvent()
    const token = tokenOf(joinLinks.participant!)
    const peers = [await open(token), await open(token), await open(token)]
    const refused = await raw(
      server.url,
      `GET /signal?token=${token} HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n` +
        'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    )
    expect(refused).toMatch(/^HTTP\/1\.1 429 /)
    // A place frees when one leaves.
    peers[0]!.ws.close()
    await peers[0]!.closed
    await until(() => true)
    const again = await open(token)
    expect(again.ws.readyState).toBe(WebSocket.OPEN)
    for (const peer of [...peers, again]) peer.ws.close()
  })

  it('answers a malformed escape under /app/ with 404, and serves pages with nosniff and a CSP', async () => {
    const bad = await fetch(`${server.url}/app/%E0%A4%A`)
    expect(bad.status).toBe(404)
    const script = await fetch(`${server.url}/app/assets/a.js`)
    expect(script.status).toBe(200)
    expect(script.headers.get('x-content-type-options')).toBe('nosniff')
    const { joinLinks } = await newEvent()
    const page = await fetch(joinLinks.participant!)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/)
    expect(page.headers.get('x-content-type-options')).toBe('nosniff')
    const refused = await fetch(`${server.url}/join/nope/bad.token`)
    expect(refused.headers.get('content-security-policy')).toMatch(/default-src 'none'/)
  })

  it('refuses an oversized or deeply nested request body with 413 or 400', async () => {
    const post = (body: string) =>
      fetch(`${server.url}/api/events`, {
        method: 'POST',
        headers: { authorization: 'Bearer operator-key', 'content-type': 'application/json' },
        body,
      })
    expect((await post('x'.repeat(100_000))).status).toBe(413)
    const deep = await post('{"name":' + '['.repeat(5000) + ']'.repeat(5000) + '}')
    expect(deep.status).toBe(400)
    expect(((await deep.json()) as { error: string }).error).toMatch(/deeper than/)
  })

  it('closes a signaling peer that stopped answering pings, and frees its place', async () => {
    const quick = await startSignaling({ tokenSecret: 's', operatorKey: 'k', heartbeatMs: 100 })
    try {
      const created = (await (
        await fetch(`${quick.url}/api/events`, {
          method: 'POST',
          headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
          body: '{}',
        })
      ).json()) as { joinLinks: Record<string, string> }
      const url = `${quick.url.replace('http', 'ws')}/signal?token=${tokenOf(created.joinLinks.participant!)}`
      // A vanished phone: its socket stays open but nothing answers.
      const silent = new WebSocket(url, { autoPong: false })
      const answering = new WebSocket(url)
      const silentClosed = new Promise<number>((r) => silent.once('close', (code) => r(code)))
      await new Promise((r) => answering.once('open', r))
      const started = performance.now()
      expect(await silentClosed).toBe(1006)
      expect(performance.now() - started).toBeLessThan(2000)
      await new Promise((r) => setTimeout(r, 300))
      expect(answering.readyState).toBe(WebSocket.OPEN)
      answering.close()
    } finally {
      await quick.close()
    }
  })

  it('drops a peer that does not read its socket instead of buffering for it', async () => {
    const { joinLinks } = await newEvent()
    const token = tokenOf(joinLinks.operator!)
    const reader = await open(token)
    const sender = await open(token)
    await until(() => reader.messages.length > 0 && sender.messages.length > 0)
    const target = reader.messages[0]!.peer!
    // The reader stops reading: its socket's buffers fill, then the server's send buffer.
    ;(reader.ws as unknown as { _socket: { pause(): void } })._socket.pause()
    const payload = JSON.stringify({ to: target, data: 'x'.repeat(60_000) })
    const peers = async () =>
      ((await (await fetch(`${server.url}/health`)).json()) as { signalingPeers: number }).signalingPeers
    const before = await peers()
    const deadline = performance.now() + 20_000
    // 40 messages a second stays under the rate limit (50): only the slow reader is at fault.
    while (performance.now() < deadline && sender.messages.every((m) => m.type !== 'error')) {
      sender.ws.send(payload)
      await new Promise((r) => setTimeout(r, 25))
    }
    expect(sender.messages.find((m) => m.type === 'error')?.error).toMatch(/is not connected/)
    expect(await peers()).toBe(before - 1)
    expect(sender.ws.readyState).toBe(WebSocket.OPEN)
    sender.ws.close()
    reader.ws.terminate()
  }, 30_000)
})
