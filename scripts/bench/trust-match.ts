import type { ValidationPolicy } from '../../peer/protocol/defaults.ts'
import { adversaryModels, parseAdversaries } from '../../peer/simulator/adversaries.ts'
import { builtInProfiles } from '../../peer/simulator/profile.ts'
import { type SimulationReport, simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'

/*
 * Issue 16's figures for a match run (README, "Trust"): the video-match job simulated with 1,000
 * participants of the `match-run` crowd for 20 minutes, its slices of 64 references leased whole, a
 * new slice whenever one is taken (a large run), with 0 %, 5 %, 20 % and 40 % of the crowd
 * adversarial, for each adversary model and their mix, through the real coordinator's validation.
 * One unit in 500 has a true match (`sparseTruthDensity`); a lie hides true matches where it is
 * wrong there and invents one everywhere else it is wrong (the lazy model and the sleeper, once
 * awake, return the empty result: they hide every match and invent none). Published slices an
 * identity is answerable for are computed again once it is caught, as a match run's pool does.
 * Measured: true matches kept and invented ones in the slices that stand at the end, work beyond one
 * copy, time to quarantine, slice latency and the run's throughput against the run without
 * adversaries (same seed, same crowd).
 */

export interface MatchTrustRow {
  /** `model:share`. */
  adversaries: string
  validation: string
  trueMatches: number
  /** True matches hidden in the slices that stand at the end. */
  missing: number
  /** Matches reported where there is none, in the slices that stand at the end. */
  invented: number
  foundShare: number
  extraWorkShare: number
  /** Published slices computed again because an identity answerable for them was caught. */
  slicesRecomputed: number
  quarantined: number
  falseAccusations: number
  liarsUncaught: number
  quarantineMs: { p50: number; p95: number; max: number }
  /** p50 and p95 slice latency over the run without adversaries. */
  latencyRatio: { p50: number; p95: number }
  /**
   * The time the same run takes, over the run without adversaries: slices that stand at the end, per
   * second of the honest run ÷ per second of this one.
   */
  runTimeRatio: number
}

export interface MatchTrustBench {
  setup: { peers: number; profile: string; seconds: number; referencesPerSlice: number }
  rows: MatchTrustRow[]
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits

export function runMatchTrustBench(
  init: {
    peers?: number
    durationMs?: number
    shares?: readonly number[]
    onProgress?: (done: number, total: number) => void
  } = {},
): MatchTrustBench {
  const peers = init.peers ?? 1000
  const durationMs = init.durationMs ?? 1_200_000
  const shares = init.shares ?? [0.05, 0.2, 0.4]
  const referencesPerSlice = 64
  const profile = builtInProfiles['match-run']!
  const base = {
    ...simulationDefaults,
    profile,
    peers,
    durationMs,
    jobs: [{ kind: 'video-match', class: 'batch' as const, units: referencesPerSlice, wholeRounds: true }],
  }
  interface Way {
    adversaries: string
    validation: Partial<ValidationPolicy>
    name: string
  }
  const ways: Way[] = [
    { adversaries: 'none', validation: {}, name: 'adaptive' },
    ...[...adversaryModels, 'mix'].flatMap((model) =>
      shares.map((share) => ({ adversaries: `${model}:${share}`, validation: {}, name: 'adaptive' })),
    ),
    { adversaries: 'mix:0.2', validation: { mode: 'replicate-all' }, name: 'replicate-all' },
  ]
  const rows: MatchTrustRow[] = []
  let honest: SimulationReport | undefined
  for (const [i, way] of ways.entries()) {
    const report = simulate({
      ...base,
      validation: way.validation,
      adversaries: parseAdversaries(way.adversaries),
    })
    const baseline = (honest ??= report)
    const v = report.validation!
    const job = report.jobs[0]!
    const baseJob = baseline.jobs[0]!
    const findings = v.findings ?? { true: 0, missing: 0, invented: 0, foundShare: 1 }
    // Slices standing at the end: every completed one, less those taken back (each was completed again).
    const standing = (r: SimulationReport) => r.jobs[0]!.roundsCompleted - r.validation!.roundsRecomputed
    rows.push({
      adversaries: way.adversaries,
      validation: way.name,
      trueMatches: findings.true,
      missing: findings.missing,
      invented: findings.invented,
      foundShare: round(findings.foundShare, 6),
      extraWorkShare: v.extraWorkShare,
      slicesRecomputed: v.roundsRecomputed,
      quarantined: v.quarantined,
      falseAccusations: v.falseAccusations,
      liarsUncaught: v.liarsUncaught,
      quarantineMs: { p50: v.quarantineMs.p50, p95: v.quarantineMs.p95, max: v.quarantineMs.max },
      latencyRatio: {
        p50: round(job.latencyMs.p50 / baseJob.latencyMs.p50, 2),
        p95: round(job.latencyMs.p95 / baseJob.latencyMs.p95, 2),
      },
      runTimeRatio: round(
        standing(baseline) / baseline.virtualSeconds / (standing(report) / report.virtualSeconds),
        2,
      ),
    })
    init.onProgress?.(i + 1, ways.length)
  }
  return { setup: { peers, profile: profile.name, seconds: durationMs / 1000, referencesPerSlice }, rows }
}

/** The table the bench prints (and the README keeps). */
export function matchTrustTable(bench: MatchTrustBench): string[] {
  const percent = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 2)} %`
  const { setup } = bench
  return [
    `trust: a match run, ${setup.peers} participants (${setup.profile}), ${setup.seconds} s, slices of ${setup.referencesPerSlice} references leased whole`,
    `  adversaries       validation     true matches kept   invented  extra work  recomputed  caught  false  uncaught  to quarantine p50/p95/max ms  latency p50/p95  run time`,
    ...bench.rows.map(
      (r) =>
        `  ${r.adversaries.padEnd(17)} ${r.validation.padEnd(13)} ${`${r.trueMatches - r.missing}/${r.trueMatches} (${percent(r.foundShare)})`.padStart(19)}  ` +
        `${String(r.invented).padStart(8)}  ${percent(r.extraWorkShare).padStart(10)}  ${String(r.slicesRecomputed).padStart(10)}  ` +
        `${String(r.quarantined).padStart(6)}  ${String(r.falseAccusations).padStart(5)}  ${String(r.liarsUncaught).padStart(8)}  ` +
        `${`${r.quarantineMs.p50}/${r.quarantineMs.p95}/${r.quarantineMs.max}`.padStart(28)}  ` +
        `${`${r.latencyRatio.p50}×/${r.latencyRatio.p95}×`.padStart(15)}  ${`${r.runTimeRatio}×`.padStart(8)}`,
    ),
  ]
}
