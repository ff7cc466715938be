import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { DatabaseSync } from 'node:sqlite'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  loadMatchingDataset,
  type MatchingDataset,
  scoreMatches,
} from '../../peer/jobs/match/ground-truth.ts'
import type { Match } from '../../peer/jobs/match/matcher.ts'
import { readResults } from '../../peer/pool/results-store.ts'
import { launchChromium } from '../../scripts/chromium.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * A match run at scale's machinery on the real mesh (issue 15), through the CLI as an operator runs
 * it: `crowdmesh runs create`, then `runs serve` (an event, one Node participant process, one
 * result-writer process on the operator's link, the dashboard), SIGKILLed once the first slices are
 * done, then served again to the end. The results store must hold the ground truth's matches, each
 * exactly once; the dashboard, in headless Chromium, must show the run and change its priority in
 * the pool. `CROWDMESH_SCREENSHOT=FILE` saves the dashboard as the README shows it.
 */

const cli = join(repoRoot, 'bin', 'crowdmesh.js')
const datasetDir = join(repoRoot, '..', 'shared', 'data', 'video-matching')
const distractors = ['asl-again.mkv', 'bottle-detection.mp4']
let dataset: MatchingDataset
let scratch: string
let workspace: string
let browser: Browser
const children: ChildProcess[] = []
/** 10 user videos × 5 reference shards. */
const slices = 50

/** A `runs serve` process and its JSON lines. */
function serve(...extra: string[]): {
  child: ChildProcess
  lines: Record<string, unknown>[]
  exited: Promise<number | null>
} {
  const child = spawn(
    process.execPath,
    [
      cli,
      'runs',
      'serve',
      '--workspace',
      workspace,
      '--participants',
      '1',
      '--writers',
      '1',
      '--json',
      ...extra,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(child)
  const lines: Record<string, unknown>[] = []
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>)
    } catch {
      // not a JSON line
    }
  })
  child.stderr.resume()
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, lines, exited }
}

async function until<T>(
  what: string,
  probe: () => T | undefined,
  timeoutMs = 120_000,
  everyMs = 50,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Reads the pool (the coordinator writes it meanwhile: WAL lets a reader in). */
function poolQuery<T>(sql: string): T[] {
  const db = new DatabaseSync(join(workspace, 'pool.db'), { readOnly: true })
  try {
    return db.prepare(sql).all() as T[]
  } catch {
    return []
  } finally {
    db.close()
  }
}

const matchTasks = (state: number) =>
  poolQuery<{ n: number }>(
    `SELECT COUNT(*) AS n FROM tasks WHERE kind = 'video-match' AND state = ${state}`,
  )[0]?.n ?? 0

async function openDashboard(url: string): Promise<Page> {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 560 } })).newPage()
  await page.goto(url)
  await page.locator('section.run[data-run="demo"]').waitFor({ timeout: 30_000 })
  return page
}

beforeAll(async () => {
  dataset = await loadMatchingDataset(datasetDir)
  scratch = await mkdtemp(join(tmpdir(), 'crowdmesh-match-runs-'))
  workspace = join(scratch, 'workspace')
  // Every video of the ground truth (the chair and its six copies, the doorknob) and two distractors.
  const videos = join(scratch, 'videos')
  await mkdir(join(videos, 'tmk'), { recursive: true })
  await mkdir(join(videos, 'distractors'), { recursive: true })
  for (const id of dataset.videos.filter((v) => v.startsWith('tmk/')))
    await symlink(join(datasetDir, id), join(videos, id))
  for (const name of distractors)
    await symlink(join(datasetDir, 'distractors', name), join(videos, 'distractors', name))
  const created = spawnSync(
    process.execPath,
    [
      cli,
      'runs',
      'create',
      'demo',
      '--ugc',
      videos,
      '--refs',
      videos,
      '--workspace',
      workspace,
      '--shard-size',
      '2',
      '--json',
    ],
    { cwd: repoRoot, encoding: 'utf8' },
  )
  if (created.status !== 0) throw new Error(`runs create: ${created.stderr}`)
  browser = await launchChromium()
}, 120_000)

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await browser?.close()
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
})

