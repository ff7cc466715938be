/**
 * Namespaced loggers (`crowdmesh:coordinator`), silent unless the DEBUG environment variable names
 * them (`DEBUG=crowdmesh:*`), as js-libp2p's loggers are. Library code never writes to the console.
 *
 * `configureLogs({ format: 'json' })` (the CLI's `--log-format json`) writes one JSON object per
 * line instead — `{"time","level","namespace","message"}` — for a log shipper; errors of every
 * namespace are written then, and the event's own lines (`jsonDefaultNamespaces`) unless DEBUG says
 * otherwise.
 */
export interface Logger {
  (message: string, ...args: unknown[]): void
  error(message: string, ...args: unknown[]): void
  readonly enabled: boolean
}

/** How logs are written. */
export type LogFormat = 'text' | 'json'

/** What JSON logs say besides errors when DEBUG is not set: the operator's view of an event. */
export const jsonDefaultNamespaces =
  'crowdmesh:event,crowdmesh:signaling,crowdmesh:dedicated,crowdmesh:server,crowdmesh:relay:*,crowdmesh:console'

const settings = { format: 'text' as LogFormat, version: 0 }

/** Sets how every logger writes from now on (the loggers made before included). */
export function configureLogs(options: { format: LogFormat }): void {
  settings.format = options.format
  settings.version++
}

function debugPattern(): string {
  const pattern = typeof process === 'undefined' ? undefined : process.env.DEBUG
  if (pattern !== undefined && pattern !== '') return pattern
  return settings.format === 'json' ? jsonDefaultNamespaces : ''
}

function matches(pattern: string, namespace: string): boolean {
  return pattern
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .some((p) =>
      new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(namespace),
    )
}

/** A logger for `namespace`. */
export function logger(namespace: string): Logger {
  let seen = -1
  let enabled = false
  const isEnabled = () => {
    if (seen !== settings.version) {
      seen = settings.version
      enabled = matches(debugPattern(), namespace)
    }
    return enabled
  }
  const write = (level: 'info' | 'error', message: string, args: unknown[]) => {
    const json = settings.format === 'json'
    if (!isEnabled() && !(json && level === 'error')) return
    const text = args.length === 0 ? message : `${message} ${args.map(String).join(' ')}`
    process.stderr.write(
      json
        ? `${JSON.stringify({ time: new Date().toISOString(), level, namespace, message: text })}\n`
        : `${namespace}${level === 'error' ? ' error' : ''} ${text}\n`,
    )
  }
  const log = ((message: string, ...args: unknown[]) => write('info', message, args)) as Logger
  log.error = (message, ...args) => write('error', message, args)
  Object.defineProperty(log, 'enabled', { get: isEnabled })
  return log
}
