import { jobKinds } from '../../peer/jobs/registry.ts'
import { InvalidOptionError } from '../../peer/protocol/errors.ts'
import { validationDefaults } from '../../peer/protocol/defaults.ts'
import { parseAdversaries } from '../../peer/simulator/adversaries.ts'
import { loadProfile } from '../../peer/simulator/profile.ts'
import {
  type SimulatedJob,
  type SimulationReport,
  simulate,
  simulationDefaults,
} from '../../peer/simulator/simulation.ts'
import { runRealMesh } from '../bench/mesh.ts'
import { parseCommand, positiveInt, resolveDataset, stringOption, UsageError } from '../options.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh simulate [options]

Simulates a whole event in virtual time: cameras send frames (or the rounds of --jobs arrive), a
crowd of virtual participants joins, computes at its own speed, link and duty cycle, leaves, crashes
and straggles, and the real coordinator schedules it. Deterministic for a seed. Prints the
management table, frame latency, outcome rate, lost and double-counted threads, the share of work
wasted on duplicates, and one row per job with the crowd's capacity each one used.

Options:
  --peers N              participants present at once                                [default: 100]
  --profile NAME|FILE    crowd profile: "seed" (the seed's table: 32, 32, 40, 16 and 4 cores at
                         24–42 ms per thread), "event" (phones, laptops, desktops), "match-run"
                         (the event crowd 1000× faster per unit: slices of 64 references in
                         0.4–7 s), or a JSON file
                         {name, classes: [{name, weight, cores, msPerThread: [min, max], dutyCycle,
                         bandwidthMbps: [min, max], rttMs: [min, max], stragglerChance,
                         stragglerSlowdown, kinds?: [names of the job kinds it runs]}]}
                                                                             [default: seed]
  --duration D           length of the event: 90, 90s, 10m                           [default: 60s]
  --fps F                moments per second the cameras send                           [default: 2]
  --churn RATE           share of the crowd leaving (and replaced) per minute: 0.2 or 20%  [default: 0]
  --fail-rate R          share of the crowd crashing mid-block per minute: 0.05 or 5%  [default: 0]
  --seed S               random seed                                                    [default: 1]
  --grid N|auto          vertices per axis; auto sizes frames to half the crowd's capacity [default: auto]
  --cameras N            cameras around the stage                                       [default: 8]
  --latency-budget MS    live mode: a frame later than this is dropped or downgraded;
                         0 runs in batch mode (every frame completes)                [default: 5000]
  --overload MODE        live mode: "downgrade" (coarser grid when the crowd cannot keep up)
                         or "drop"                                             [default: downgrade]
  --mode pull|push       participants ask for work, or the coordinator hands it out    [default: pull]
  --jobs LIST            several jobs of any kinds at once instead of the one vertex job (--grid
                         and --cameras then do not apply): comma-separated KIND:CLASS[:FIELD…],
                         KIND a job kind (vertex, image-filter), CLASS live or batch, each FIELD
                           auto | N | Nk | NM    units per round (k = 1000, M = 1000000; a "px" or
                                                "u" suffix is allowed); auto (the default): a
                                                live job keeps half the crowd busy, a batch
                                                round is 10 s of the whole crowd
                           Ffps | fps=F         rounds per second (default: --fps for a live job;
                                                a batch job with a rate is streamed, not queued)
                           Nrounds | rounds=N   batch: rounds queued at the start (default: topped
                                                up through the event so it never runs dry)
                           weight=W             share among the jobs of its class  [default: 1]
                           whole                each round leased whole, as one task (a match
                                                run's slice)
                         e.g. --jobs vertex:live:2fps,image-filter:batch:64k,
                              --jobs video-match:batch:64:whole --profile match-run
                         Every participant runs every kind; live jobs get --latency-budget.
                         The frame and latency lines are then the first live job's, the thread
                         lines totals over every job; the job table has each job's figures.
  --adversaries MODEL[:SHARE]
                         lying participants among the crowd (turns --validation on): MODEL one of
                         random, constant, partial (wrong on 1–5 % of units), lazy (stale or empty
                         results at once), colluder (the same wrong answer as other colluders),
                         sleeper (honest for 100 results, then lies), rejoiner (rejoins under a
                         new id through its link once caught), broken-gpu (wrong on a quarter of
                         its units), mix (all of them) or none; SHARE of the crowd, 0.2 or 20%
                                                                               [default share: 0.2]
  --validation MODE      result validation: adaptive (spot checks, trust earned by results in a
                         row verified), replicate-all (trust nobody: every task computed twice),
                         off; given, the report has a validation section  [default: adaptive with
                                                                          --adversaries, else none]
  --no-checks            the coordinator cannot check results: validated by replication and a
                         quorum alone (what a kind without a checker gets)
  --rows N               rows of the management table to print                         [default: 10]
  --real N               instead of virtual time: start an event on loopback and N Node
                         participants as separate processes (crowdmesh join) over real WebRTC;
                         --grid (default 32), --frames (measured frames, default 5) and
                         --dataset apply; reports joining, frame latency, outcome gossip
  --json                 print one JSON object (the whole report)
  -h, --help             show this help
`

/** Parses 90, 90s, 1.5m, 2h into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (match === null) throw new UsageError(`--duration must look like 90, 90s, 10m or 1h, got "${text}"`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? 's']!
  const ms = Number(match[1]) * unit
  if (ms <= 0) throw new UsageError('--duration must be positive')
  return ms
}

/** Parses 0.2 or 20% into a share. */
export function parseShare(text: string, name: string): number {
  const percent = text.trim().endsWith('%')
  const value = Number(percent ? text.trim().slice(0, -1) : text)
  if (!Number.isFinite(value) || value < 0)
    throw new UsageError(`--${name} must be a share like 0.2 or 20%, got "${text}"`)
  return percent ? value / 100 : value
}

function positiveNumber(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a positive number, got "${text}"`)
  return value
}

