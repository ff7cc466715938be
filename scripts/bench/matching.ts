import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { matchDefaults } from '../../peer/jobs/match/defaults.ts'
import { fingerprintBits } from '../../peer/jobs/match/format.ts'
import { fingerprintWords, hamming, scanWithin } from '../../peer/jobs/match/hamming.ts'
import { FingerprintIndex, type LshLayout } from '../../peer/jobs/match/lsh-index.ts'
import { repoRoot } from '../options.ts'
import {
  buildCorpus,
  type Corpus,
  ownVideo,
  pairKey,
  queryKind,
  realFingerprints,
} from './matching-corpus.ts'
import { cpuMs, fingerprintSpeed, type FingerprintSpeed } from './matching-fingerprint-speed.ts'

export type { FingerprintSpeed } from './matching-fingerprint-speed.ts'

/*
 * The matching figures (issue 14): how fast Node fingerprints a video, how fast brute force compares
 * fingerprints, and what each LSH layout costs and finds on a corpus of a million references.
 *
 * The corpus is synthetic (random 800-bit fingerprints: unrelated segments' fingerprints differ in
 * about half their bits) plus the real fingerprints of the shared TMK videos. Queries are planted
 * near-duplicates of references at known distances (uniform from 0 to a bit past the threshold), the
 * real videos' fingerprints (every phase, each video against the others' references, as a match run
 * does), and unrelated random ones. The pairs within the threshold are known: a planted pair, or a
 * real pair that brute force over the real references finds. Two random fingerprints within 200 of
 * 800 bits are 14 standard deviations from the mean (never), so that is every pair brute force finds;
 * the benchmark checks it by brute force over the whole corpus for a sample of the queries, and
 * times brute force on that sample to compare each layout with.
 */

/** The layouts measured: the seed's (25 bands of 32 bits), and the ones that trade candidates for recall. */
export const benchLayouts: readonly LshLayout[] = [
  { bandBits: 32, probeRadius: 0 },
  { bandBits: 32, probeRadius: 1 },
  { bandBits: 16, probeRadius: 0 },
  { bandBits: 16, probeRadius: 1 },
  { bandBits: 8, probeRadius: 0 },
]

/** Options of the matching benchmark. */
export interface MatchingBenchInit {
  /** The video-matching samples (default: `defaultVideoMatchingDir()`); without them, synthetic figures only. */
  dataDir?: string
  /** Where the real videos' fingerprints are kept between runs (default `out/bench-cache/matching`). */
  cacheDir?: string
  /** Reference fingerprints in the corpus, the real ones included (default 1,000,000). */
  references?: number
  /** Query fingerprints (default 10,000). */
  queries?: number
  /** Share of the queries planted near a reference (default 0.6). */
  plantedShare?: number
  /** Planted distances run uniformly from 0 to this, bits (default: the threshold and a fifth beyond). */
  maxPlantedDistance?: number
  /** The verification threshold, bits (default `matchDefaults.maxHammingBits`). */
  threshold?: number
  /** Queries brute force runs over the whole corpus (default 200: the speed-ups' baseline). */
  bruteForceQueries?: number
  /** Wall time a layout's queries get, s (default 12; the queries left then are not run). */
  layoutBudgetSeconds?: number
  layouts?: readonly LshLayout[]
  /** Seed of the synthetic corpus (default 1). */
  seed?: number
  /** Called as work completes: (stage, done, total). */
  onProgress?: (stage: string, done: number, total: number) => void
}

/** Recall of the planted pairs whose distance lies in [from, to]. */
export interface DistanceBucket {
  from: number
  to: number
  pairs: number
  found: number
  recall: number
}

/** One layout's figures. */
export interface LayoutFigures {
  /** "bands×bits rRadius", e.g. "50×16 r1". */
  name: string
  layout: LshLayout
  bands: number
  /** Adding the references and building the band tables, CPU s. */
  buildSeconds: number
  /** The index's memory: fingerprints, entries' video and segment, band tables, s (computed, bytes). */
  indexBytes: number
  /** Queries run, in order (all, unless the time budget ran out first). */
  queriesRun: number
  /** Distinct references verified per query, mean over the queries run. */
  candidatesPerQuery: number
  /** The same over the unrelated queries alone (what most of a real corpus's queries are). */
  candidatesPerUnrelatedQuery: number
  /** Share of the pairs within the threshold (brute force's) that the index found. */
  recall: number
  truthPairs: number
  foundPairs: number
  /** Recall of the planted pairs within the threshold, and of the real ones. */
  recallPlanted: number
  recallReal: number | undefined
  /** Pairs the index reported that brute force would not (must be 0). */
  unexpectedPairs: number
  /** Recall by planted distance; the last bucket lies past the threshold (searched with a limit that reaches it). */
  recallByDistance: DistanceBucket[]
  /** Mean CPU time per query over the queries run, ms. */
  queryMs: number
  /** Mean CPU time per query over the queries of the brute-force sample it ran (repeated, warm, for a second when faster), ms. */
  sampleQueryMs: number
  /** Those queries: the whole sample, unless the layout's time budget ran out first. */
  speedupQueries: number
  /** Brute force's CPU time on those queries ÷ this layout's on the same queries. */
  speedup: number
}