describe('match runs served from the pool', () => {
  it('survives the coordinator SIGKILLed mid-run: every ground-truth match is written exactly once', async () => {
    // 10 videos, 5 shards of 2 references: 10 fingerprint tasks, then 50 slices.
    const first = serve('--dashboard', '0')
    const url = (await until('the dashboard', () => first.lines.find((l) => l.type === 'dashboard')))
      .url as string
    const page = await openDashboard(url)
    // The operator raises the run's priority on the page: the pool's waiting tasks take it.
    // The page redraws each run every second: a redraw between typing and Enter sends the old value
    // from a new input. The operator sees it and types again; so does the test.
    const priority = page.locator('section.run[data-run="demo"] input[name="priority"]')
    const prioritySet = () =>
      poolQuery<{ priority: number }>(`SELECT priority FROM run_priorities WHERE run = 'demo'`)[0]
        ?.priority === 7
        ? true
        : undefined
    for (let attempt = 1; ; attempt++) {
      await priority.fill('7')
      if ((await priority.inputValue()) === '7') await priority.press('Enter')
      const set = await until('the new priority in the pool', prioritySet, 10_000).catch(() => false)
      if (set) break
      if (attempt === 5) throw new Error('the new priority never reached the pool')
    }
    const stale = poolQuery<{ n: number }>(
      `SELECT COUNT(*) AS n FROM tasks WHERE state IN (0, 1) AND priority != 7`,
    )
    expect(stale[0]?.n).toBe(0)
    // The first slices are done: the coordinator dies without a word, its children with it.
    await until('a first slice done', () => (matchTasks(3) >= 1 ? true : undefined))
    const screenshot = process.env.CROWDMESH_SCREENSHOT
    if (screenshot !== undefined) {
      // The README's picture: the run mid-way (its kill then comes a few slices later).
      await expect
        .poll(() => page.locator('section.run .figures').innerText(), { timeout: 30_000 })
        .toMatch(/queued\s+([4-9]|\d\d) \//)
      await page.screenshot({ path: screenshot, fullPage: true })
    }
    await page.context().close()
    first.child.kill('SIGKILL')
    await first.exited
    const doneAtKill = matchTasks(3)
    expect(doneAtKill).toBeGreaterThan(0)
    expect(doneAtKill).toBeLessThan(slices)

    const second = serve('--dashboard', '0', '--keep')
    const url2 = (await until('the dashboard', () => second.lines.find((l) => l.type === 'dashboard')))
      .url as string
    // Done when every slice is done and every result acknowledged by the writer.
    await until(
      'the run to finish and every result to be written',
      () =>
        matchTasks(3) === slices &&
        (poolQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM outbox`)[0]?.n ?? 1) === 0
          ? true
          : undefined,
      180_000,
      250,
    )
    const { matches, tasks } = readResults(join(workspace, 'results.db'))
    expect(tasks).toBe(slices)
    const score = scoreMatches(dataset, matches)
    expect(score.falsePositives).toEqual([])
    expect(score.missed).toEqual([])
    expect(score.pairs).toBe(21)
    // Each direction of each pair once: 42 matches, no pair twice.
    expect(matches).toHaveLength(42)
    expect(new Set(matches.map((m) => `${m.ugcId}\n${m.refId}`)).size).toBe(42)

    // The dashboard shows the finished run, what it found, and who computed it with what cache hits.
    const done = await openDashboard(url2)
    const run = done.locator('section.run[data-run="demo"]')
    await run.locator('.state.done').waitFor({ timeout: 10_000 })
    await expect.poll(() => run.locator('.figures').innerText()).toMatch(/matches found\s+42/)
    expect(await run.locator('input[name="priority"]').inputValue()).toBe('7')
    expect(await run.locator('table tr').count()).toBeGreaterThan(1)
    expect(await run.locator('table').innerText()).toMatch(/\d+ %/)
    await done.context().close()

    // The store answers queries by user video.
    const lookup = spawnSync(
      process.execPath,
      [
        cli,
        'matches',
        '--ugc',
        'tmk/chair-orig-22-sd-bar.mp4',
        '--store',
        join(workspace, 'results.db'),
        '--json',
      ],
      { cwd: repoRoot, encoding: 'utf8' },
    )
    expect(lookup.status).toBe(0)
    const found = (JSON.parse(lookup.stdout) as { matches: Match[] }).matches
    expect(found.map((m) => m.refId).sort()).toEqual(
      dataset.videos.filter((v) => v.startsWith('tmk/chair') && v !== 'tmk/chair-orig-22-sd-bar.mp4').sort(),
    )
    // Two more videos while it serves, as user videos and as references: a new shard, matched
    // against every user video, and the new user videos against every shard. Nothing is redone.
    const more = join(scratch, 'more', 'distractors')
    await mkdir(more, { recursive: true })
    for (const name of ['asl-book.mkv', 'asl-bird.mkv'])
      await symlink(join(datasetDir, 'distractors', name), join(more, name))
    const extended = spawnSync(
      process.execPath,
      [
        cli,
        'runs',
        'extend',
        'demo',
        '--ugc',
        join(scratch, 'more'),
        '--refs',
        join(scratch, 'more'),
        '--workspace',
        workspace,
        '--json',
      ],
      { cwd: repoRoot, encoding: 'utf8' },
    )
    expect(extended.status, extended.stderr).toBe(0)
    expect(JSON.parse(extended.stdout)).toEqual({ added: 2, entries: 12 })
    const allSlices = 12 * 6
    await until(
      'the extension to be matched and written',
      () =>
        matchTasks(3) === allSlices &&
        (poolQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM outbox`)[0]?.n ?? 1) === 0
          ? true
          : undefined,
      180_000,
      250,
    )
    const after = readResults(join(workspace, 'results.db'))
    expect(after.tasks).toBe(allSlices)
    expect(after.matches).toHaveLength(42)
    // Every slice was granted once: the extension redid nothing, and no slice drawn while the new
    // list was being published was refused (each retry shows with its reason).
    expect(poolQuery(`SELECT id, attempts, reason FROM tasks WHERE attempts > 0`)).toEqual([])

    // It stops in order and ends by the signal it was asked to end by (a shell sees 143).
    second.child.kill('SIGTERM')
    await second.exited
    expect(second.child.signalCode).toBe('SIGTERM')
  }, 360_000)
})
