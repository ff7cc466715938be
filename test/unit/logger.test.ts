import { afterEach, describe, expect, it, vi } from 'vitest'
import { configureLogs, logger } from '../../peer/protocol/logger.ts'

/*
 * Logs: silent text by default; `--log-format json` writes one JSON object per line, every error and
 * the event's own namespaces, for a log shipper.
 */

afterEach(() => {
  configureLogs({ format: 'text' })
  vi.unstubAllEnvs()
  vi.restoreAllMocks()
})

function captured(): string[] {
  const lines: string[] = []
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk))
    return true
  })
  return lines
}

describe('logs', () => {
  it('are silent by default, and JSON lines with --log-format json (loggers made before included)', () => {
    vi.stubEnv('DEBUG', '')
    const event = logger('crowdmesh:event')
    const coordinator = logger('crowdmesh:coordinator')
    const lines = captured()
    event('event e1 ready')
    coordinator.error('a round failed')
    expect(lines).toEqual([])
    configureLogs({ format: 'json' })
    event('event e1 ready', 'at', 3)
    coordinator('every lease, not wanted by default')
    coordinator.error('a round failed')
    const parsed = lines.map((line) => {
      expect(line.endsWith('\n')).toBe(true)
      return JSON.parse(line) as Record<string, string>
    })
    expect(parsed.map(({ time: _time, ...rest }) => rest)).toEqual([
      { level: 'info', namespace: 'crowdmesh:event', message: 'event e1 ready at 3' },
      { level: 'error', namespace: 'crowdmesh:coordinator', message: 'a round failed' },
    ])
    expect(Number.isNaN(Date.parse(parsed[0]!.time!))).toBe(false)
  })

  it('follow DEBUG when it names namespaces', () => {
    vi.stubEnv('DEBUG', 'crowdmesh:coordinator')
    configureLogs({ format: 'json' })
    const lines = captured()
    logger('crowdmesh:coordinator')('a lease')
    logger('crowdmesh:event')('not named')
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['a lease'])
  })
})