/** What the matching benchmark measured. */
export interface MatchingBenchReport {
  fingerprint: FingerprintSpeed | undefined
  bruteForce: {
    /** Fingerprint pairs compared per second at the threshold (stopping once past it), one core. */
    pairsPerSecPerCore: number
    /** Full 800-bit distances (`hamming`) per second, one core. */
    fullDistancePairsPerSecPerCore: number
    /** Time per query over the whole corpus, ms. */
    msPerQuery: number
    sampleQueries: number
    /** Pairs within the threshold brute force found in the sample; those not among the known pairs; known pairs it missed. */
    pairsFound: number
    pairsNotKnown: number
    knownPairsMissed: number
  }
  corpus: {
    references: number
    realReferences: number
    queries: number
    planted: number
    real: number
    unrelated: number
    maxPlantedDistance: number
    threshold: number
    /** The real videos fingerprinted (file names). */
    realVideos: string[]
  }
  layouts: LayoutFigures[]
  /** The layout with recall ≥ 0.99 and the best speed-up (else the best recall). */
  chosen: { name: string; layout: LshLayout; recall: number; speedup: number; meetsRecall: boolean }
}

/** Targets of issue 14. */
export const matchingTargets = { bruteForcePairsPerSecPerCore: 20e6, recall: 0.99, speedup: 50 } as const

/** The shared video-matching samples (`../shared/data/video-matching`), or undefined where they are missing. */
export function defaultVideoMatchingDir(): string | undefined {
  const candidates = [
    process.env.CROWDMESH_DATA && join(process.env.CROWDMESH_DATA, 'video-matching'),
    join(repoRoot, '..', 'shared', 'data', 'video-matching'),
  ]
  return candidates.find(
    (c): c is string => typeof c === 'string' && existsSync(join(c, 'ground-truth.json')),
  )
}

const W = fingerprintWords

/**
 * Runs the matching benchmark: single-threaded, every figure per core, timed in this process's CPU
 * time (ffmpeg's added where it decodes).
 */
export async function runMatchingBench(init: MatchingBenchInit = {}): Promise<MatchingBenchReport> {
  const progress = init.onProgress ?? (() => {})
  const threshold = init.threshold ?? matchDefaults.maxHammingBits
  const maxPlanted = Math.min(init.maxPlantedDistance ?? Math.round(threshold * 1.2), fingerprintBits)
  const dataDir = init.dataDir ?? defaultVideoMatchingDir()
  const cacheDir = init.cacheDir ?? join(repoRoot, 'out', 'bench-cache', 'matching')

  const videos = dataDir === undefined ? [] : await realFingerprints(join(dataDir, 'tmk'), cacheDir, progress)
  const chair = videos.find((v) => v.id === 'chair-orig-22-sd-bar.mp4')
  const fingerprint =
    dataDir === undefined || chair === undefined
      ? undefined
      : await fingerprintSpeed(join(dataDir, 'tmk', chair.id), progress)

  progress('corpus', 0, 1)
  const corpus = buildCorpus({
    videos,
    references: init.references ?? 1_000_000,
    queries: init.queries ?? 10_000,
    plantedShare: init.plantedShare ?? 0.6,
    maxPlanted,
    threshold,
    seed: init.seed ?? 1,
  })
  progress('corpus', 1, 1)

  const sample = Math.min(init.bruteForceQueries ?? 200, corpus.queries)
  const { figures: bruteForce, prefixMs } = runBruteForce(corpus, sample, threshold, progress)

  const layouts: LayoutFigures[] = []
  for (const layout of init.layouts ?? benchLayouts)
    layouts.push(
      measureLayout(corpus, layout, {
        sample,
        threshold,
        maxPlanted,
        budgetMs: (init.layoutBudgetSeconds ?? 12) * 1000,
        bruteForcePrefixMs: prefixMs,
        progress,
      }),
    )
  const meeting = layouts.filter((l) => l.recall >= matchingTargets.recall)
  const best = (meeting.length > 0 ? meeting : layouts).reduce((a, b) =>
    meeting.length > 0 ? (b.speedup > a.speedup ? b : a) : b.recall > a.recall ? b : a,
  )
  return {
    fingerprint,
    bruteForce,
    corpus: {
      references: corpus.references,
      realReferences: corpus.realReferences,
      queries: corpus.queries,
      planted: corpus.counts[queryKind.planted],
      real: corpus.counts[queryKind.real],
      unrelated: corpus.counts[queryKind.unrelated],
      maxPlantedDistance: maxPlanted,
      threshold,
      realVideos: videos.map((v) => v.id),
    },
    layouts,
    chosen: {
      name: best.name,
      layout: best.layout,
      recall: best.recall,
      speedup: best.speedup,
      meetsRecall: best.recall >= matchingTargets.recall,
    },
  }
}

