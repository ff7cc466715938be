// parse-prometheus-text-format (the Prometheus text exposition format, parsed as Prometheus's own
// parser reads it, into metric families) ships no types: what the tests read of it.
declare module 'parse-prometheus-text-format' {
  export interface PrometheusMetric {
    value?: string
    labels?: Record<string, string>
    /** Histograms and summaries. */
    count?: string
    sum?: string
    buckets?: Record<string, string>
  }
  export interface PrometheusFamily {
    name: string
    help: string
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
    metrics: PrometheusMetric[]
  }
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[]
}
