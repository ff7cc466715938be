import { type ChildProcess, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { turnDefaults } from '../../peer/protocol/defaults.ts'
import { CoturnSupervisor, privateRanges } from '../../relay/coturn.ts'
import { stunBinding } from '../../relay/stun-probe.ts'
import { turnCredentials } from '../../relay/turn-credentials.ts'
import { allocate, type AllocateResult } from '../support/turn-allocate.ts'

const port = 34_000 + Math.floor(Math.random() * 2000)
const peerPort = port + 3000
const secret = 'integration-secret'
let turn: CoturnSupervisor
let peer: ChildProcess

/** Runs coturn's own test client through our relay to the echo peer; returns the messages echoed back. */
function uclient(username: string, password: string): Promise<{ received: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      'turnutils_uclient',
      [
        '-p',
        String(port),
        '-u',
        username,
        '-w',
        password,
        '-e',
        '127.0.0.1',
        '-r',
        String(peerPort),
        '-n',
        '5',
        '-m',
        '1',
        '127.0.0.1',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000)
    child.once('close', () => {
      clearTimeout(timer)
      const counts = [...output.matchAll(/tot_recv_msgs=(\d+)/g)].map((m) => Number(m[1]))
      resolve({ received: counts.length > 0 ? Math.max(...counts) : 0, output })
    })
  })
}

beforeAll(async () => {
  turn = new CoturnSupervisor({
    listeningIp: '127.0.0.1',
    port,
    relayIp: '127.0.0.1',
    minPort: port + 100,
    maxPort: port + 140,
    realm: 'crowdmesh.test',
    secret,
    deniedPeerRanges: privateRanges,
    allowLoopbackPeers: true,
  })
  await turn.start()
  peer = spawn('turnutils_peer', ['-p', String(peerPort), '-L', '127.0.0.1'], { stdio: 'ignore' })
  await new Promise((resolve) => setTimeout(resolve, 300))
})

afterAll(async () => {
  peer?.kill()
  await turn?.stop()
  await turn?.stop()
})

/** Allocations for `username` one after the other, each on its own socket, until `count`. */
async function allocations(username: string, password: string, count: number, into: AllocateResult[]) {
  const codes: (number | undefined)[] = []
  for (let i = 0; i < count; i++) {
    const result = await allocate('127.0.0.1', port, username, password)
    into.push(result)
    codes.push(result.errorCode)
  }
  return codes
}

describe('coturn with the project’s credentials', () => {
  it('answers STUN once started', async () => {
    expect(await stunBinding('127.0.0.1', port)).toBe(true)
  })

  it('relays for fresh TURN REST credentials, checked by coturn’s own turnutils_uclient', async () => {
    const c = turnCredentials(secret, 'participant-1', 600)
    const { received, output } = await uclient(c.username, c.credential)
    expect(received, output).toBeGreaterThan(0)
  })

  it('refuses expired credentials and credentials signed with another secret', async () => {
    const expired = turnCredentials(secret, 'late', -60)
    expect((await uclient(expired.username, expired.credential)).received).toBe(0)
    const forged = turnCredentials('not-the-secret', 'mallory', 600)
    const result = await uclient(forged.username, forged.credential)
    expect(result.received).toBe(0)
    expect(result.output).toMatch(/Cannot complete Allocation/)
  })

  it('refuses one username past its quota (486) while another username still gets an allocation', async () => {
    const held: AllocateResult[] = []
    try {
      const hog = turnCredentials(secret, 'hog', 600)
      const quota = turnDefaults.userQuota
      const codes = await allocations(hog.username, hog.credential, quota + 1, held)
      expect(codes.slice(0, quota)).toEqual(Array(quota).fill(undefined))
      expect(codes[quota]).toBe(486)
      // coturn counts the id after the expiry: a fresh credential for the same id gets no fresh quota.
      const again = turnCredentials(secret, 'hog', 900)
      expect(await allocations(again.username, again.credential, 1, held)).toEqual([486])
      const neighbour = turnCredentials(secret, 'neighbour', 600)
      expect(await allocations(neighbour.username, neighbour.credential, 1, held)).toEqual([undefined])
    } finally {
      await Promise.all(held.map((a) => a.release()))
    }
  })

  it('refuses past the whole server’s quota (486) before its relay ports run out (508)', async () => {
    const small = new CoturnSupervisor({
      ...turn.options,
      port: port + 500,
      minPort: port + 600,
      maxPort: port + 604,
    })
    await small.start()
    const held: AllocateResult[] = []
    try {
      const codes: (number | undefined)[] = []
      for (let i = 0; i < 6; i++) {
        const c = turnCredentials(secret, `guest-${i}`, 600)
        const result = await allocate('127.0.0.1', port + 500, c.username, c.credential)
        held.push(result)
        codes.push(result.errorCode)
      }
      expect(codes).toEqual([undefined, undefined, undefined, undefined, undefined, 486])
    } finally {
      await Promise.all(held.map((a) => a.release()))
      await small.stop()
    }
  })

  it('is restarted when it dies, and relays again', async () => {
    const restarted = new Promise<void>((resolve) => turn.once('ready', () => resolve()))
    process.kill(turn.pid!, 'SIGKILL')
    await restarted
    expect(await stunBinding('127.0.0.1', port)).toBe(true)
    const c = turnCredentials(secret, 'participant-2', 600)
    expect((await uclient(c.username, c.credential)).received).toBeGreaterThan(0)
  })
})
