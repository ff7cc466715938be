import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'
import { spawnGuarded } from '../../peer/protocol/child-process.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * However `crowdmesh start` ends (a signal, an uncaught error, SIGKILL), coturn ends with it and its
 * temp folder (configuration and TURN secret) is removed. Real processes throughout: the CLI as a
 * user starts it, coturn as it runs, /proc to see who is left.
 */

/** A process as /proc shows it. */
interface ProcessEntry {
  pid: number
  ppid: number
  state: string
  comm: string
  cmdline: string[]
}

function readProcess(pid: number): ProcessEntry | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const close = stat.lastIndexOf(')')
    const [state, ppid] = stat.slice(close + 2).split(' ')
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
    return { pid, ppid: Number(ppid), state: state!, comm: stat.slice(stat.indexOf('(') + 1, close), cmdline }
  } catch {
    return undefined
  }
}

/** Every process now, zombies excluded: a zombie has ended (here nobody may reap it). */
function liveProcesses(): ProcessEntry[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProcess(Number(name)))
    .filter((p): p is ProcessEntry => p !== undefined && p.state !== 'Z')
}

/** Live processes whose command line names `text` (the test's own temp folder). */
function processesNaming(text: string): ProcessEntry[] {
  return liveProcesses().filter((p) => p.pid !== process.pid && p.cmdline.some((arg) => arg.includes(text)))
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

interface RunningCli {
  child: ChildProcess
  /** Resolves with the `ready` line's object. */
  ready: Promise<Record<string, unknown>>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  stderr: () => string
}

const temps: string[] = []
const started: ChildProcess[] = []

/** `crowdmesh start` with no participants, staying open, with TMPDIR in a folder of this test. */
async function startCli(nodeArgs: string[] = []): Promise<RunningCli & { tmp: string }> {
  const tmp = await mkdtemp(join(tmpdir(), 'crowdmesh-cleanup-'))
  temps.push(tmp)
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      join(repoRoot, 'scripts', 'cli.ts'),
      ...['start', '--local-participants', '0', '--stay', '--json', '--no-recordings'],
      ...['--dataset', 'synthetic', '--grid', '16', '--out', join(tmp, 'out')],
    ],
    // The event's logger says when it stopped coturn: the orderly stop ran.
    { cwd: repoRoot, env: { ...process.env, TMPDIR: tmp, DEBUG: 'crowdmesh:event' } },
  )
  started.push(child)
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const event = JSON.parse(line) as Record<string, unknown>
      if (event.type === 'ready') resolve(event)
    })
    void exited.then(() => reject(new Error(`the CLI exited before it was ready:\n${stderr}`)))
  })
  // A test that stops the CLI before it is ready does not wait for this.
  ready.catch(() => {})
  return { child, ready, exited, stderr: () => stderr, tmp }
}

/** The CLI's coturn (a child named turnserver) and its folder, once it runs. */
async function coturnOf(cli: { child: ChildProcess }): Promise<{ pid: number; folder: string }> {
  const coturn = await waitFor(
    'coturn to start',
    () => liveProcesses().find((p) => p.ppid === cli.child.pid && p.comm === 'turnserver'),
    30_000,
  )
  const config = coturn.cmdline[coturn.cmdline.indexOf('-c') + 1]!
  return { pid: coturn.pid, folder: dirname(config) }
}

/** Waits until coturn has ended, its folder is gone and nothing started for this test runs. */
async function expectCleanedUp(coturn: { pid: number; folder: string }, tmp: string): Promise<void> {
  await waitFor(
    'coturn to end and its folder to go',
    () => {
      const running = readProcess(coturn.pid)
      return (running === undefined || running.state === 'Z') && !existsSync(coturn.folder)
    },
    10_000,
  )
  await waitFor('every process of the test to end', () => processesNaming(tmp).length === 0, 5000)
}

afterEach(async () => {
  // Whatever a failed test left running is this test's own: end it by pid.
  for (const tmp of temps) for (const p of processesNaming(tmp)) process.kill(p.pid, 'SIGKILL')
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL')
  await Promise.all(temps.splice(0).map((tmp) => rm(tmp, { recursive: true, force: true })))
})

