import { type ChildProcess, type IOType, spawn, type SpawnOptions } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, isAbsolute, join, resolve } from 'node:path'
import type { Readable, Writable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { orphanGuardDefaults } from './defaults.ts'
import { InvalidOptionError } from './errors.ts'

/*
 * Children that die with their parent, however the parent dies. A SIGKILLed or crashed Node process
 * runs no `exit` handler, and Linux does not end a process's children with it: coturn would keep
 * relaying, with its configuration and TURN secret in a temp folder. So each guarded child starts
 * through /bin/sh, which forks a watchdog and then `exec`s the program (the child's pid is the
 * program's pid). The watchdog reads a pipe whose other end only the parent holds: when the parent
 * saw the program end it writes a line and the watchdog leaves; end of file instead means the parent
 * died, and the watchdog ends the program (SIGTERM, then SIGKILL after a grace) and removes the
 * program's temp folder. Linux, or any POSIX system with /bin/sh (there without the /proc check
 * that a pid still names the same process).
 */

const watchdogScript = `
dir=$1 tenths=$2
shift 2
pid=$$
(
  trap '' HUP INT TERM
  exec </dev/null >/dev/null 2>&1
  set -f
  # The start time tells the program from a later process that reuses its pid; a zombie is dead.
  started() {
    [ -r "/proc/$pid/stat" ] || return 1
    stat=$(cat "/proc/$pid/stat") || return 1
    set -- \${stat##*") "}
    [ "$1" != Z ] || return 1
    shift 19
    echo "$1"
  }
  if [ -d /proc/self ]; then
    identity=$(started)
    alive() { [ -n "$identity" ] && [ "$(started)" = "$identity" ]; }
  else
    alive() { kill -0 "$pid" 2>/dev/null; }
  fi
  # A line: the parent saw the program end. End of file: the parent is gone.
  if read -r _ <&3; then exit 0; fi
  if alive; then
    kill -TERM "$pid"
    n=0
    while [ "$n" -lt "$tenths" ] && alive; do sleep 0.1 2>/dev/null || sleep 1; n=$((n + 1)); done
    if alive; then kill -KILL "$pid"; fi
  fi
  if [ -n "$dir" ]; then rm -rf -- "$dir"; fi
) &
exec "$@" 3<&-
`

/** What the guard does when the parent dies. */
export interface OrphanGuardInit {
  /**
   * A folder of the child's own (absolute path) that the watchdog removes once the child is gone,
   * when the parent died without stopping it. Removing it on an orderly stop is the caller's work.
   */
  removeOnOrphan?: string
  /** How long the child may take to end after SIGTERM before SIGKILL, ms (`orphanGuardDefaults`: 3000). */
  graceMs?: number
}

type StreamOf<T extends IOType, S> = T extends 'pipe' | 'overlapped' ? S : null
/** A guarded child, with the streams its stdio settings give it, as Node's own `spawn` types them. */
export type GuardedChild<I extends IOType, O extends IOType, E extends IOType> = ChildProcess & {
  stdin: StreamOf<I, Writable>
  stdout: StreamOf<O, Readable>
  stderr: StreamOf<E, Readable>
}

/**
 * `spawn`, but the child ends (and `removeOnOrphan` is removed) when this process dies for any
 * reason, SIGKILL included. `child.pid` is the program's pid; its exit code and signal are its own.
 * A command not found on PATH is spawned plainly, so it fails with Node's usual `ENOENT` error event.
 */
export function spawnGuarded<I extends IOType, O extends IOType, E extends IOType>(
  command: string,
  args: readonly string[],
  options: Omit<SpawnOptions, 'stdio'> & { stdio: readonly [I, O, E] },
  guard: OrphanGuardInit = {},
): GuardedChild<I, O, E> {
  const dir = guard.removeOnOrphan ?? ''
  // The watchdog runs `rm -rf` on it: only an absolute path below the root.
  if (dir !== '' && (!isAbsolute(dir) || dir.split('/').filter(Boolean).length === 0))
    throw new InvalidOptionError(`removeOnOrphan must be an absolute folder below /, got "${dir}"`)
  const program = findExecutable(command, options.env?.PATH ?? process.env.PATH ?? '', options.cwd)
  // Not there: Node's own ENOENT. Windows has no /bin/sh (and crowdmesh's coturn is Debian's).
  if (program === undefined || process.platform === 'win32')
    return spawn(command, args, { ...options, stdio: [...options.stdio] }) as GuardedChild<I, O, E>
  const tenths = String(Math.ceil((guard.graceMs ?? orphanGuardDefaults.graceMs) / 100))
  const child = spawn('/bin/sh', ['-c', watchdogScript, 'crowdmesh-guard', dir, tenths, program, ...args], {
    ...options,
    stdio: [...options.stdio, 'pipe'],
  })
  const watchdog = child.stdio[3] as (Readable & Writable) | null | undefined
  if (watchdog != null) {
    // The watchdog may be gone already (killed with its process group): nothing then to release.
    watchdog.on('error', () => {})
    // Reading lets the socket see the watchdog leave and close, so the child's `close` event comes.
    watchdog.resume()
    child.once('exit', () => watchdog.end('\n'))
  }
  return child as GuardedChild<I, O, E>
}

/** `command` resolved on `pathVariable` as `execvp` would, or undefined when it is not there. */
export function findExecutable(
  command: string,
  pathVariable: string,
  cwd: string | URL = '.',
): string | undefined {
  const executable = (candidate: string) => {
    try {
      accessSync(candidate, constants.X_OK)
      return true
    } catch {
      return false
    }
  }
  if (command.includes('/'))
    return executable(resolve(typeof cwd === 'string' ? cwd : fileURLToPath(cwd), command))
      ? command
      : undefined
  for (const dir of pathVariable.split(delimiter)) {
    if (dir === '') continue
    const candidate = join(dir, command)
    if (executable(candidate)) return candidate
  }
  return undefined
}
