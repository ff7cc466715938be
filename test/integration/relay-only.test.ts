import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FrameOutcome } from '../../peer/jobs/vertex/outcome.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { datasetJob, runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { type RunningEvent, startEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { templeDir } from '../support/fixtures.ts'

/*
 * Direct WebRTC blocked, so the only path is TURN. node-datachannel (libjuice) does not enforce ICE
 * relay-only on its own: its connectivity checks still pair host candidates (we saw coturn grant the
 * allocation and then carry nothing). So the test blocks the direct path for real: the participant
 * runs in its own network namespace, joined to this one by a veth pair; the event listens on the
 * veth's address, but the coordinator's WebRTC binds to loopback and coturn relays from loopback.
 * The participant can reach the signaling server, the circuit relay and coturn — and the
 * coordinator's WebRTC only through coturn.
 */

const grid = 32
const tag = process.pid % 10_000
const namespace = `cmns${tag}`
const outside = `cmo${tag}`
const inside = `cmi${tag}`
const subnet = `10.231.${tag % 250}`
let dataset: MultiViewDataset
let event: RunningEvent<FrameOutcome>
let reference: FrameOutcome
let participant: ParticipantProcess | undefined

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

beforeAll(async () => {
  ip('netns', 'add', namespace)
  ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside)
  ip('link', 'set', inside, 'netns', namespace)
  ip('addr', 'add', `${subnet}.1/30`, 'dev', outside)
  ip('link', 'set', outside, 'up')
  ip('netns', 'exec', namespace, 'ip', 'addr', 'add', `${subnet}.2/30`, 'dev', inside)
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', inside, 'up')
  ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up')
  dataset = await loadMiddlebury(templeDir)
  reference = (await runLocalJob({ dataset, grid, participants: 2 })).outcome
  event = await startEvent({
    coordinator: { jobs: [vertexJobInit(datasetJob(dataset, grid))] },
    host: `${subnet}.1`,
    turn: 'required',
    turnRelayIp: '127.0.0.1',
    coordinatorIceBindAddress: '127.0.0.1',
  })
}, 60_000)

afterAll(async () => {
  await participant?.stop('SIGKILL')
  await event?.stop()
  try {
    ip('link', 'del', outside)
  } catch {
    // gone with the namespace
  }
  ip('netns', 'del', namespace)
})

describe('a participant whose direct path to the coordinator is blocked', () => {
  it('connects through coturn (ICE relay-only) and its blocks complete, colours identical to in-process', async () => {
    participant = new ParticipantProcess(event.joinLink, {
      dutyCycle: 1,
      cores: 1,
      relayOnly: true,
      wrapper: ['ip', 'netns', 'exec', namespace],
    })
    const bootstrap = await participant.waitFor('bootstrap')
    expect(bootstrap.turn).toBe(true)
    await participant.waitFor('connected', 45_000)
    const complete = new Promise<FrameOutcome>((resolve) => event.coordinator.once('frameComplete', resolve))
    for (const frame of dataset.frames) event.addFrame(frame)
    const outcome = await complete
    expect(outcome.coloured).toBe(reference.coloured)
    expect(Buffer.compare(outcome.colour, reference.colour)).toBe(0)
    // Every thread came from the participant in the namespace: it is the only one.
    const rows = event.coordinator.statistics().participants.filter((p) => p.threadsProcessed > 0)
    expect(rows).toHaveLength(1)
    expect(rows[0]!.threadsProcessed).toBe(grid ** 3 * dataset.cameras.length)
    // coturn's own log: the participant's TURN session relayed to a peer (a permission was created).
    expect(event.turn!.recentOutput).toMatch(
      /CREATE_PERMISSION processed, success|CHANNEL_BIND processed, success/,
    )
  }, 120_000)
})