/** `crowdmesh simulate`. */
export async function simulateCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      peers: { type: 'string' },
      profile: { type: 'string' },
      duration: { type: 'string' },
      fps: { type: 'string' },
      churn: { type: 'string' },
      'fail-rate': { type: 'string' },
      seed: { type: 'string' },
      grid: { type: 'string' },
      cameras: { type: 'string' },
      'latency-budget': { type: 'string' },
      overload: { type: 'string' },
      rows: { type: 'string' },
      mode: { type: 'string' },
      json: { type: 'boolean' },
      real: { type: 'string' },
      frames: { type: 'string' },
      dataset: { type: 'string' },
      jobs: { type: 'string' },
      adversaries: { type: 'string' },
      validation: { type: 'string' },
      'no-checks': { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const json = values.json === true
  const realText = stringOption(values, 'real')
  if (realText !== undefined) return simulateReal(values, positiveInt(realText, 'real', 1), json)
  const gridText = stringOption(values, 'grid') ?? 'auto'
  const grid = gridText === 'auto' ? 0 : positiveInt(gridText, 'grid', 0)
  const budgetText = stringOption(values, 'latency-budget') ?? '5000'
  const budget = Number(budgetText)
  if (!Number.isFinite(budget) || budget < 0)
    throw new UsageError(`--latency-budget must be milliseconds, got "${budgetText}"`)
  const overload = stringOption(values, 'overload') ?? 'downgrade'
  if (overload !== 'drop' && overload !== 'downgrade') {
    throw new UsageError(`--overload must be drop or downgrade, got "${overload}"`)
  }
  const mode = stringOption(values, 'mode') ?? 'pull'
  if (mode !== 'pull' && mode !== 'push') throw new UsageError(`--mode must be pull or push, got "${mode}"`)
  const seedText = stringOption(values, 'seed')
  const seed = seedText === undefined ? simulationDefaults.seed : Number(seedText)
  if (!Number.isInteger(seed)) throw new UsageError(`--seed must be an integer, got "${seedText}"`)
  let profile
  try {
    profile = await loadProfile(stringOption(values, 'profile') ?? 'seed')
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new UsageError(error.message)
    throw error
  }
  const durationText = stringOption(values, 'duration')
  const churnText = stringOption(values, 'churn')
  const failText = stringOption(values, 'fail-rate')
  const jobsText = stringOption(values, 'jobs')
  const bar = progressBar('simulating', { quiet: json && !process.stderr.isTTY })
  const jobs = jobsText === undefined ? undefined : parseJobs(jobsText)
  const trust = validationOptions(values)
  const report = simulateOrUsage({
    ...trust,
    ...simulationDefaults,
    peers: positiveInt(stringOption(values, 'peers'), 'peers', simulationDefaults.peers),
    profile,
    durationMs: durationText === undefined ? simulationDefaults.durationMs : parseDuration(durationText),
    fps: positiveNumber(stringOption(values, 'fps'), 'fps', simulationDefaults.fps),
    churnPerMinute: churnText === undefined ? 0 : parseShare(churnText, 'churn'),
    failRate: failText === undefined ? 0 : parseShare(failText, 'fail-rate'),
    seed,
    grid,
    cameras: positiveInt(stringOption(values, 'cameras'), 'cameras', simulationDefaults.cameras),
    ...(budget > 0 && { live: { latencyBudgetMs: budget, overload } }),
    mode,
    ...(jobs !== undefined && { jobs }),
    onProgress: (done, total) => bar.update(done, total),
  })
  bar.done(`${report.virtualSeconds} s of event in ${report.wallSeconds} s`)
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  process.stdout.write(table(report, positiveInt(stringOption(values, 'rows'), 'rows', 10)))
}

