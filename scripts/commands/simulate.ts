import { InvalidOptionError } from '../../peer/protocol/errors.ts'
import { loadProfile } from '../../peer/simulator/profile.ts'
import { type SimulationReport, simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'
import { runRealMesh } from '../bench/mesh.ts'
import { parseCommand, positiveInt, resolveDataset, stringOption, UsageError } from '../options.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh simulate [options]

Simulates a whole event in virtual time: cameras send frames, a crowd of virtual participants joins,
computes at its own speed, link and duty cycle, leaves, crashes and straggles, and the real
coordinator schedules it. Deterministic for a seed. Prints the management table, frame latency,
outcome rate, lost and double-counted threads and the share of work wasted on duplicates.

Options:
  --peers N              participants present at once                                [default: 100]
  --profile NAME|FILE    crowd profile: "seed" (the seed's table: 32, 32, 40, 16 and 4 cores at
                         24–42 ms per thread), "event" (phones, laptops, desktops), or a JSON file
                         {name, classes: [{name, weight, cores, msPerThread: [min, max], dutyCycle,
                         bandwidthMbps: [min, max], rttMs: [min, max], stragglerChance,
                         stragglerSlowdown}]}                                        [default: seed]
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
  const bar = progressBar('simulating', { quiet: json && !process.stderr.isTTY })
  const report = simulate({
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
    onProgress: (done, total) => bar.update(done, total),
  })
  bar.done(`${report.virtualSeconds} s of event in ${report.wallSeconds} s`)
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  process.stdout.write(table(report, positiveInt(stringOption(values, 'rows'), 'rows', 10)))
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
    `  wall          ${r.wallSeconds} s (${r.participantSecondsPerWallSecond} participant-seconds per second, ${r.events} events)`,
    '',
  ]
  return lines.join('\n')
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
