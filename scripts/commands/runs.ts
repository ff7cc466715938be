import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { matchDefaults } from '../../peer/jobs/match/defaults.ts'
import { startEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { MatchPool, type RunProgress } from '../../peer/pool/match-pool.ts'
import { eventResultsPublisher, type ResultsPublisher } from '../../peer/pool/results-gossip.ts'
import { ResultsStore } from '../../peer/pool/results-store.ts'
import { defineRun, extendRun, runDefaults } from '../../peer/pool/run-definition.ts'
import { SqliteTaskPool } from '../../peer/pool/task-pool.ts'
import { systemClock } from '../../peer/protocol/clock.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { logger } from '../../peer/protocol/logger.ts'
import {
  countOption,
  parseCommand,
  parseCommandWithPositionals,
  positiveInt,
  stringOption,
  UsageError,
} from '../options.ts'
import { type ProcessEnding, processEnding } from '../process-ending.ts'
import { progressBar } from '../progress.ts'
import { startDashboard } from '../../peer/pool/runs-dashboard.ts'
import { videosIn } from './match.ts'
import { simulateRun } from './runs-simulate.ts'

const writerEntry = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'peer',
  'pool',
  'result-writer.ts',
)

const help = `Usage: crowdmesh runs COMMAND [options]

Match runs at scale: runs kept in a durable task pool (SQLite) in a workspace folder, served to the
crowd by a coordinator that can be killed and restarted without losing or repeating work, their
results written by result-writer processes into a results store.

Commands:
  create NAME --ugc DIR --refs DIR   define a run (its videos are probed now)
  extend NAME [--ugc DIR] [--refs DIR]
                                     add videos to a run, served or not
  serve                              run the event: every run of the workspace, to the end
  status                             every run's progress
  priority NAME N                    change a run's priority (higher first)
  simulate                           a match run at scale in virtual time (no videos needed)

Run crowdmesh runs COMMAND --help for its options.
`

const createHelp = `Usage: crowdmesh runs create NAME --ugc DIR --refs DIR [options]

Defines a match run in the workspace: every video is probed (one that is not a video is reported and
left out), the run's definition written to runs/NAME/run.json. The tasks join the pool when the
workspace is served. NAME: lower-case letters, digits and dashes.

Options:
  --ugc DIR          the user videos to search                                          [required]
  --refs DIR         the reference videos                                               [required]
  --workspace DIR    the workspace                                     [default: out/match-runs]
  --priority N       higher runs go first (-1000 to 1000)                            [default: ${runDefaults.priority}]
  --shard-size N     references per shard (a participant's snapshot)                [default: ${runDefaults.shardSize}]
  --threshold BITS   most differing bits (of 800) for two fingerprints to agree     [default: ${matchDefaults.maxHammingBits}]
  --json             print the run's definition as JSON
  -h, --help         show this help
`

const extendHelp = `Usage: crowdmesh runs extend NAME [--ugc DIR] [--refs DIR] [options]

Adds videos to a run, while it is served or not: the new ones (by path) are probed and appended to
its definition; a coordinator serving the workspace picks them up within seconds. New user videos
are matched against every reference; new references form new shards, matched against every user
video. What the run has done stays done.

Options:
  --ugc DIR          user videos to add
  --refs DIR         references to add
  --workspace DIR    the workspace                                     [default: out/match-runs]
  --json             print { added, entries } as JSON
  -h, --help         show this help
`

const serveHelp = `Usage: crowdmesh runs serve [options]

Serves every run of the workspace to the crowd: an event (signaling, relay, coordinator), local
Node participant processes, and result-writer processes on the operator's link. Tasks come from the
pool; a run restarted after a crash (kill -9 included) resumes where the pool left it. Ends when
every run is done and every result written, unless --keep.

Options:
  --workspace DIR     the workspace                                     [default: out/match-runs]
  --participants N    local Node participant processes (0: none)                  [default: 2]
  --writers N         result-writer processes                                     [default: 1]
  --dashboard PORT    serve the runs dashboard on 127.0.0.1:PORT (0: any port)
  --keep              keep serving after every run is done
  --json              print one JSON line per second of progress, then a summary
  -h, --help          show this help
`

const statusHelp = `Usage: crowdmesh runs status [options]

Prints every run's progress from the workspace's pool (safe while it is served).

Options:
  --workspace DIR    the workspace                                     [default: out/match-runs]
  --json             print { runs: [{ run, priority, fingerprints, matches, finished }], results }
  -h, --help         show this help
`