/** `--adversaries`, `--validation` and `--no-checks` as simulation options. */
function validationOptions(
  values: Record<string, string | boolean | undefined>,
): Pick<Parameters<typeof simulate>[0], 'validation' | 'adversaries' | 'checkers'> {
  const adversariesText = stringOption(values, 'adversaries')
  const modeText = stringOption(values, 'validation')
  if (modeText === undefined && adversariesText === undefined) return {}
  let adversaries
  try {
    adversaries = adversariesText === undefined ? undefined : parseAdversaries(adversariesText)
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new UsageError(error.message)
    throw error
  }
  const mode = modeText ?? validationDefaults.mode
  if (mode !== 'adaptive' && mode !== 'replicate-all' && mode !== 'off')
    throw new UsageError(`--validation must be adaptive, replicate-all or off, got "${mode}"`)
  return {
    validation: { mode },
    ...(adversaries !== undefined && { adversaries }),
    ...(values['no-checks'] === true && { checkers: false }),
  }
}

/** `simulate`, with a refused option (a job's bad field) as a usage error. */
function simulateOrUsage(init: Parameters<typeof simulate>[0]): SimulationReport {
  try {
    return simulate(init)
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new UsageError(error.message)
    throw error
  }
}

/** Parses `--jobs`: see the help text. */
export function parseJobs(text: string): SimulatedJob[] {
  return text.split(',').map((item) => {
    const [kind = '', jobClass = '', ...fields] = item.trim().split(':')
    const where = `--jobs "${item.trim()}"`
    if (!jobKinds.has(kind))
      throw new UsageError(`${where}: KIND must be one of ${[...jobKinds.keys()].join(', ')}, got "${kind}"`)
    if (jobClass !== 'live' && jobClass !== 'batch')
      throw new UsageError(`${where}: CLASS must be live or batch, got "${jobClass}"`)
    const job: SimulatedJob = { kind, class: jobClass, units: 0 }
    for (const field of fields) {
      if (field === 'whole') {
        job.wholeRounds = true
        continue
      }
      const named = /^(units|fps|rounds|weight)=(.+)$/.exec(field)
      const [name, value] = named !== null ? [named[1]!, named[2]!] : shorthand(field)
      if (name === 'units') job.units = value === 'auto' ? 0 : count(value, where)
      else {
        const n = Number(value)
        if (!Number.isFinite(n) || n <= 0)
          throw new UsageError(`${where}: ${name} must be above 0, got "${value}"`)
        if (name === 'rounds' && !Number.isInteger(n))
          throw new UsageError(`${where}: rounds must be a whole number, got "${value}"`)
        job[name as 'fps' | 'rounds' | 'weight'] = n
      }
    }
    return job
  })
}

