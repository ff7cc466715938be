/**
 * A progress bar on stderr for long CLI work. On a terminal it redraws one line; elsewhere (CI logs,
 * pipes) it prints a line at each tenth so logs stay short. Silent when `quiet`.
 */
export interface ProgressBar {
  update(done: number, total: number): void
  done(message?: string): void
}

/** Creates a progress bar labelled `label`. */
export function progressBar(label: string, options: { quiet?: boolean } = {}): ProgressBar {
  const stream = process.stderr
  const tty = stream.isTTY === true
  const started = performance.now()
  let lastTenth = -1
  let lastDraw = 0
  return {
    update(done, total) {
      if (options.quiet === true || total <= 0) return
      const share = Math.min(1, done / total)
      if (tty) {
        const now = performance.now()
        if (now - lastDraw < 80 && share < 1) return
        lastDraw = now
        const width = 30
        const filled = Math.round(share * width)
        const elapsed = (now - started) / 1000
        const eta = share > 0 ? (elapsed / share) * (1 - share) : 0
        stream.write(
          `\r${label} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% ` +
            `${elapsed.toFixed(1)}s elapsed, ~${eta.toFixed(1)}s left `,
        )
      } else {
        const tenth = Math.floor(share * 10)
        if (tenth === lastTenth) return
        lastTenth = tenth
        stream.write(`${label}: ${tenth * 10}%\n`)
      }
    },
    done(message) {
      if (options.quiet === true) return
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      if (tty) stream.write('\r\x1b[K')
      stream.write(`${label}: ${message ?? 'done'} (${seconds}s)\n`)
    },
  }
}