/** A layout's short name: "50×16 r1". */
export function layoutName(layout: LshLayout): string {
  return `${fingerprintBits / layout.bandBits}×${layout.bandBits} r${layout.probeRadius}`
}

// ---------------------------------------------------------------------------------------------
// Real fingerprints and fingerprinting speed

/**
 * Brute force over the whole corpus for the first `sample` queries: its figures, and the CPU time of
 * its first k queries (`prefixMs[k]`), what a layout that ran k of them is compared with.
 */
function runBruteForce(
  corpus: Corpus,
  sample: number,
  threshold: number,
  progress: NonNullable<MatchingBenchInit['onProgress']>,
): { figures: MatchingBenchReport['bruteForce']; prefixMs: Float64Array } {
  const { refs, references: n, queryWords } = corpus
  const stage = 'brute force'
  progress(stage, 0, sample)
  // Warm-up: the scan compiled before it is timed.
  scanWithin(queryWords, 0, refs, Math.min(n, 50_000), threshold, () => {})
  const found: number[] = []
  let q = 0
  const visit = (e: number) => {
    if (!ownVideo(corpus, q, e)) found.push(pairKey(q, e))
  }
  const prefixMs = new Float64Array(sample + 1)
  const started = cpuMs()
  for (; q < sample; q++) {
    scanWithin(queryWords, q * W, refs, n, threshold, visit)
    prefixMs[q + 1] = cpuMs() - started
    if (q % 16 === 15) progress(stage, q + 1, sample)
  }
  const seconds = prefixMs[sample]! / 1000

  // Full distances: `hamming` on every pair of a few queries.
  const fullQueries = 3
  let sink = 0
  const fullStarted = cpuMs()
  for (let f = 0; f < fullQueries; f++)
    for (let e = 0; e < n; e++) sink += hamming(queryWords, f * W, refs, e * W)
  const fullSeconds = (cpuMs() - fullStarted) / 1000
  if (sink < 0) throw new Error('unreachable')
  progress(stage, sample, sample)

  const known = new Set<number>()
  for (const [query, within] of corpus.truth)
    if (query < sample) for (const e of within) known.add(pairKey(query, e))
  const foundSet = new Set(found)
  return {
    figures: {
      pairsPerSecPerCore: Math.round((sample * n) / seconds),
      fullDistancePairsPerSecPerCore: Math.round((fullQueries * n) / fullSeconds),
      msPerQuery: round((seconds * 1000) / sample, 3),
      sampleQueries: sample,
      pairsFound: foundSet.size,
      pairsNotKnown: [...foundSet].filter((k) => !known.has(k)).length,
      knownPairsMissed: [...known].filter((k) => !foundSet.has(k)).length,
    },
    prefixMs,
  }
}

/** Bytes the index holds for `n` references: words, video and segment, `seen`, and each band's tables. */
function indexBytes(layout: LshLayout, n: number): number {
  const bands = fingerprintBits / layout.bandBits
  const directory = ((1 << Math.min(layout.bandBits, 16)) + 1) * 4
  return n * (W * 4 + 4 + 4 + 4) + bands * (n * 8 + directory)
}