const priorityHelp = `Usage: crowdmesh runs priority NAME N [options]

Changes a run's priority: its tasks not yet granted go ahead of (or behind) other runs' (safe while
the workspace is served).

Options:
  --workspace DIR    the workspace                                     [default: out/match-runs]
  -h, --help         show this help
`

/** `crowdmesh runs`. */
export async function runsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(help)
    return
  }
  if (sub === 'create') return createRun(rest)
  if (sub === 'extend') return extend(rest)
  if (sub === 'status') return status(rest)
  if (sub === 'priority') return priority(rest)
  if (sub === 'simulate') return simulateRun(rest)
  if (sub === 'serve') {
    const ending = processEnding()
    try {
      await serve(rest, ending)
    } catch (error) {
      if (!ending.signal.aborted) throw error
      if (error !== ending.signal.reason) process.stderr.write(`crowdmesh runs serve: ${String(error)}\n`)
    } finally {
      ending.dispose()
    }
    ending.settle()
    return
  }
  throw new UsageError(`unknown runs command ${sub}: create, extend, serve, status, priority or simulate`)
}

const workspaceOf = (values: Record<string, string | boolean | undefined>) =>
  resolve(stringOption(values, 'workspace') ?? join('out', 'match-runs'))

async function createRun(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(
    args,
    {
      ugc: { type: 'string' },
      refs: { type: 'string' },
      workspace: { type: 'string' },
      priority: { type: 'string' },
      'shard-size': { type: 'string' },
      threshold: { type: 'string' },
      json: { type: 'boolean' },
    },
    createHelp,
    1,
  )
  if (parsed === undefined) return
  const { values, positionals } = parsed
  const ugc = stringOption(values, 'ugc')
  const refs = stringOption(values, 'refs')
  if (ugc === undefined || refs === undefined) throw new UsageError('--ugc DIR and --refs DIR are required')
  const priorityText = stringOption(values, 'priority')
  const priorityValue = priorityText === undefined ? runDefaults.priority : Number(priorityText)
  if (!Number.isInteger(priorityValue) || Math.abs(priorityValue) > 1000)
    throw new UsageError('--priority is an integer from -1000 to 1000')
  const threshold = positiveInt(stringOption(values, 'threshold'), 'threshold', matchDefaults.maxHammingBits)
  const name = positionals[0]!
  const folder = join(workspaceOf(values), 'runs', name)
  if (existsSync(join(folder, 'run.json')))
    throw new CrowdmeshError(`run ${name} already exists in ${folder}`)
  const queries = await videosIn(resolve(ugc), 'ugc')
  const references = await videosIn(resolve(refs), 'refs')
  const json = values.json === true
  const bar = progressBar('probing', { quiet: json && process.stderr.isTTY !== true })
  const definition = await defineRun({
    folder,
    run: name,
    priority: priorityValue,
    queries,
    references,
    shardSize: positiveInt(stringOption(values, 'shard-size'), 'shard-size', runDefaults.shardSize),
    rule: { maxHammingBits: threshold },
    skipSelf: resolve(ugc) === resolve(refs),
    onProbe: (done, total) => bar.update(done, total),
  })
  const count = (role: 'queryId' | 'refId') => definition.entries.filter((e) => e[role] !== undefined).length
  bar.done(`${count('queryId')} user videos, ${count('refId')} references`)
  if (json) {
    process.stdout.write(`${JSON.stringify(definition)}\n`)
    return
  }
  for (const f of definition.failed) process.stdout.write(`  left out: ${f.id} (${f.role}): ${f.error}\n`)
  process.stdout.write(`run ${name} created in ${folder}; serve it with: npx crowdmesh runs serve\n`)
}

