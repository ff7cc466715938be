/*
 * The event under fuzz, in a process of its own: the same parts `crowdmesh start` runs (signaling,
 * coturn when installed, the circuit relay, the coordinator and its host, the frame store, the
 * server peer for recordings), with frames queued one after another for as long as it runs, so a
 * participant keeps completing frames while strangers attack. Its parent talks to it over IPC:
 * `ready` once it serves, `diagnostics` on request (heap after a full collection, open file
 * descriptors, child processes, frames completed). It ends when its parent disconnects.
 *
 * Run as `node --expose-gc scripts/fuzz/event-process.ts '{"root":"…","grid":16}'` with an IPC channel.
 */
import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { readdirSync, readFileSync } from 'node:fs'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { startEvent } from '../../peer/mesh/event.ts'
import { eventTopics } from '../../peer/mesh/gossip.ts'
import { MatchPool } from '../../peer/pool/match-pool.ts'
import { eventResultsPublisher, resultTopics } from '../../peer/pool/results-gossip.ts'
import { startDashboard } from '../../peer/pool/runs-dashboard.ts'
import { SqliteTaskPool } from '../../peer/pool/task-pool.ts'
import { systemClock } from '../../peer/protocol/clock.ts'
import { logger } from '../../peer/protocol/logger.ts'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { resolveDataset } from '../options.ts'

/** What the event process tells its parent once it serves. */
export interface FuzzEventReady {
  type: 'ready'
  pid: number
  event: string
  joinLinks: Record<string, string>
  signaling: string
  frameStore: string
  recordings: string
  /** The runs dashboard (its origin) and its key. */
  dashboard: string
  dashboardKey: string
  /** The operator's console link (`/console/<event>/<operator token>`). */
  consoleLink: string
  relayAddrs: string[]
  coordinatorPeerId: string
  topics: string[]
}

/** The event process's resources at one moment. */
export interface FuzzDiagnostics {
  type: 'diagnostics'
  /** V8 heap in use after a full collection, bytes. */
  heapUsed: number
  /** Open file descriptors (sockets, files, pipes). */
  fds: number
  /** Live child processes (coturn, ffmpeg). */
  children: number
  framesCompleted: number
  participants: number
  /** Match results waiting for a result writer's acknowledgement. */
  outbox: number
}

/** Child processes of `pid` now, from /proc. */
export function childrenOf(pid: number): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // Field 4 is the parent's pid; the command name (field 2) may hold spaces, so split after it.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid === pid) children.push(Number(entry))
    } catch {
      // gone meanwhile
    }
  }
  return children
}

if (process.argv[1] === import.meta.filename) {
  const init = JSON.parse(process.argv[2] ?? '{}') as { root: string; grid?: number; dataset?: string }
  const dataset = await resolveDataset(init.dataset, undefined, () => {})
  const job = datasetJob(dataset, init.grid ?? 16)
  const event = await startEvent({ coordinator: { jobs: [vertexJobInit(job)] }, name: 'fuzz' })
  // Processing of a recording whose bytes stopped is reaped after 5 s rather than 2 min, so the
  // fuzz run's leak check sees its ffmpeg processes end within its settling time.
  const recordings = await startRecordingServer({
    root: init.root,
    eventLink: event.joinLinks.operator!,
    sharesWebRTC: true,
    limits: { processingIdleMs: 5_000 },
  })
  await recordings.rtc?.registered()
  // Match runs' parts that strangers can reach: the results topics (the coordinator publishes, only
  // operator peers acknowledge) and the runs dashboard, over a pool of one queued run.
  const pool = new SqliteTaskPool({ path: ':memory:' })
  pool.add(
    [
      { id: 'fuzz/m/0', run: 'fuzz', kind: 'video-match', payload: '{}' },
      { id: 'fuzz/fp/0', run: 'fuzz', kind: 'video-fingerprint', payload: '{}' },
    ],
    0,
  )
  // One result waits in the outbox for a writer that never comes: no stranger may acknowledge it.
  pool.complete(pool.grant({ worker: 'fuzz', kinds: ['video-match'], now: 0 })!.lease, 0, '{"matches":[]}')
  const matchPool = new MatchPool({ pool, root: init.root, publish: (url) => url, clock: systemClock })
  const publisher = eventResultsPublisher(event, pool, logger('crowdmesh:fuzz:results'))
  publisher.start()
  const dashboard = await startDashboard({
    pool: matchPool,
    participants: () => event.host.participants,
    written: () => new Map(),
    unwritten: () => pool.unwritten(),
  })

  // One frame at a time, a new one shortly after each completes, until the parent goes.
  let next = 0
  let stopping = false
  const queueFrame = () => {
    if (stopping) return
    const index = next++
    for (const frame of dataset.frames) event.addFrame({ ...frame, index })
  }
  event.coordinator.on('frameComplete', () => setTimeout(queueFrame, 250))
  queueFrame()

  const stop = async () => {
    if (stopping) return
    stopping = true
    await dashboard.close()
    publisher.stop()
    await recordings.close()
    await event.stop()
    pool.close()
    process.exit(0)
  }
  process.on('disconnect', () => void stop())
  process.on('SIGTERM', () => void stop())
  process.on('message', (message: { type?: string }) => {
    if (message.type !== 'diagnostics') return
    ;(globalThis as { gc?: () => void }).gc?.()
    const stats = event.coordinator.statistics()
    const reply: FuzzDiagnostics = {
      type: 'diagnostics',
      heapUsed: process.memoryUsage().heapUsed,
      fds: readdirSync('/proc/self/fd').length,
      children: childrenOf(process.pid).length,
      framesCompleted: stats.framesCompleted,
      participants: event.host.participants,
      outbox: pool.unwritten(),
    }
    process.send?.(reply)
  })
  const ready: FuzzEventReady = {
    type: 'ready',
    pid: process.pid,
    event: event.event,
    joinLinks: event.joinLinks,
    signaling: event.signaling.url,
    frameStore: event.frames.url,
    recordings: recordings.url,
    dashboard: new URL(dashboard.url).origin,
    dashboardKey: new URL(dashboard.url).searchParams.get('key')!,
    consoleLink: event.consoleLink,
    relayAddrs: event.relay.getMultiaddrs().map(String),
    coordinatorPeerId: event.node.peerId.toString(),
    topics: [...Object.values(eventTopics(event.event)), ...Object.values(resultTopics(event.event))],
  }
  process.send?.(ready)
}