function measureLayout(
  corpus: Corpus,
  layout: LshLayout,
  options: {
    sample: number
    threshold: number
    maxPlanted: number
    budgetMs: number
    bruteForcePrefixMs: Float64Array
    progress: NonNullable<MatchingBenchInit['onProgress']>
  },
): LayoutFigures {
  const { refs, references: n, queryWords, queries: count } = corpus
  const { sample, threshold, progress } = options
  const name = layoutName(layout)
  const buildStage = `index ${name}`
  progress(buildStage, 0, n)
  const buildStarted = cpuMs()
  const index = new FingerprintIndex(layout)
  for (let e = 0; e < n; e++) {
    index.add(refs, 0, 0, e * W)
    if (e % 65_536 === 65_535) progress(buildStage, e + 1, n + n / 4)
  }
  index.freeze()
  const buildSeconds = (cpuMs() - buildStarted) / 1000
  progress(buildStage, 1, 1)

  // Warm-up on the last queries (untimed), then the queries in order while the budget (wall time) lasts.
  for (let q = Math.max(0, count - 20); q < count; q++) index.search(queryWords, q * W, threshold, () => {})
  const stage = `queries ${name}`
  const found: number[] = []
  let q = 0
  const visit = (e: number) => {
    if (!ownVideo(corpus, q, e)) found.push(pairKey(q, e))
  }
  const candidates = [0, 0, 0]
  const queried = [0, 0, 0]
  const wallStarted = performance.now()
  const started = cpuMs()
  let sampleMs = 0
  for (; q < count; q++) {
    const cost = index.search(queryWords, q * W, threshold, visit)
    const kind = corpus.kind[q]!
    candidates[kind]! += cost.candidates
    queried[kind]!++
    if (q === sample - 1) sampleMs = cpuMs() - started
    if (q % 8 === 7) {
      const elapsed = performance.now() - wallStarted
      progress(stage, Math.min(count, Math.max(q + 1, (elapsed / options.budgetMs) * count)), count)
      if (elapsed > options.budgetMs) {
        q++
        break
      }
    }
  }
  const run = q
  const totalMs = cpuMs() - started
  // The speed-up is over the brute-force sample's queries this layout ran (all, unless it is slow).
  // A fast layout answers them in a few milliseconds, within reach of a context switch: it answers
  // them again, warm, until a second has passed, and the mean of those rounds counts.
  const compared = Math.min(sample, run)
  if (run < sample) sampleMs = totalMs
  if (sampleMs < 1000) {
    const noop = () => {}
    let rounds = 0
    const again = cpuMs()
    do {
      for (let query = 0; query < compared; query++) index.search(queryWords, query * W, threshold, noop)
      rounds++
    } while (cpuMs() - again < 1000)
    sampleMs = (cpuMs() - again) / rounds
  }
  progress(stage, count, count)

  // Recall against the pairs within the threshold, among the queries run.
  const foundSet = new Set(found)
  const width = 40
  const within = Math.ceil(threshold / width)
  const buckets: DistanceBucket[] = Array.from({ length: within }, (_, b) => ({
    from: b * width,
    to: b === within - 1 ? threshold : (b + 1) * width - 1,
    pairs: 0,
    found: 0,
    recall: 0,
  }))
  const beyond: DistanceBucket = {
    from: threshold + 1,
    to: options.maxPlanted,
    pairs: 0,
    found: 0,
    recall: 0,
  }
  let truthPairs = 0
  let foundPairs = 0
  const byKind = { planted: [0, 0], real: [0, 0] }
  const known = new Set<number>()
  for (const [query, refsWithin] of corpus.truth) {
    if (query >= run) continue
    const real = corpus.kind[query] === queryKind.real
    for (const e of refsWithin) {
      const key = pairKey(query, e)
      known.add(key)
      const hit = foundSet.has(key) ? 1 : 0
      truthPairs++
      foundPairs += hit
      const counts = real ? byKind.real : byKind.planted
      counts[0]!++
      counts[1]! += hit
      if (!real) {
        const bucket = buckets[Math.min(Math.floor(corpus.distance[query]! / width), within - 1)]!
        bucket.pairs++
        bucket.found += hit
      }
    }
  }
  // Past the threshold: would the index find the planted reference were the limit higher?
  for (let query = 0; query < run; query++) {
    if (corpus.kind[query] !== queryKind.planted || corpus.distance[query]! <= threshold) continue
    const source = corpus.source[query]!
    let hit = 0
    index.search(queryWords, query * W, options.maxPlanted, (e) => {
      if (e === source) hit = 1
    })
    beyond.pairs++
    beyond.found += hit
  }
  for (const bucket of [...buckets, beyond]) bucket.recall = ratio(bucket.found, bucket.pairs)
  const sampleQueryMs = sampleMs / compared
  return {
    name,
    layout,
    bands: fingerprintBits / layout.bandBits,
    buildSeconds: round(buildSeconds, 2),
    indexBytes: indexBytes(layout, n),
    queriesRun: run,
    candidatesPerQuery: round((candidates[0]! + candidates[1]! + candidates[2]!) / run, 1),
    candidatesPerUnrelatedQuery: round(candidates[0]! / Math.max(1, queried[0]!), 1),
    recall: ratio(foundPairs, truthPairs),
    truthPairs,
    foundPairs,
    recallPlanted: ratio(byKind.planted[1]!, byKind.planted[0]!),
    recallReal: byKind.real[0]! === 0 ? undefined : ratio(byKind.real[1]!, byKind.real[0]!),
    unexpectedPairs: [...foundSet].filter((k) => !known.has(k)).length,
    recallByDistance: [...buckets, beyond],
    queryMs: round(totalMs / run, 4),
    sampleQueryMs: round(sampleQueryMs, 4),
    speedupQueries: compared,
    speedup: round(options.bruteForcePrefixMs[compared]! / sampleMs, 1),
  }
}

// ---------------------------------------------------------------------------------------------
// Printing

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}

function ratio(a: number, b: number): number {
  return b === 0 ? 1 : round(a / b, 4)
}
