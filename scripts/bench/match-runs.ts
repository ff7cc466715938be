import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { generateEditedDataset } from '../../peer/jobs/match/edit-generator.ts'
import { loadMatchingDataset, scoreMatches } from '../../peer/jobs/match/ground-truth.ts'
import { readResults } from '../../peer/pool/results-store.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { repoRoot } from '../options.ts'

/*
 * The real run of issue 15 (`runs.*` in `crowdmesh bench`): the shared video set plus its generated
 * edits, all against all, as a pooled match run over the real mesh on this machine, through the CLI
 * an operator uses (`crowdmesh runs create`, `runs serve` with 2 Node participants and a result
 * writer). Once without interruption, and once with the serving process SIGKILLed when half the
 * slices are done and served again: the two must write the same matches, none twice.
 */

/** One way of running it. */
export interface RunOutcome {
  /** Wall-clock seconds from the first serve to every result written (restart included). */
  seconds: number
  matches: number
  /** Matches stored more than once for one pair and range (must be 0). */
  duplicates: number
  /** Slices done when the coordinator was killed (the killed way). */
  slicesAtKill?: number
  slices: number
  precision: number
  recall: number
}

export interface MatchRunsBench {
  videos: number
  uninterrupted: RunOutcome
  killed: RunOutcome
  /** Both wrote the same set of matches. */
  sameMatches: boolean
}

const cli = join(repoRoot, 'bin', 'crowdmesh.js')

function crowdmesh(args: readonly string[]): { child: ChildProcess; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)))
  const exited = new Promise<number | null>((resolve, reject) =>
    child.once('exit', (code, signal) => {
      if (code === 0 || signal === 'SIGKILL') resolve(code)
      else
        reject(
          new CrowdmeshError(`crowdmesh ${args.slice(0, 2).join(' ')} ended ${code ?? signal}: ${stderr}`),
        )
    }),
  )
  return { child, exited }
}

function slicesDone(workspace: string): number {
  try {
    const db = new DatabaseSync(join(workspace, 'pool.db'), { readOnly: true })
    try {
      return (
        db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE kind = 'video-match' AND state = 3`).get() as {
          n: number
        }
      ).n
    } finally {
      db.close()
    }
  } catch {
    return 0
  }
}

export async function runMatchRunsBench(init: {
  onProgress?: (done: number, total: number) => void
}): Promise<MatchRunsBench> {
  const source = join(repoRoot, '..', 'shared', 'data', 'video-matching')
  // The edited copies match-eval makes (kept between runs under out/).
  const edited = await generateEditedDataset({
    source,
    out: join(repoRoot, 'out', 'match-eval', 'video-matching', 'edits'),
  })
  const dataset = await loadMatchingDataset(edited.root)
  const scratch = await mkdtemp(join(tmpdir(), 'crowdmesh-bench-runs-'))
  const outcomes: Partial<Record<'uninterrupted' | 'killed', RunOutcome & { set: string[] }>> = {}
  try {
    let step = 0
    for (const way of ['uninterrupted', 'killed'] as const) {
      const workspace = join(scratch, way)
      await crowdmesh([
        'runs',
        'create',
        'all',
        '--ugc',
        edited.root,
        '--refs',
        edited.root,
        '--workspace',
        workspace,
      ]).exited
      const started = performance.now()
      const serveArgs = ['runs', 'serve', '--workspace', workspace, '--participants', '2', '--writers', '1']
      let slicesAtKill: number | undefined
      if (way === 'killed') {
        const first = crowdmesh(serveArgs)
        // Half the slices (one a user video) done: the coordinator dies without a word.
        while (slicesDone(workspace) < dataset.videos.length / 2) {
          if (first.child.exitCode !== null)
            throw new CrowdmeshError('the run ended before it could be killed')
          await new Promise((r) => setTimeout(r, 100))
        }
        first.child.kill('SIGKILL')
        await first.exited
        slicesAtKill = slicesDone(workspace)
      }
      await crowdmesh(serveArgs).exited
      const seconds = (performance.now() - started) / 1000
      const { matches } = readResults(join(workspace, 'results.db'))
      const set = matches.map((m) => `${m.ugcId}|${m.refId}|${m.ugcStart.toFixed(3)}`).sort()
      const score = scoreMatches(dataset, matches)
      outcomes[way] = {
        seconds: Math.round(seconds * 10) / 10,
        matches: matches.length,
        duplicates: set.length - new Set(set).size,
        ...(slicesAtKill !== undefined && { slicesAtKill }),
        slices: slicesDone(workspace),
        precision: Math.round(score.precision * 10_000) / 10_000,
        recall: Math.round(score.recall * 10_000) / 10_000,
        set,
      }
      init.onProgress?.(++step, 2)
    }
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  const { set: a, ...uninterrupted } = outcomes.uninterrupted!
  const { set: b, ...killed } = outcomes.killed!
  return {
    videos: dataset.videos.length,
    uninterrupted,
    killed,
    sameMatches: a.length === b.length && a.every((m, i) => m === b[i]),
  }
}

/** The section's figures, as `bench.json` holds them. */
export function runsFigures(runs: MatchRunsBench): Record<string, unknown> {
  return {
    'runs.killedAndResumed': {
      videos: runs.videos,
      sameMatches: runs.sameMatches,
      duplicates: runs.killed.duplicates,
      matches: runs.killed.matches,
      slicesAtKill: runs.killed.slicesAtKill,
      slices: runs.killed.slices,
    },
    'runs.seconds': { uninterrupted: runs.uninterrupted.seconds, killedAndResumed: runs.killed.seconds },
    'runs.quality': {
      precision: runs.killed.precision,
      recall: runs.killed.recall,
      uninterruptedPrecision: runs.uninterrupted.precision,
      uninterruptedRecall: runs.uninterrupted.recall,
    },
  }
}

/** The section's lines of the printed table. */
export function runsTable(runs: MatchRunsBench): string {
  const { killed, uninterrupted } = runs
  return (
    `  runs.killedAndResumed               ${runs.videos} videos (shared set + edits) all against all over the real mesh: ` +
    `coordinator SIGKILLed at ${killed.slicesAtKill}/${killed.slices} slices and served again; ` +
    `${killed.matches} matches, ${killed.duplicates} twice, ${runs.sameMatches ? 'the same as' : 'NOT the same as'} ` +
    `the uninterrupted run's ${uninterrupted.matches} (${runs.sameMatches && killed.duplicates === 0 ? 'meets' : 'misses'})\n` +
    `  runs.seconds                        ${killed.seconds} s with the kill and restart, ${uninterrupted.seconds} s without; ` +
    `precision ${killed.precision}, recall ${killed.recall} against the ground truth\n`
  )
}
