import type { ParticipantEvent } from '../../peer/mesh/join.ts'
import { runNodeParticipant } from '../../peer/mesh/node-participant.ts'
import { parseCommandWithPositionals, stringOption } from '../options.ts'

const help = `Usage: crowdmesh join LINK [options]

Joins a running event as a Node participant: opens the join link (the signaling server hands over the
relay, the coordinator's peer id and STUN/TURN servers), connects to the coordinator over WebRTC
through the relay, and colours the blocks it is leased with the CPU worker until the event ends or
you press Ctrl-C (its unfinished blocks then go back to the others).

Options:
  --duty-cycle X   share of this machine it lends, (0, 1]                        [default: 0.25]
  --cores N        cores it states to the coordinator                       [default: this machine's]
  --relay-only     every WebRTC connection through TURN (ICE relay-only)
  --json           print one JSON object per line: bootstrap, connected, welcome, firstLease,
                   outcome, status, disconnected, done
  -h, --help       show this help
`

/** `crowdmesh join LINK`. */
export async function joinCommand(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(
    args,
    {
      'duty-cycle': { type: 'string' },
      cores: { type: 'string' },
      'relay-only': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    help,
    1,
  )
  if (parsed === undefined) return
  const { values, positionals } = parsed
  const json = values.json === true
  const dutyText = stringOption(values, 'duty-cycle')
  const dutyCycle = dutyText === undefined ? undefined : Number(dutyText)
  if (dutyCycle !== undefined && !(dutyCycle > 0 && dutyCycle <= 1)) {
    const { UsageError } = await import('../options.ts')
    throw new UsageError(`--duty-cycle must be in (0, 1], got "${dutyText}"`)
  }
  const coresText = stringOption(values, 'cores')
  const controller = new AbortController()
  const leave = () => controller.abort()
  process.once('SIGINT', leave)
  process.once('SIGTERM', leave)
  const print = (event: ParticipantEvent | Record<string, unknown>) => {
    if (json) process.stdout.write(`${JSON.stringify(event)}\n`)
    else process.stdout.write(`${describe(event as ParticipantEvent)}\n`)
  }
  try {
    const result = await runNodeParticipant({
      link: positionals[0]!,
      ...(dutyCycle !== undefined && { dutyCycle }),
      ...(coresText !== undefined && { cores: Number(coresText) }),
      ...(values['relay-only'] === true && { relayOnly: true }),
      signal: controller.signal,
      onEvent: (event) => {
        // Status arrives every two seconds: only --json readers want all of it.
        if (event.type !== 'status' || json) print(event)
      },
    })
    print({ type: 'done', ...result })
  } finally {
    process.off('SIGINT', leave)
    process.off('SIGTERM', leave)
  }
}

function describe(event: ParticipantEvent): string {
  switch (event.type) {
    case 'bootstrap':
      return `joined event ${event.event}; coordinator ${event.coordinatorPeerId.slice(-8)}${event.turn ? ' (TURN available)' : ''}`
    case 'connected':
      return `connected to the coordinator in ${event.ms} ms over ${event.remoteAddr.includes('/webrtc') ? 'WebRTC' : event.remoteAddr}`
    case 'welcome':
      return `computing for job ${event.jobId}`
    case 'firstLease':
      return `first block ${event.ms} ms after joining`
    case 'outcome':
      return event.kind === 'vertex'
        ? `frame ${event.frameIndex} decided: ${event.items} vertices coloured`
        : `${event.jobId}: round ${event.frameIndex} done (${event.items} ${event.kind} items)`
    case 'status':
      return `status: ${event.status.framesCompleted} frames done, ${event.status.participants} participants`
    case 'disconnected':
      return `disconnected: ${event.reason}${event.willRetry ? ' (reconnecting)' : ''}`
    default: {
      const done = event as unknown as { blocksDone: number; threadsDone: number; ended: string }
      return `done: ${done.blocksDone} blocks, ${done.threadsDone} threads (${done.ended})`
    }
  }
}
