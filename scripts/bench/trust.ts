import { sampleUnits } from '../../peer/coordinator/validation.ts'
import type { MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { kindValidator } from '../../peer/jobs/validator.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import type { ValidationPolicy } from '../../peer/protocol/defaults.ts'
import { adversaryModels, parseAdversaries } from '../../peer/simulator/adversaries.ts'
import { builtInProfiles } from '../../peer/simulator/profile.ts'
import { type SimulationReport, simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'

/*
 * Issue 16's figures (README, "Trust"): the live vertex job simulated with 1,000 participants (the
 * `event` crowd, 2 minutes, 2 fps, a 5 s latency budget), with 0 %, 5 %, 20 % and 40 % of the crowd
 * adversarial, for each adversary model and their mix, through the real coordinator's validation:
 * wrong vertices published, work computed beyond one copy, the coordinator's checks, time to
 * quarantine, and latency against the run without adversaries (same seed, same crowd). Beside them,
 * at 20 % of the mix, trusting nobody (every task computed twice) and validating without checks
 * (replicas and a quorum: what a kind with no checker gets). The coordinator's cost per checked thread
 * is measured on the real vertex checker, on templeSparseRing's frames.
 */

export interface TrustRow {
  /** `model:share`. */
  adversaries: string
  /** `adaptive`, `replicate-all` (trust nobody) or `no-checks` (replicas and a quorum alone); `, no budget` without a latency budget. */
  validation: string
  wrongItems: number
  items: number
  wrongItemShare: number
  extraWorkShare: number
  checkedUnitsShare: number
  checksPerSecond: number
  /** Of one core of the coordinator, at the measured cost per checked thread. */
  coordinatorCoreShare: number
  quarantined: number
  falseAccusations: number
  liarsUncaught: number
  quarantineMs: { p50: number; p95: number; max: number }
  /** p50 and p95 frame latency over the run without adversaries. */
  latencyRatio: { p50: number; p95: number }
  framesDropped: number
  unverifiedAccepted: number
}

export interface TrustBench {
  setup: { peers: number; profile: string; seconds: number; fps: number; latencyBudgetMs: number }
  /** Measured: the coordinator's time per checked thread, checks of 32 and of 256 threads, µs. */
  checkMicrosPerThread: { cheap: number; full: number }
  rows: TrustRow[]
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits

/** The real vertex checker's cost per thread, on a 128³ job over the data set's frames. */
async function checkCost(dataset: MultiViewDataset): Promise<{ cheap: number; full: number }> {
  const job = datasetJob(dataset, 128)
  const frames = frameSource()
  const checker = kindValidator(vertexKind, vertexJobSpec(job), { frames })!.checker!
  const frame = dataset.frames[3 % dataset.frames.length]!
  const block = {
    jobId: job.jobId,
    frameIndex: 0,
    cameraId: frame.cameraId,
    imageUrl: frame.imageUrl,
    firstVertex: 500_000,
    vertexCount: 65_536,
  }
  const truth = colourBlock(job, block, await frames.get(frame.imageUrl))
  const per = async (n: number) => {
    for (let i = 0; i < 50; i++)
      await checker.check(block, truth, sampleUnits(block.vertexCount, n, Math.random))
    const runs = 1000
    const started = performance.now()
    for (let i = 0; i < runs; i++)
      await checker.check(block, truth, sampleUnits(block.vertexCount, n, Math.random))
    return ((performance.now() - started) * 1000) / runs / n
  }
  return { cheap: round(await per(32), 3), full: round(await per(256), 3) }
}

export async function runTrustBench(init: {
  dataset: MultiViewDataset
  peers?: number
  durationMs?: number
  shares?: readonly number[]
  onProgress?: (done: number, total: number) => void
}): Promise<TrustBench> {
  const peers = init.peers ?? 1000
  const durationMs = init.durationMs ?? 120_000
  const shares = init.shares ?? [0.05, 0.2, 0.4]
  const live = { latencyBudgetMs: 5000, overload: 'downgrade' as const }
  const base = { ...simulationDefaults, profile: builtInProfiles.event!, peers, durationMs, live }
  const cost = await checkCost(init.dataset)
  interface Way {
    adversaries: string
    validation: Partial<ValidationPolicy>
    checkers?: boolean
    name: string
    /** No latency budget: every frame completes, however late (the ways that compute tasks twice). */
    batch?: boolean
  }
  const ways: Way[] = [
    { adversaries: 'none', validation: {}, name: 'adaptive' },
    ...[...adversaryModels, 'mix'].flatMap((model) =>
      shares.map((share) => ({ adversaries: `${model}:${share}`, validation: {}, name: 'adaptive' })),
    ),
    // Computing tasks twice needs twice the crowd: at half load these would drop every frame, so
    // they are compared without a budget, against the same run without one.
    { adversaries: 'none', validation: {}, name: 'adaptive', batch: true },
    { adversaries: 'mix:0.2', validation: {}, name: 'adaptive', batch: true },
    { adversaries: 'mix:0.2', validation: { mode: 'replicate-all' }, name: 'replicate-all', batch: true },
    { adversaries: 'mix:0.2', validation: {}, checkers: false, name: 'no-checks', batch: true },
  ]
  const rows: TrustRow[] = []
  const honest: { live?: SimulationReport; batch?: SimulationReport } = {}
  const { live: _live, ...unbudgeted } = base
  for (const [i, way] of ways.entries()) {
    const report = simulate({
      ...(way.batch === true ? unbudgeted : base),
      validation: way.validation,
      adversaries: parseAdversaries(way.adversaries),
      ...(way.checkers !== undefined && { checkers: way.checkers }),
    })
    const baseline = (honest[way.batch === true ? 'batch' : 'live'] ??= report)
    const v = report.validation!
    const seconds = report.virtualSeconds
    // The dearer of the two per thread, whatever the mix of checks.
    const perThread = Math.max(cost.cheap, cost.full)
    rows.push({
      adversaries: way.adversaries,
      validation: way.batch === true ? `${way.name}, no budget` : way.name,
      wrongItems: v.wrongItemsPublished,
      items: v.itemsPublished,
      wrongItemShare: round(v.wrongItemShare, 6),
      extraWorkShare: v.extraWorkShare,
      checkedUnitsShare: v.checkedUnitsShare,
      checksPerSecond: Math.round(v.counters.checks / seconds),
      coordinatorCoreShare: round((v.counters.unitsChecked * perThread) / 1e6 / seconds),
      quarantined: v.quarantined,
      falseAccusations: v.falseAccusations,
      liarsUncaught: v.liarsUncaught,
      quarantineMs: { p50: v.quarantineMs.p50, p95: v.quarantineMs.p95, max: v.quarantineMs.max },
      latencyRatio: {
        p50: round(report.latencyMs.p50 / baseline.latencyMs.p50, 2),
        p95: round(report.latencyMs.p95 / baseline.latencyMs.p95, 2),
      },
      framesDropped: report.framesDropped,
      unverifiedAccepted: v.counters.unverifiedAccepted,
    })
    init.onProgress?.(i + 1, ways.length)
    await new Promise((resolve) => setImmediate(resolve))
  }
  return {
    setup: {
      peers,
      profile: base.profile.name,
      seconds: durationMs / 1000,
      fps: base.fps,
      latencyBudgetMs: live.latencyBudgetMs,
    },
    checkMicrosPerThread: cost,
    rows,
  }
}

/** The table the bench prints (and the README keeps). */
export function trustTable(bench: TrustBench): string[] {
  const percent = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 2)} %`
  const { setup } = bench
  return [
    `trust: the vertex job, ${setup.peers} participants (${setup.profile}), ${setup.seconds} s at ${setup.fps} fps; ` +
      `a checked thread costs the coordinator ${bench.checkMicrosPerThread.cheap} µs (checks of 32) / ${bench.checkMicrosPerThread.full} µs (of 256)`,
    `  adversaries       validation                 wrong vertices      extra work  checked  checks/s  coord.  caught  false  uncaught  to quarantine p50/p95/max ms  latency p50/p95  dropped`,
    ...bench.rows.map(
      (r) =>
        `  ${r.adversaries.padEnd(17)} ${r.validation.padEnd(25)} ${`${r.wrongItems} (${percent(r.wrongItemShare)})`.padStart(15)}  ` +
        `${percent(r.extraWorkShare).padStart(10)}  ${percent(r.checkedUnitsShare).padStart(7)}  ${String(r.checksPerSecond).padStart(8)}  ` +
        `${percent(r.coordinatorCoreShare).padStart(6)}  ${String(r.quarantined).padStart(6)}  ${String(r.falseAccusations).padStart(5)}  ` +
        `${String(r.liarsUncaught).padStart(8)}  ${`${r.quarantineMs.p50}/${r.quarantineMs.p95}/${r.quarantineMs.max}`.padStart(28)}  ` +
        `${`${r.latencyRatio.p50}×/${r.latencyRatio.p95}×`.padStart(15)}  ${String(r.framesDropped).padStart(7)}`,
    ),
  ]
}
