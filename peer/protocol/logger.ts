/**
 * Namespaced loggers (`crowdmesh:coordinator`), silent unless the DEBUG environment variable names
 * them (`DEBUG=crowdmesh:*`), as js-libp2p's loggers are. Library code never writes to the console.
 */
export interface Logger {
  (message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
  readonly enabled: boolean
}

/** A logger for `namespace`. */
export function logger(namespace: string): Logger {
  const pattern = typeof process === 'undefined' ? '' : (process.env.DEBUG ?? '')
  const enabled = pattern
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .some((p) =>
      new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(namespace),
    )
  const write = (prefix: string, message: string, args: unknown[]) => {
    if (enabled) process.stderr.write(`${namespace}${prefix} ${message} ${args.map(String).join(' ')}\n`)
  }
  const log = ((message: string, ...args: unknown[]) => write('', message, args)) as Logger
  log.error = (message, ...args) => write(' error', message, args)
  Object.defineProperty(log, 'enabled', { value: enabled })
  return log
}