async function extend(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(
    args,
    {
      ugc: { type: 'string' },
      refs: { type: 'string' },
      workspace: { type: 'string' },
      json: { type: 'boolean' },
    },
    extendHelp,
    1,
  )
  if (parsed === undefined) return
  const { values, positionals } = parsed
  const ugc = stringOption(values, 'ugc')
  const refs = stringOption(values, 'refs')
  if (ugc === undefined && refs === undefined) throw new UsageError('give --ugc DIR, --refs DIR or both')
  const folder = join(workspaceOf(values), 'runs', positionals[0]!)
  if (!existsSync(join(folder, 'run.json')))
    throw new CrowdmeshError(`no run ${positionals[0]!} in ${folder}`)
  const json = values.json === true
  const bar = progressBar('probing', { quiet: json })
  const { definition, added } = await extendRun({
    folder,
    queries: ugc === undefined ? [] : await videosIn(resolve(ugc), 'ugc'),
    references: refs === undefined ? [] : await videosIn(resolve(refs), 'refs'),
    onProbe: (done, total) => bar.update(done, total),
  })
  bar.done(`${added} videos added`)
  if (json) {
    process.stdout.write(`${JSON.stringify({ added, entries: definition.entries.length })}\n`)
    return
  }
  process.stdout.write(`run ${definition.run}: ${added} videos added, ${definition.entries.length} in all\n`)
}

function openPool(workspace: string): SqliteTaskPool {
  if (!existsSync(join(workspace, 'pool.db')) && !existsSync(join(workspace, 'runs')))
    throw new CrowdmeshError(`no workspace at ${workspace}: create a run first (crowdmesh runs create)`)
  return new SqliteTaskPool({ path: join(workspace, 'pool.db') })
}

function status(args: string[]): Promise<void> {
  const values = parseCommand(args, { workspace: { type: 'string' }, json: { type: 'boolean' } }, statusHelp)
  if (values === undefined) return Promise.resolve()
  const workspace = workspaceOf(values)
  const pool = openPool(workspace)
  try {
    const runs = pool.runs().map(({ run, priority: p }) => {
      const fingerprints = pool.counts(run, 'video-fingerprint')
      const matches = pool.counts(run, 'video-match')
      const open =
        matches.waiting +
        matches.queued +
        matches.leased +
        fingerprints.waiting +
        fingerprints.queued +
        fingerprints.leased
      return {
        run,
        priority: p,
        fingerprints,
        matches,
        finished: matches.done + matches.failed > 0 && open === 0,
      }
    })
    const storePath = join(workspace, 'results.db')
    let results = { tasks: 0, matches: 0 }
    if (existsSync(storePath)) {
      const store = new ResultsStore(storePath)
      results = store.totals()
      store.close()
    }
    const unwritten = pool.unwritten()
    if (values.json === true) {
      process.stdout.write(`${JSON.stringify({ runs, results: { ...results, unwritten } })}\n`)
      return Promise.resolve()
    }
    for (const r of runs)
      process.stdout.write(
        `  ${r.run}  priority ${r.priority}  fingerprints ${r.fingerprints.done}/${total(r.fingerprints)}  slices ${r.matches.done}/${total(r.matches)} (${r.matches.leased} leased, ${r.matches.failed} failed)${r.finished ? '  done' : ''}\n`,
      )
    process.stdout.write(
      `${results.matches} matches written for ${results.tasks} slices; ${unwritten} slices not yet written\n`,
    )
  } finally {
    pool.close()
  }
  return Promise.resolve()
}

const total = (c: { waiting: number; queued: number; leased: number; done: number; failed: number }) =>
  c.waiting + c.queued + c.leased + c.done + c.failed

function priority(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(args, { workspace: { type: 'string' } }, priorityHelp, 2)
  if (parsed === undefined) return Promise.resolve()
  const [name, value] = parsed.positionals as [string, string]
  const p = Number(value)
  if (!Number.isInteger(p) || Math.abs(p) > 1000)
    throw new UsageError('the priority is an integer from -1000 to 1000')
  const pool = openPool(workspaceOf(parsed.values))
  try {
    if (!pool.runs().some((r) => r.run === name))
      throw new CrowdmeshError(`no run ${name} in the pool (is it served yet?)`)
    const changed = pool.setPriority(name, p)
    process.stdout.write(`run ${name}: priority ${p} (${changed} tasks waiting)\n`)
  } finally {
    pool.close()
  }
  return Promise.resolve()
}

