import { spawn } from 'node:child_process'
import { AbortError } from './errors.ts'

/** What a tool printed and how it ended. */
export interface ToolRun {
  stdout: string
  stderr: string
  code: number | null
}

/** Options of `runTool`. */
export interface RunToolInit {
  signal?: AbortSignal | undefined
  /** Characters of stdout kept (default 1 MiB) and of stderr (default 8 KiB): a tool cannot fill memory. */
  maxStdout?: number
  maxStderr?: number
  /** The error when the tool cannot be started (not installed, say). */
  cannotRun: (message: string) => Error
}

/**
 * Runs a command-line tool (ffprobe, ffmpeg) to its end, keeping a bounded share of what it
 * prints. Rejects with `AbortError` when aborted (the child is killed), and with `cannotRun`'s
 * error when it cannot be started; a tool that runs and fails resolves with its exit code.
 */
export function runTool(command: string, args: readonly string[], init: RunToolInit): Promise<ToolRun> {
  const { signal } = init
  if (signal?.aborted === true) return Promise.reject(new AbortError())
  const maxStdout = init.maxStdout ?? 1 << 20
  const maxStderr = init.maxStderr ?? 8192
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (stdout.length < maxStdout) stdout += text
    })
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < maxStderr) stderr += text
    })
    child.once('error', (error) =>
      reject(
        signal?.aborted === true
          ? new AbortError()
          : init.cannotRun(`cannot run ${command} (${error.message})`),
      ),
    )
    child.once('close', (code) =>
      signal?.aborted === true ? reject(new AbortError()) : resolve({ stdout, stderr, code }),
    )
  })
}