/** A field without a name: `auto` or a count are units, `2fps` a rate, `10rounds` rounds. */
function shorthand(field: string): [string, string] {
  const suffixed = /^(\d+(?:\.\d+)?)(fps|rounds)$/.exec(field)
  return suffixed !== null ? [suffixed[2]!, suffixed[1]!] : ['units', field]
}

/** 65536, 64k, 4M, 4Mpx: a count of units. */
function count(text: string, where: string): number {
  const match = /^(\d+(?:\.\d+)?)([kM]?)(?:px|u)?$/.exec(text)
  if (match === null)
    throw new UsageError(`${where}: units must look like auto, 65536, 64k or 4M, got "${text}"`)
  const n = Math.round(Number(match[1]) * (match[2] === 'k' ? 1e3 : match[2] === 'M' ? 1e6 : 1))
  if (n < 1) throw new UsageError(`${where}: units must be at least 1, got "${text}"`)
  return n
}

function table(r: SimulationReport, rows: number): string {
  const lines = [
    `crowdmesh simulate: ${r.peers} participants (${r.profile}), ${r.virtualSeconds} s of event, seed ${r.seed}`,
    '',
    `  id        device     cores  ms/thread  threads done/assigned   wasted  expired  present`,
    ...[...r.participants]
      .sort((a, b) => b.threadsProcessed - a.threadsProcessed)
      .slice(0, rows)
      .map(
        (p) =>
          `  ${p.id.padEnd(9)} ${p.device.padEnd(10)} ${String(p.cores).padStart(5)}  ${p.meanMsPerThread.toFixed(1).padStart(9)}  ` +
          `${`${p.threadsProcessed}/${p.threadsAssigned}`.padStart(21)}  ${String(p.threadsWasted).padStart(7)}  ` +
          `${String(p.leasesExpired).padStart(7)}  ${p.present ? 'yes' : 'no'}`,
      ),
    r.participants.length > rows ? `  … ${r.participants.length - rows} more (--rows, --json)` : '',
    '',
    `  frames        ${r.framesCompleted} completed, ${r.framesDropped} dropped, ${r.framesDowngraded} downgraded, ${r.framesUnfinished} unfinished of ${r.framesAdded}`,
    `  latency       p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms, max ${r.latencyMs.max} ms`,
    `  outcome rate  ${r.outcomeFps} frames/s`,
    `  threads       ${r.threadsCounted} counted, ${r.lostThreads} lost, ${r.doubleCountedThreads} double-counted`,
    `  duplicates    ${(r.duplicateWorkShare * 100).toFixed(2)} % of computed work wasted; ${r.reassignments} blocks re-assigned`,
    `  crowd         ${r.joins} joins, ${r.leaves} leaves, ${r.crashes} crashes`,
    `  capacity      ${r.capacityParticipantSeconds} participant-seconds over the event, ${(r.idleShare * 100).toFixed(1)} % idle`,
    `  wall          ${r.wallSeconds} s (${r.participantSecondsPerWallSecond} participant-seconds per second, ${r.events} events)`,
    '',
    ...jobTable(r),
    ...validationTable(r),
  ]
  return lines.join('\n')
}

