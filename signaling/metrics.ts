/**
 * Counters and gauges rendered in the Prometheus text exposition format (version 0.0.4): enough for
 * an operator's Prometheus or Grafana agent to scrape `/metrics`, without a client library.
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
      lines.push(`# TYPE ${name} counter`)
      for (const [labels, value] of series) lines.push(`${name}${labels} ${value}`)
    }
    for (const [name, value] of this.gauges) {
      lines.push(`# TYPE ${name} gauge`)
      lines.push(`${name} ${value}`)
    }
    return `${lines.join('\n')}\n`
  }
}

function labelText(labels: Record<string, string>): string {
  const entries = Object.entries(labels)
  if (entries.length === 0) return ''
  const escape = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
  return `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`
}
