import { listen } from '../protocol/listen.ts'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Coordinator, FrameReport } from '../coordinator/coordinator.ts'
import type { ValidationCounters } from '../coordinator/validation.ts'
import type { CoordinatorHost } from './coordinator-host.ts'

/** Round latency buckets, seconds: a live frame's budget is seconds, a batch round's minutes. */
const latencyBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300]

/**
 * The coordinator's Prometheus metrics, in prom-client's conventions (served by the event's
 * signaling server at `/metrics`): participants by kind and backend; leases, results and units by
 * job; round latency histograms; units queued and rounds open per job; validation checks and
 * quarantines; and the process's own figures from prom-client's default collectors. Counters follow
 * the coordinator's events; gauges are read when scraped. `close()` removes every listener.
 */
export class EventMetrics {
  readonly registry = new Registry()
  private readonly unlisten: (() => void)[] = []

  constructor(coordinator: Coordinator, host: Pick<CoordinatorHost, 'connected'>) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    const leases = new Counter({
      name: 'crowdmesh_leases_granted_total',
      help: 'Tasks leased to participants (backup copies and replicas included), by job.',
      labelNames: ['job'],
      registers,
    })
    const requeued = new Counter({
      name: 'crowdmesh_leases_requeued_total',
      help: 'Leases whose task went back to the queue (expired, failed, participant gone), by job.',
      labelNames: ['job'],
      registers,
    })
    const results = new Counter({
      name: 'crowdmesh_results_counted_total',
      help: 'Results counted, by job.',
      labelNames: ['job'],
      registers,
    })
    const rejected = new Counter({
      name: 'crowdmesh_results_rejected_total',
      help: 'Results refused (malformed, not its lease, refuted by a check).',
      registers,
    })
    const units = new Counter({
      name: 'crowdmesh_units_total',
      help: "Units of each job's kind computed and counted.",
      labelNames: ['job'],
      registers,
    })
    const rounds = new Counter({
      name: 'crowdmesh_rounds_total',
      help: 'Rounds ended, by job and outcome (completed, dropped).',
      labelNames: ['job', 'outcome'],
      registers,
    })
    const latency = new Histogram({
      name: 'crowdmesh_round_latency_seconds',
      help: "From a round's first input to its outcome (or its drop), by job.",
      labelNames: ['job'],
      buckets: latencyBuckets,
      registers,
    })
    const quarantined = new Counter({
      name: 'crowdmesh_participants_quarantined_total',
      help: 'Identities quarantined after a check proved a result of theirs wrong.',
      registers,
    })
    new Gauge({
      name: 'crowdmesh_participants',
      help: 'Participants connected, by agent kind (browser, node) and backend (webgl, cpu).',
      labelNames: ['kind', 'backend'],
      registers,
      collect() {
        this.reset()
        for (const p of host.connected()) {
          const browser = p.agent.startsWith('crowdmesh-web')
          this.inc({ kind: browser ? 'browser' : 'node', backend: /webgl/i.test(p.agent) ? 'webgl' : 'cpu' })
        }
      },
    })
    new Gauge({
      name: 'crowdmesh_leases_active',
      help: 'Leases outstanding.',
      registers,
      collect() {
        this.set(coordinator.activeLeases)
      },
    })
    new Gauge({
      name: 'crowdmesh_units_queued',
      help: 'Units waiting to be leased, by job.',
      labelNames: ['job'],
      registers,
      collect() {
        this.reset()
        for (const job of coordinator.jobStates()) this.set({ job: job.jobId }, job.queuedUnits)
      },
    })
    new Gauge({
      name: 'crowdmesh_rounds_open',
      help: 'Rounds neither complete nor dropped, by job.',
      labelNames: ['job'],
      registers,
      collect() {
        this.reset()
        for (const job of coordinator.jobStates()) this.set({ job: job.jobId }, job.openRounds)
      },
    })
    new Gauge({
      name: 'crowdmesh_job_paused',
      help: '1 while the operator has paused the job.',
      labelNames: ['job'],
      registers,
      collect() {
        this.reset()
        for (const job of coordinator.jobStates()) this.set({ job: job.jobId }, job.paused ? 1 : 0)
      },
    })
    // The validation counters are kept by the coordinator: counters that follow them when scraped.
    const seen = new Map<string, number>()
    new Counter({
      name: 'crowdmesh_validation_total',
      help: 'Result validation by what was done: checks, unitsChecked, replicas, resultsWithdrawn, … (README, "Trust").',
      labelNames: ['what'],
      registers,
      collect() {
        const counters: ValidationCounters = coordinator.validationState().validation
        for (const [what, value] of Object.entries(counters) as [string, number][]) {
          const before = seen.get(what) ?? 0
          // Every series from the first scrape on, at 0 until it moves.
          this.inc({ what }, Math.max(0, value - before))
          seen.set(what, value)
        }
      },
    })

    const on = (name: string, listener: (...args: never[]) => void) =>
      this.unlisten.push(listen(coordinator, name, listener))
    on('leaseGranted', ({ jobId }: { jobId: string }) => leases.inc({ job: jobId }))
    on('leaseRequeued', (lease: { block: { jobId: string } }) => requeued.inc({ job: lease.block.jobId }))
    on('blockDone', ({ block, threads }: { block: { jobId: string }; threads: number }) => {
      results.inc({ job: block.jobId })
      units.inc({ job: block.jobId }, threads)
    })
    on('resultRejected', () => rejected.inc())
    const ended = (report: FrameReport) => {
      rounds.inc({ job: report.jobId, outcome: report.dropped ? 'dropped' : 'completed' })
      latency.observe({ job: report.jobId }, report.latencyMs / 1000)
    }
    on('frameComplete', (_outcome: unknown, report: FrameReport) => ended(report))
    on('frameDropped', ended)
    on('participantQuarantined', () => quarantined.inc())
  }

  /** The exposition text (`text/plain; version=0.0.4`). */
  render(): Promise<string> {
    return this.registry.metrics()
  }

  close(): void {
    for (const off of this.unlisten.splice(0)) off()
  }
}
