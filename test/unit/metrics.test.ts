import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import parsePrometheus from 'parse-prometheus-text-format'
import { describe, expect, it } from 'vitest'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import { ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { imageFilterKind } from '../../peer/jobs/image-filter/index.ts'
import type { AnyJobKind, JobSpec } from '../../peer/jobs/kind.ts'
import { EventMetrics } from '../../peer/mesh/event-metrics.ts'
import { ServerMetrics } from '../../peer/server/server-metrics.ts'
import { LiveCrowd } from '../../peer/simulator/live-crowd.ts'
import { signalingMetricHelp } from '../../signaling/metrics.ts'
import { repoRoot } from '../support/fixtures.ts'
import { manualClock } from '../support/manual-clock.ts'

/*
 * The Prometheus metrics: the coordinator's exposition parses with a Prometheus text-format parser
 * and its counters follow the work; the Grafana dashboard in docs/ reads only series that exist.
 */

const spec: JobSpec = {
  jobId: 'photos',
  kind: imageFilterKind.name,
  version: imageFilterKind.version,
  description: imageFilterKind.simulation.job('photos', 4096),
}

function coordinatorMetrics() {
  const time = manualClock()
  const coordinator = new Coordinator(
    { jobs: [{ spec, kind: imageFilterKind as AnyJobKind, sinks: ledgerSinks() }] },
    { clock: time.clock },
  )
  const crowd = new LiveCrowd(coordinator, time.clock)
  return { time, coordinator, crowd, metrics: new EventMetrics(coordinator, crowd) }
}

describe('Prometheus metrics', () => {
  it("the coordinator's parse, and its counters and histograms follow the work", async () => {
    const { time, coordinator, crowd, metrics } = coordinatorMetrics()
    const read = async () => {
      const families = parsePrometheus(await metrics.render())
      const sum = (name: string, labels: Record<string, string> = {}) =>
        (families.find((f) => f.name === name)?.metrics ?? [])
          .filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
          .reduce((total, m) => total + Number(m.value ?? 0), 0)
      return { families, sum }
    }
    const before = await read()
    expect(before.sum('crowdmesh_units_total')).toBe(0)
    crowd.join('p1', { threadsPerSec: 50_000, agent: 'crowdmesh-web/webgl Firefox 133' })
    crowd.join('p2', { threadsPerSec: 50_000, agent: 'crowdmesh-node/v24.9.0' })
    for (let i = 0; i < 10; i++)
      for (const input of imageFilterKind.simulation.inputs(spec as never, i, 4096))
        coordinator.addInput('photos', i, input)
    time.advance(10_000)
    const after = await read()
    expect(after.sum('crowdmesh_participants', { kind: 'browser', backend: 'webgl' })).toBe(1)
    expect(after.sum('crowdmesh_participants', { kind: 'node', backend: 'cpu' })).toBe(1)
    expect(after.sum('crowdmesh_units_total', { job: 'photos' })).toBe(10 * 4096)
    expect(after.sum('crowdmesh_rounds_total', { job: 'photos', outcome: 'completed' })).toBe(10)
    expect(after.sum('crowdmesh_leases_granted_total', { job: 'photos' })).toBeGreaterThanOrEqual(
      after.sum('crowdmesh_results_counted_total', { job: 'photos' }),
    )
    const latency = after.families.find((f) => f.name === 'crowdmesh_round_latency_seconds')!
    expect(latency.type).toBe('HISTOGRAM')
    expect(Number(latency.metrics[0]!.buckets!['+Inf'])).toBe(10)
    // The process's own figures, as prom-client's default collectors give them.
    expect(after.families.some((f) => f.name === 'process_cpu_user_seconds_total')).toBe(true)
    crowd.stop()
    metrics.close()
  })

  it('the Grafana dashboard queries only series the coordinator, the server peer and signaling export', async () => {
    const { crowd, metrics } = coordinatorMetrics()
    const server = new ServerMetrics({
      uploading: () => 0,
      pipelines: () => 0,
      storage: () => ({ usedBytes: 0, maxTotalBytes: 1 }),
    })
    const exported = new Set([
      ...(await metrics.registry.getMetricsAsJSON()).map((m) => m.name),
      ...(await server.registry.getMetricsAsJSON()).map((m) => m.name),
      ...Object.keys(signalingMetricHelp),
    ])
    const dashboard = JSON.parse(
      await readFile(join(repoRoot, 'docs', 'grafana-dashboard.json'), 'utf8'),
    ) as {
      panels: { title: string; targets: { expr: string }[] }[]
    }
    expect(dashboard.panels.length).toBeGreaterThan(8)
    for (const panel of dashboard.panels)
      for (const { expr } of panel.targets)
        for (const name of expr.match(/crowdmesh_\w+/g) ?? [])
          expect(exported.has(name.replace(/_bucket$/, '')), `${panel.title}: ${name}`).toBe(true)
    crowd.stop()
    metrics.close()
  })
})
