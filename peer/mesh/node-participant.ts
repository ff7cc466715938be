import { nodeWorkerEnv } from '../jobs/node-env.ts'
import { availableParallelism } from 'node:os'
import { joinEvent, type JoinResult, type ParticipantEvent } from './join.ts'
import { releaseWebRTC } from './node-webrtc.ts'
import { CrowdmeshError } from '../protocol/errors.ts'
import { cpuWorkers, type WorkerFactory } from '../participant/job-directory.ts'
import { frameSource } from '../participant/frame-source.ts'

/** Options of a Node participant; each defaults as documented. */
export interface NodeParticipantInit {
  /** The event's join link. */
  link: string
  /** Share of this machine it lends, (0, 1] (default: the scheduler's assumed 0.25). */
  dutyCycle?: number
  /** Cores it states (default: this machine's). */
  cores?: number
  /** Every WebRTC connection through TURN. */
  relayOnly?: boolean
  signal: AbortSignal
  onEvent: (event: ParticipantEvent) => void
  /** Wraps its workers (tests: `lyingWorkers`); not an option of `crowdmesh join`. */
  workers?: (base: WorkerFactory) => WorkerFactory
}

/**
 * A Node participant: joins by the link and computes its leases with the CPU workers until the event
 * ends or `signal` aborts (its unfinished leases then go back to the others). `crowdmesh join` and
 * `ParticipantProcess` (this file run as a script) both run it.
 */
export function runNodeParticipant(init: NodeParticipantInit): Promise<JoinResult> {
  const { capabilities, env } = nodeWorkerEnv()
  return joinEvent({
    link: init.link,
    ...(init.dutyCycle !== undefined && { dutyCycle: init.dutyCycle }),
    cores: init.cores ?? availableParallelism(),
    workers: (init.workers ?? ((base) => base))(cpuWorkers(frameSource(), env)),
    capabilities,
    agent: `crowdmesh-node/${process.version}`,
    ...(init.relayOnly === true && { relayOnly: true }),
    signal: init.signal,
    onEvent: init.onEvent,
  })
}

/*
 * Run as a script, `node peer/mesh/node-participant.ts LINK '{"dutyCycle":1,"cores":1}'`: one
 * JSON line per participant event, then `done`, as `crowdmesh join --json` prints them. SIGINT and
 * SIGTERM leave gracefully; a refusal (a bad link, an ended event) is printed to stderr, exit code 1.
 */
if (process.argv[1] === import.meta.filename) {
  const [link, options] = process.argv.slice(2)
  const controller = new AbortController()
  const leave = () => controller.abort()
  process.once('SIGINT', leave)
  process.once('SIGTERM', leave)
  try {
    const result = await runNodeParticipant({
      link: link ?? '',
      ...(JSON.parse(options ?? '{}') as Omit<NodeParticipantInit, 'link' | 'signal' | 'onEvent'>),
      signal: controller.signal,
      onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
    })
    process.stdout.write(`${JSON.stringify({ type: 'done', ...result })}\n`)
  } catch (error) {
    if (!(error instanceof CrowdmeshError)) throw error
    process.stderr.write(`crowdmesh join: ${error.message}\n`)
    process.exitCode = 1
  } finally {
    // WebRTC's native threads would keep the process alive.
    await releaseWebRTC()
  }
}