describe('crowdmesh start cleans up its processes', () => {
  it('a SIGKILLed CLI takes coturn and its temp folder with it', async () => {
    const cli = await startCli()
    expect((await cli.ready).turn).toBe(true)
    const coturn = await coturnOf(cli)
    expect(existsSync(join(coturn.folder, 'turnserver.conf'))).toBe(true)
    cli.child.kill('SIGKILL')
    await cli.exited
    await expectCleanedUp(coturn, cli.tmp)
  })

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s the CLI stops the event, coturn included, and ends by that signal',
    async (signal) => {
      const cli = await startCli()
      await cli.ready
      const coturn = await coturnOf(cli)
      cli.child.kill(signal)
      expect(await cli.exited).toEqual({ code: null, signal })
      expect(cli.stderr()).toMatch(/stopped coturn/)
      await expectCleanedUp(coturn, cli.tmp)
    },
  )

  it('a SIGTERM while the event is still starting stops what started', async () => {
    const cli = await startCli()
    const coturn = await coturnOf(cli)
    cli.child.kill('SIGTERM')
    const exit = await cli.exited
    expect(exit.code === 0 && exit.signal === null).toBe(false)
    await expectCleanedUp(coturn, cli.tmp)
  })

  it('an uncaught error stops the event, coturn included, and exits with code 1', async () => {
    const cli = await startCli(['--import', join(repoRoot, 'test', 'support', 'throw-on-signal.ts')])
    await cli.ready
    const coturn = await coturnOf(cli)
    cli.child.kill('SIGUSR2')
    expect(await cli.exited).toEqual({ code: 1, signal: null })
    expect(cli.stderr()).toMatch(/injected uncaught error/)
    expect(cli.stderr()).toMatch(/stopped coturn/)
    await expectCleanedUp(coturn, cli.tmp)
  })
})

describe('spawnGuarded', () => {
  it('runs the program itself (its pid, its exit), and the watchdog leaves with it', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'crowdmesh-cleanup-'))
    temps.push(tmp)
    const folder = join(tmp, 'own')
    await mkdir(folder)
    const child = spawnGuarded(
      'sleep',
      ['30'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
      { removeOnOrphan: folder },
    )
    started.push(child)
    const closed = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
    const program = await waitFor('sleep to run', () => readProcess(child.pid!)?.comm === 'sleep', 5000)
    expect(program).toBe(true)
    // The watchdog is the program's child until it leaves.
    expect(liveProcesses().some((p) => p.ppid === child.pid && p.cmdline.includes(folder))).toBe(true)
    child.kill('SIGTERM')
    expect(await closed).toEqual({ code: null, signal: 'SIGTERM' })
    await waitFor('the watchdog to leave', () => processesNaming(folder).length === 0, 5000)
    // An orderly end leaves the folder to its owner.
    expect(existsSync(folder)).toBe(true)
  })

  it('fails as spawn does (ENOENT) for a command that is not there', async () => {
    const child = spawnGuarded('crowdmesh-no-such-command', [], { stdio: ['ignore', 'ignore', 'ignore'] })
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve))
    expect(error.code).toBe('ENOENT')
  })
})

describe('the recording pipeline’s ffmpeg children', () => {
  it('end when their parent is SIGKILLed (stdin reaches its end)', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'crowdmesh-cleanup-'))
    temps.push(tmp)
    const child = spawn(process.execPath, [join(repoRoot, 'test', 'support', 'media-stages-process.ts')], {
      env: { ...process.env, TMPDIR: tmp },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    started.push(child)
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', () => resolve())
      child.once('exit', (code) => reject(new Error(`the stages' process exited with ${code}`)))
    })
    const ffmpegs = liveProcesses().filter((p) => p.ppid === child.pid && p.comm === 'ffmpeg')
    expect(ffmpegs).toHaveLength(2)
    child.kill('SIGKILL')
    await waitFor(
      'both ffmpeg processes to end',
      () => ffmpegs.every((f) => (readProcess(f.pid)?.state ?? 'Z') === 'Z'),
      5000,
    )
  })
})
