import { simulateMatchRun } from '../../peer/simulator/match-run.ts'
import { parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'
import { progressBar } from '../progress.ts'

/* `crowdmesh runs simulate`: a match run at scale in virtual time (peer/simulator/match-run.ts). */

const simulateHelp = `Usage: crowdmesh runs simulate [options]

A match run at scale in virtual time: a generated catalogue (heavy-tailed durations) cut into slices
by the real partitioning, leased through the real task pool (in memory) to a crowd of virtual
participants with log-normal speed, bandwidth and disk, each keeping snapshot folders chosen by the
seed's similarity function. Participants leave (their slice goes back to the pool) and newcomers
take their place with empty folders. Deterministic for a seed. Prints slices done, bytes copied,
reference shard hits, time to finish and the tail (95 % to 100 % done).

Options:
  --participants N   the crowd                                                     [default: 1000]
  --ugc N            user videos                                                 [default: 100000]
  --refs N           references                                                   [default: 10000]
  --churn RATE       share of the crowd leaving a minute: 0.005 or 0.5%               [default: 0]
  --folders N        snapshot folders each (default: as many as each one's disk holds, 1–8)
  --disk BYTES       median disk a participant lends, e.g. 2e9                      [default: 2e9]
  --no-locality      grant in queue order, ignoring what participants hold
  --no-grouping      do not group user videos of similar length
  --seed S           random seed                                                      [default: 1]
  --json             print the figures as one JSON object
  -h, --help         show this help
`

/** `crowdmesh runs simulate`. */
export function simulateRun(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      participants: { type: 'string' },
      ugc: { type: 'string' },
      refs: { type: 'string' },
      churn: { type: 'string' },
      folders: { type: 'string' },
      disk: { type: 'string' },
      'no-locality': { type: 'boolean' },
      'no-grouping': { type: 'boolean' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    },
    simulateHelp,
  )
  if (values === undefined) return Promise.resolve()
  const churnText = stringOption(values, 'churn') ?? '0'
  const churn = churnText.endsWith('%') ? Number(churnText.slice(0, -1)) / 100 : Number(churnText)
  if (!(churn >= 0 && churn < 1))
    throw new UsageError('--churn is a share of the crowd a minute, from 0 to 1 (or 0% to 100%)')
  const diskText = stringOption(values, 'disk')
  const disk = diskText === undefined ? undefined : Number(diskText)
  if (disk !== undefined && !(disk > 0)) throw new UsageError('--disk is a number of bytes, e.g. 2e9')
  const folders = stringOption(values, 'folders')
  const json = values.json === true
  const bar = progressBar('simulating', { quiet: json })
  const result = simulateMatchRun({
    participants: positiveInt(stringOption(values, 'participants'), 'participants', 1000),
    ugc: positiveInt(stringOption(values, 'ugc'), 'ugc', 100_000),
    references: positiveInt(stringOption(values, 'refs'), 'refs', 10_000),
    seed: positiveInt(stringOption(values, 'seed'), 'seed', 1),
    churnPerMinute: churn,
    locality: values['no-locality'] !== true,
    groupByLength: values['no-grouping'] !== true,
    ...(folders !== undefined && { folders: positiveInt(folders, 'folders', 2) }),
    ...(disk !== undefined && { diskBytes: disk }),
    onProgress: (done, total) => bar.update(done, total),
  })
  bar.done(`${result.tasksDone} of ${result.slices} slices done`)
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return Promise.resolve()
  }
  const lines = [
    `  ${result.participants} participants, ${result.ugc} user videos × ${result.references} references: ${result.slices} slices`,
    `  slices done ${result.tasksDone}, failed ${result.tasksFailed}; ${result.departures} participants left, ${result.regranted} slices granted again`,
    `  bytes copied ${(result.bytesCopied / 1e9).toFixed(1)} GB; reference shard hits ${(100 * result.referenceHits).toFixed(1)} %`,
    `  finished in ${result.seconds} s of virtual time; the tail (95 % to 100 %) took ${result.tailSeconds} s`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
  return Promise.resolve()
}
