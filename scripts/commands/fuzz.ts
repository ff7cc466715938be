import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { runFuzz } from '../fuzz/harness.ts'
import { parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh fuzz [options]

Fuzzes an event's own protocols: starts an event in a process of its own (signaling, coturn when
installed, the circuit relay, the coordinator, the frame store, the server peer for recordings) with
a Node participant computing frames and a recorder uploading beside it, then sends property-based
hostile input (fast-check) to every listener — HTTP requests to each server, signaling and upload
WebSocket sessions, work-protocol streams and gossip over libp2p — malformed, truncated,
oversized, deeply nested and out of order. Every case must be answered or closed with a clear error;
afterwards the event must be alive, the participant must have kept completing frames, the recording
must be published byte for byte, and the event's open file descriptors, child processes and heap
must be back to their baseline. Exits 1 when anything failed.

Options:
  --minutes N     how long to send hostile input                                 [default: 1]
  --seconds N     the same in seconds (for short runs)
  --seed N        the generators' seed, to rerun the same cases               [default: random]
  --only T        one family of targets: http, ws (signaling and upload sockets), rtc (uploads
                  over a data channel) or mesh (work protocol, admission, gossip)  [default: all]
  --out FILE      where the JSON report goes                   [default: out/fuzz/report.json]
  --json          print the report as one JSON object
  -h, --help      show this help
`

/** `crowdmesh fuzz`. */
export async function fuzzCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      minutes: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const secondsText = stringOption(values, 'seconds')
  const durationMs =
    secondsText !== undefined
      ? positiveInt(secondsText, 'seconds', 60) * 1000
      : positiveInt(stringOption(values, 'minutes'), 'minutes', 1) * 60_000
  const seedText = stringOption(values, 'seed')
  const seed = seedText === undefined ? undefined : Number(seedText)
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new UsageError('--seed must be an integer')
  const only = stringOption(values, 'only')
  if (only !== undefined && only !== 'http' && only !== 'ws' && only !== 'rtc' && only !== 'mesh')
    throw new UsageError(`--only must be http, ws, rtc or mesh, got "${only}"`)
  const json = values.json === true
  const bar = progressBar('fuzzing', { quiet: json })
  const report = await runFuzz({
    durationMs,
    ...(seed !== undefined && { seed }),
    ...(only !== undefined && { only }),
    onProgress: ({ elapsedMs }) => bar.update(elapsedMs, durationMs),
  })
  bar.done()
  const out = resolve(stringOption(values, 'out') ?? 'out/fuzz/report.json')
  await mkdir(dirname(out), { recursive: true })
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`)
  const failed =
    report.crashes > 0 ||
    report.leaks.length > 0 ||
    report.failures.length > 0 ||
    report.framesDuringFuzz === 0 ||
    !report.witnessRecording.identical
  if (json) process.stdout.write(`${JSON.stringify(report)}\n`)
  else {
    const say = (line: string) => process.stdout.write(`${line}\n`)
    say(`fuzz (seed ${report.seed}): ${report.cases} cases in ${Math.round(report.durationMs / 1000)} s`)
    for (const [target, cases] of Object.entries(report.casesByTarget)) say(`  ${target.padEnd(18)} ${cases}`)
    say(`  crashes            ${report.crashes}`)
    say(
      `  leaks              ${report.leaks.length}${report.leaks.length > 0 ? `: ${report.leaks.join('; ')}` : ''}`,
    )
    say(`  unclear answers    ${report.failures.length}`)
    for (const failure of report.failures.slice(0, 10))
      say(`    ${failure.target}: ${failure.why}\n      input: ${failure.input}`)
    say(`  frames completed by the witness participant meanwhile: ${report.framesDuringFuzz}`)
    say(
      `  witness recording: ${report.witnessRecording.identical ? 'published, byte-identical' : `NOT intact (${report.witnessRecording.error ?? 'bytes differ'})`}`,
    )
    say(
      `  event process: fds ${report.baseline.fds} → ${report.after.fds}, children ${report.baseline.children} → ${report.after.children}, heap ${(report.baseline.heapUsed / 2 ** 20).toFixed(1)} → ${(report.after.heapUsed / 2 ** 20).toFixed(1)} MiB`,
    )
    say(`  report: ${out}`)
  }
  if (failed) process.exitCode = 1
}
