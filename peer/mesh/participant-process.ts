import type { ChildProcess } from 'node:child_process'
import { spawnGuarded } from '../protocol/child-process.ts'
import { EventEmitter } from 'node:events'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { CrowdmeshError } from '../protocol/errors.ts'
import type { ParticipantEvent } from './join.ts'

// Library code runs the participant's own entry, not the CLI in scripts/.
const entry = join(dirname(fileURLToPath(import.meta.url)), 'node-participant.ts')

/** Options of a Node participant run as its own process. */
export interface ParticipantProcessInit {
  dutyCycle?: number
  cores?: number
  relayOnly?: boolean
  /** A command the participant runs under, e.g. `['ip', 'netns', 'exec', 'ns']` for a network namespace. */
  wrapper?: readonly string[]
  /**
   * Another script with the same contract (the link, then options as JSON; JSON lines out): a
   * result writer (`peer/pool/result-writer.ts`).
   */
  entry?: string
  /** Options passed to `entry` as they are. */
  options?: Record<string, unknown>
}

/** One event a participant process printed, with when this process read it. */
export type ReceivedEvent = (ParticipantEvent | { type: 'done'; [key: string]: unknown }) & {
  receivedAt: number
}

/**
 * A Node participant in its own process (`node-participant.ts`, what `crowdmesh join LINK --json` runs), as `start`, `simulate --real`,
 * the tests and the benchmarks run them: its JSON lines come back as events.
 */
export class ParticipantProcess extends EventEmitter<{ event: [ReceivedEvent]; exit: [number | null] }> {
  readonly child: ChildProcess
  readonly events: ReceivedEvent[] = []
  readonly startedAt = performance.now()
  /** What it wrote to stderr (for error messages). */
  stderr = ''
  readonly exited: Promise<number | null>

  constructor(link: string, init: ParticipantProcessInit = {}) {
    super()
    const options = {
      ...init.options,
      ...(init.dutyCycle !== undefined && { dutyCycle: init.dutyCycle }),
      ...(init.cores !== undefined && { cores: init.cores }),
      ...(init.relayOnly === true && { relayOnly: true }),
    }
    const args = [init.entry ?? entry, link, JSON.stringify(options)]
    const [command, ...rest] = [...(init.wrapper ?? []), process.execPath, ...args]
    // Guarded: a local participant ends with the event that started it, even one SIGKILLed.
    this.child = spawnGuarded(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString()).slice(-4000)
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: ReceivedEvent
      try {
        event = { ...(JSON.parse(line) as ParticipantEvent), receivedAt: performance.now() }
      } catch {
        return
      }
      this.events.push(event)
      this.emit('event', event)
    })
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.emit('exit', code)
        resolve(code)
      }),
    )
  }

  /** The first event of `type`, waiting for it if needed. */
  waitFor<T extends ReceivedEvent['type']>(
    type: T,
    timeoutMs = 60_000,
  ): Promise<Extract<ReceivedEvent, { type: T }>> {
    const seen = this.events.find((e) => e.type === type)
    if (seen !== undefined) return Promise.resolve(seen as Extract<ReceivedEvent, { type: T }>)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup()
        reject(new CrowdmeshError(`participant printed no ${type} within ${timeoutMs} ms: ${this.stderr}`))
      }, timeoutMs)
      const onEvent = (event: ReceivedEvent) => {
        if (event.type !== type) return
        cleanup()
        resolve(event as Extract<ReceivedEvent, { type: T }>)
      }
      const onExit = (code: number | null) => {
        cleanup()
        reject(new CrowdmeshError(`participant exited (${code}) before ${type}: ${this.stderr}`))
      }
      const cleanup = () => {
        clearTimeout(timer)
        this.off('event', onEvent)
        this.off('exit', onExit)
      }
      this.on('event', onEvent)
      this.on('exit', onExit)
    })
  }

  /** Ends the process: SIGTERM lets it leave gracefully, SIGKILL is a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode
    this.child.kill(signal)
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs)
    const code = await this.exited
    clearTimeout(timer)
    return code
  }
}
