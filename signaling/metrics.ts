/**
 * The signaling server's counters and gauges in the Prometheus text exposition format (version
 * 0.0.4), with HELP and TYPE lines as prom-client writes them. The signaling server runs alone too
 * (a venue's front door for several coordinators), so it keeps this small counter of its own; the
 * coordinator's and the server peer's metrics use prom-client (`EventMetrics`, `ServerMetrics`).
 */
export class Metrics {
  private readonly counters = new Map<string, Map<string, number>>()
  private readonly gauges = new Map<string, number>()

  /** Adds `by` to a counter (a name ending in `_total`), with optional labels. */
  count(name: string, labels: Record<string, string> = {}, by = 1): void {
    let series = this.counters.get(name)
    if (series === undefined) {
      series = new Map()
      this.counters.set(name, series)
    }
    const key = labelText(labels)
    series.set(key, (series.get(key) ?? 0) + by)
  }

  /** Sets a gauge. */
  set(name: string, value: number): void {
    this.gauges.set(name, value)
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = []
    for (const [name, series] of this.counters) {
      lines.push(`# HELP ${name} ${signalingMetricHelp[name] ?? name.replace(/_/g, ' ')}`)
      lines.push(`# TYPE ${name} counter`)
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`)
    }
    for (const [name, value] of this.gauges) {
      lines.push(`# HELP ${name} ${signalingMetricHelp[name] ?? name.replace(/_/g, ' ')}`)
      lines.push(`# TYPE ${name} gauge`)
      lines.push(`${name} ${value}`)
    }
    return `${lines.join('\n')}\n`
  }
}

/** What each of the signaling server's series means (`# HELP`). */
export const signalingMetricHelp: Record<string, string> = {
  crowdmesh_signaling_requests_total: 'HTTP requests answered, by status.',
  crowdmesh_signaling_events_created_total: 'Events created.',
  crowdmesh_signaling_bootstraps_total: 'Bootstraps handed to joining peers.',
  crowdmesh_signaling_joins_total: 'Join links opened, by result (ok, refused).',
  crowdmesh_signaling_signals_total: 'Signaling messages relayed between peers.',
  crowdmesh_signaling_signals_refused_total: 'Signaling messages refused, by reason.',
  crowdmesh_signaling_events: 'Events known.',
  crowdmesh_signaling_peers: 'Signaling connections open.',
}

function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels)
  if (entries.length === 0) return ''
  const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`
}
