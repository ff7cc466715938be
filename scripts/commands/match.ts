import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { matchDefaults } from '../../peer/jobs/match/defaults.ts'
import {
  fingerprintJobInit,
  type MatchRunResult,
  runMatchRun,
  type RunVideo,
} from '../../peer/jobs/match/match-run.ts'
import { startEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import type { Browser } from 'playwright-core'
import { buildWebApp } from '../../signaling/web-app.ts'
import { launchChromium } from '../chromium.ts'
import { countOption, parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'
import { type ProcessEnding, processEnding } from '../process-ending.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh match --ugc DIR --refs DIR [options]

Finds which user videos contain which reference material, and where: a match run over the real
mesh on this machine. It starts an event (signaling, relay, coordinator) and local Node participant
processes (and, with --browsers, headless Chromium participants that decode in the page); the
participants fingerprint every video and match each user video against the references; other
participants may join by the printed link (a browser, or crowdmesh join LINK). Inputs are
any video ffmpeg decodes (MP4, WebM, MKV, MOV, animated GIF), of any resolution, aspect and frame
rate. A video that cannot be used is reported with its reason; the run goes on.

Prints a table of matches: user video and range, reference and range (seconds), score (1 identical,
0 unrelated). Ids are file names relative to their folder. The same folder as --ugc and --refs
matches a set against itself (a video is not matched with itself).

Options:
  --ugc DIR             the user videos to search                                       [required]
  --refs DIR            the reference videos                                            [required]
  --out FILE            where the JSON result goes                    [default: out/matches.json]
  --participants N      local Node participant processes (0: none)                  [default: 2]
  --browsers N          headless Chromium participants (Debian's chromium)          [default: 0]
  --threshold BITS      most differing bits (of 800) for two fingerprints to agree  [default: ${matchDefaults.maxHammingBits}]
  --work DIR            where fingerprint files are kept                [default: out/match-work]
  --json                print one JSON object: { matches: [{ ugcId, refId, ugcStart, ugcEnd,
                        refStart, refEnd, score }], failed: [{ id, role, error }], seconds }
  -h, --help            show this help
`

const videoFile = /\.(mp4|webm|mkv|mov|gif|avi|m4v)$/i

/** The videos under `dir` (recursively), ids relative to it; a usage error for a missing or empty folder. */
export async function videosIn(dir: string, option: string): Promise<RunVideo[]> {
  const info = await stat(dir).catch(() => undefined)
  if (info?.isDirectory() !== true) throw new UsageError(`--${option}: ${dir} is not a folder`)
  const files = (await readdir(dir, { recursive: true })).filter((p) => videoFile.test(p)).sort()
  if (files.length === 0) throw new CrowdmeshError(`--${option}: no video files in ${dir}`)
  return files.map((p) => ({ id: relative(dir, join(dir, p)), path: join(dir, p) }))
}

/** `crowdmesh match`. */
export async function matchCommand(args: string[]): Promise<void> {
  const ending = processEnding()
  try {
    await runMatch(args, ending)
  } catch (error) {
    if (!ending.signal.aborted) throw error
    if (error !== ending.signal.reason) process.stderr.write(`crowdmesh match: ${String(error)}\n`)
  } finally {
    ending.dispose()
  }
  ending.settle()
}

async function runMatch(args: string[], ending: ProcessEnding): Promise<void> {
  const values = parseCommand(
    args,
    {
      ugc: { type: 'string' },
      refs: { type: 'string' },
      out: { type: 'string' },
      participants: { type: 'string' },
      browsers: { type: 'string' },
      threshold: { type: 'string' },
      work: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const ugcDir = stringOption(values, 'ugc')
  const refsDir = stringOption(values, 'refs')
  if (ugcDir === undefined || refsDir === undefined)
    throw new UsageError('--ugc DIR and --refs DIR are required')
  const json = values.json === true
  const say = (line: string) => {
    if (!json) process.stderr.write(`${line}\n`)
  }
  const participants = countOption(stringOption(values, 'participants'), 'participants', 2)
  const browsers = countOption(stringOption(values, 'browsers'), 'browsers', 0)
  if (participants + browsers === 0) throw new UsageError('a match run needs --participants or --browsers')
  const threshold = positiveInt(stringOption(values, 'threshold'), 'threshold', matchDefaults.maxHammingBits)
  if (threshold > 800) throw new UsageError('--threshold is at most 800 bits')
  const out = resolve(stringOption(values, 'out') ?? join('out', 'matches.json'))
  const work = resolve(stringOption(values, 'work') ?? join('out', 'match-work'))
  const queries = await videosIn(resolve(ugcDir), 'ugc')
  const references = await videosIn(resolve(refsDir), 'refs')
  const selfMatch = resolve(ugcDir) === resolve(refsDir)

  ending.signal.throwIfAborted()
  const event = await startEvent({
    coordinator: { jobs: [fingerprintJobInit('match')] },
    name: 'match',
    turn: 'off',
  })
  const processes: ParticipantProcess[] = []
  let chromium: Browser | undefined
  let result: MatchRunResult
  try {
    say(`crowdmesh: matching ${queries.length} user videos against ${references.length} references`)
    say(`  join link: ${event.joinLink}  (more Node participants: npx crowdmesh join LINK)`)
    for (let i = 0; i < participants; i++)
      processes.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
    if (browsers > 0) {
      // The pages load the participant app as built from this checkout.
      await buildWebApp()
      chromium = await launchChromium()
      for (let i = 0; i < browsers; i++) {
        // Each its own context: its own participant, as two phones would be.
        const page = await (await chromium.newContext()).newPage()
        await page.goto(`${event.joinLink}?duty=1`)
      }
    }
    const bar = progressBar('matching', { quiet: json && process.stderr.isTTY !== true })
    result = await runMatchRun(event, {
      name: 'match',
      queries,
      references,
      folder: work,
      rule: { maxHammingBits: threshold },
      skipSelf: selfMatch,
      signal: ending.signal,
      // Each video is fingerprinted once, then each query matched: two steps a query, one a reference.
      onProgress: (p) => bar.update(p.fingerprinted + p.matched + p.failed, p.videos + p.queries),
    })
    bar.done(`${result.matches.length} matches, ${result.failed.length} videos failed`)
  } finally {
    await Promise.all(processes.map((p) => p.stop()))
    await chromium?.close()
    await event.stop()
  }
  await mkdir(dirname(out), { recursive: true })
  const report = {
    matches: result.matches,
    failed: result.failed,
    seconds: Math.round(result.seconds * 1000) / 1000,
  }
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`)
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  const rows = result.matches.map((m) => [
    m.ugcId,
    `${m.ugcStart.toFixed(2)}–${m.ugcEnd.toFixed(2)}`,
    m.refId,
    `${m.refStart.toFixed(2)}–${m.refEnd.toFixed(2)}`,
    m.score.toFixed(3),
  ])
  const head = ['user video', 'seconds', 'reference', 'seconds', 'score']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')}\n`
  process.stdout.write(line(head))
  for (const row of rows) process.stdout.write(line(row))
  if (rows.length === 0) process.stdout.write('  (no matches)\n')
  for (const f of result.failed) process.stdout.write(`  failed: ${f.id} (${f.role}): ${f.error}\n`)
  process.stdout.write(`${result.matches.length} matches in ${report.seconds} s; written to ${out}\n`)
}