async function serve(args: string[], ending: ProcessEnding): Promise<void> {
  const values = parseCommand(
    args,
    {
      workspace: { type: 'string' },
      participants: { type: 'string' },
      writers: { type: 'string' },
      dashboard: { type: 'string' },
      keep: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    serveHelp,
  )
  if (values === undefined) return
  const workspace = workspaceOf(values)
  const participants = countOption(stringOption(values, 'participants'), 'participants', 2)
  const writers = countOption(stringOption(values, 'writers'), 'writers', 1)
  const dashboardPort = stringOption(values, 'dashboard')
  const json = values.json === true
  const say = (line: string) => {
    if (!json) process.stderr.write(`${line}\n`)
  }
  await mkdir(workspace, { recursive: true })
  const pool = openPool(workspace)
  const log = logger('crowdmesh:runs')
  let event: Awaited<ReturnType<typeof startEvent>> | undefined
  const processes: ParticipantProcess[] = []
  let publisher: ResultsPublisher | undefined
  let dashboard: { url: string; close(): Promise<void> } | undefined
  let matchPool: MatchPool | undefined
  const stores: ResultsStore[] = []
  try {
    const holder: { event?: Awaited<ReturnType<typeof startEvent>> } = {}
    matchPool = new MatchPool({
      pool,
      root: workspace,
      publish: (url) => holder.event!.frames.publishFile(url),
      clock: systemClock,
    })
    event = await startEvent({
      coordinator: { jobs: [matchPool.fingerprintJob()] },
      name: 'match-runs',
      turn: 'off',
    })
    holder.event = event
    const running = event
    await matchPool.attach(running.coordinator)
    publisher = eventResultsPublisher(running, pool, log)
    publisher.start()
    const storePath = join(workspace, 'results.db')
    for (let i = 0; i < writers; i++)
      processes.push(
        new ParticipantProcess(running.joinLinks.operator!, {
          entry: writerEntry,
          options: { store: storePath },
        }),
      )
    for (let i = 0; i < participants; i++)
      processes.push(new ParticipantProcess(running.joinLink, { dutyCycle: 1, cores: 1 }))
    if (dashboardPort !== undefined) {
      const results = new ResultsStore(storePath)
      stores.push(results)
      dashboard = await startDashboard({
        pool: matchPool,
        // Participants that compute: the result writers (on the operator's link) are not counted.
        participants: () =>
          running.coordinator.statistics().participants.filter((p) => p.present && !running.isOperator(p.id))
            .length,
        written: () => results.byRun(),
        unwritten: () => pool.unwritten(),
        port: countOption(dashboardPort, 'dashboard', 0),
      })
      say(`  dashboard: ${dashboard.url}`)
      if (json) process.stdout.write(`${JSON.stringify({ type: 'dashboard', url: dashboard.url })}\n`)
    }
    const runs = matchPool.progress()
    say(`crowdmesh: serving ${runs.length} runs from ${workspace}`)
    say(`  join link: ${running.joinLink}  (more participants: npx crowdmesh join LINK)`)
    const bar = progressBar('slices', { quiet: json })
    const pass = setInterval(() => {
      const progress = matchPool!.progress()
      const done = progress.reduce((n, p) => n + settled(p), 0)
      const all = progress.reduce((n, p) => n + total(p.fingerprints) + total(p.matches), 0)
      bar.update(done, Math.max(all, 1))
      if (json)
        process.stdout.write(
          `${JSON.stringify({ type: 'progress', runs: progress, unwritten: pool.unwritten() })}\n`,
        )
    }, 1000)
    try {
      await matchPool.finished(ending.signal)
      // Every result written: the outbox drains as writers acknowledge.
      while (pool.unwritten() > 0) {
        ending.signal.throwIfAborted()
        if (writers === 0) break
        await new Promise((r) => setTimeout(r, 200))
      }
      if (values.keep === true)
        await new Promise((_, reject) =>
          ending.signal.addEventListener('abort', () => reject(ending.signal.reason as Error)),
        )
    } finally {
      clearInterval(pass)
    }
    const progress = matchPool.progress()
    bar.done(`${progress.length} runs done`)
    const store = new ResultsStore(storePath)
    const results = store.totals()
    store.close()
    const summary = {
      type: 'summary',
      runs: progress,
      results,
      unwritten: pool.unwritten(),
      published: publisher.stats,
    }
    if (json) process.stdout.write(`${JSON.stringify(summary)}\n`)
    else
      process.stdout.write(
        `${results.matches} matches written for ${results.tasks} slices in ${workspace}/results.db\n`,
      )
  } finally {
    await dashboard?.close()
    publisher?.stop()
    matchPool?.detach()
    await Promise.all(processes.map((p) => p.stop()))
    await event?.stop()
    for (const store of stores) store.close()
    pool.close()
  }
}

const settled = (p: RunProgress) =>
  p.fingerprints.done + p.fingerprints.failed + p.matches.done + p.matches.failed