/** What validation did: adversaries caught, wrong items published, extra work. */
function validationTable(r: SimulationReport): string[] {
  const v = r.validation
  if (v === undefined) return []
  const percent = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.001 ? 4 : 2)} %`
  return [
    `  validation    adversaries ${v.adversaries}: ${v.adversariesJoined} adversary and ${v.honestJoined} honest identities`,
    `  caught        ${v.quarantined} quarantined (${v.falseAccusations} honest: false accusations), ${v.liarsUncaught} liars never caught; ` +
      `first lie to quarantine p50 ${v.quarantineMs.p50} ms, p95 ${v.quarantineMs.p95} ms, max ${v.quarantineMs.max} ms`,
    `  published     ${v.wrongItemsPublished} wrong items of ${v.itemsPublished} (${percent(v.wrongItemShare)}), ${v.wrongUnitsPublished} wrong units`,
    ...(v.findings !== undefined
      ? [
          `  findings      ${v.findings.true - v.findings.missing} of ${v.findings.true} true findings kept (${percent(v.findings.foundShare)}), ` +
            `${v.findings.invented} invented; ${v.roundsRecomputed} published rounds computed again (a liar answerable for them was caught)`,
        ]
      : []),
    `  extra work    ${percent(v.extraWorkShare)} of counted units computed again (${v.counters.replicaUnits} in ${v.counters.replicas} replicas, ` +
      `${v.counters.unitsWithdrawn} withdrawn in ${v.counters.resultsWithdrawn} results); the coordinator checked ${percent(v.checkedUnitsShare)} ` +
      `(${v.counters.checks} checks)`,
    '',
  ]
}

/** One row per job: rounds, latency, units and the share of the crowd's capacity it used. */
function jobTable(r: SimulationReport): string[] {
  return [
    `  job              class  units/round  rounds done/added  dropped  p50/p95 ms          units counted  double  busy p·s  share`,
    ...r.jobs.map(
      (j) =>
        `  ${j.jobId.padEnd(16)} ${j.class.padEnd(5)}  ${String(j.unitsPerRound).padStart(11)}  ` +
        `${`${j.roundsCompleted}/${j.roundsAdded}`.padStart(17)}  ${String(j.roundsDropped).padStart(7)}  ` +
        `${`${j.latencyMs.p50}/${j.latencyMs.p95}`.padStart(18)}  ${String(j.unitsCounted).padStart(13)}  ` +
        `${String(j.doubleCountedUnits).padStart(6)}  ${j.busyParticipantSeconds.toFixed(1).padStart(8)}  ` +
        `${(j.capacityShare * 100).toFixed(1).padStart(4)} %`,
    ),
    '',
  ]
}

/** `simulate --real N`: the same coordinator with N real Node participant processes over WebRTC. */
async function simulateReal(
  values: Record<string, string | boolean | undefined>,
  participants: number,
  json: boolean,
): Promise<void> {
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`)
  }
  const dataset = await resolveDataset(stringOption(values, 'dataset'), undefined, say)
  const grid = positiveInt(stringOption(values, 'grid'), 'grid', 32)
  const frames = positiveInt(stringOption(values, 'frames'), 'frames', 5)
  say(
    `crowdmesh: ${participants} Node participant processes, ${dataset.name} on a ${grid}³ grid, ${frames} frames`,
  )
  const bar = progressBar('frames', { quiet: json })
  const report = await runRealMesh({
    dataset,
    participants,
    grid,
    frames,
    onProgress: (d, t) => bar.update(d, t),
  })
  bar.done()
  if (json) return void process.stdout.write(`${JSON.stringify(report)}\n`)
  const pair = (p: { p50: number; p95: number }) => `p50 ${p.p50} / p95 ${p.p95} ms`
  say(`  join link to first lease   ${pair(report.joinToFirstLeaseMs)}`)
  say(`  process start to lease     ${pair(report.spawnToFirstLeaseMs)}`)
  say(`  frame latency              ${pair(report.frameLatencyMs)}`)
  say(`  outcome gossip (all)       ${pair(report.outcomeGossipMs)}`)
  say(
    `  results                    ${report.resultMBps.toFixed(1)} MB/s; ${report.reassignments} blocks reassigned`,
  )
}
