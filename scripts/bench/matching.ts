import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { matchDefaults } from '../../peer/jobs/match/defaults.ts'
import { fingerprintFile } from '../../peer/jobs/match/ffmpeg-frames.ts'
import {
  decodeFingerprints,
  encodeFingerprints,
  type FingerprintFile,
} from '../../peer/jobs/match/fingerprint-file.ts'
import { fingerprintVideo } from '../../peer/jobs/match/fingerprint.ts'
import { fingerprintBits, fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { fingerprintWords, hamming, scanWithin, toWords } from '../../peer/jobs/match/hamming.ts'
import { FingerprintIndex, type LshLayout } from '../../peer/jobs/match/lsh-index.ts'
import { repoRoot } from '../options.ts'

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

/** Node's fingerprinting speed on one video. */
export interface FingerprintSpeed {
  video: string
  /** Sampled frames per video (16 a second). */
  frames: number
  /** Frames per CPU-second, Node's and its children's (ffprobe, ffmpeg) together (undefined without /proc to read theirs). */
  framesPerCpuSecond: number | undefined
  /** Share of that CPU time the children took (probing, decoding, sampling, scaling). */
  decodeCpuShare: number | undefined
  /** Frames per second of wall time (ffmpeg decodes beside Node, on another core). */
  framesPerWallSecond: number
  /** Frames per CPU-second of the fingerprinting alone (frames decoded beforehand): one thread. */
  framesPerSecExcludingDecode: number
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
 * This process's CPU time, ms: the clock of the per-core figures. On a shared machine other
 * processes stretch wall time; they do not add to this (the memory and caches they share still count).
 */
function cpuMs(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

const queryKind = { unrelated: 0, planted: 1, real: 2 } as const

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

interface RealVideo {
  id: string
  file: FingerprintFile
}

/** The sources that decide a fingerprint's bits: a cached fingerprint is only as good as they are. */
const fingerprintSources = ['format.ts', 'fingerprint.ts', 'ffmpeg-frames.ts'].map((name) =>
  join(repoRoot, 'peer', 'jobs', 'match', name),
)

/**
 * Every video's fingerprints (all phases) in `dir`, kept in `cacheDir` as `.cmfp` files, under the
 * format's version and a hash of the code that computes them (a change there computes them anew).
 */
async function realFingerprints(
  dir: string,
  cacheDir: string,
  progress: NonNullable<MatchingBenchInit['onProgress']>,
): Promise<RealVideo[]> {
  if (!existsSync(dir)) return []
  const names = (await readdir(dir)).filter((name) => /\.(mp4|webm|mkv|mov)$/i.test(name)).sort()
  const hash = createHash('sha256')
  for (const source of fingerprintSources) hash.update(await readFile(source))
  const cache = join(cacheDir, `v${fingerprintFormat.version}-${hash.digest('hex').slice(0, 12)}`)
  await mkdir(cache, { recursive: true })
  const out: RealVideo[] = []
  for (const [i, name] of names.entries()) {
    progress('real fingerprints', i, names.length)
    const video = join(dir, name)
    const cached = join(cache, `${name}.cmfp`)
    const [videoStat, cacheStat] = await Promise.all([stat(video), stat(cached).catch(() => undefined)])
    let file: FingerprintFile
    if (cacheStat !== undefined && cacheStat.mtimeMs >= videoStat.mtimeMs)
      file = decodeFingerprints(new Uint8Array(await readFile(cached)))
    else {
      file = await fingerprintFile(video)
      await writeFile(cached, encodeFingerprints(file))
    }
    out.push({ id: name, file })
  }
  progress('real fingerprints', names.length, names.length)
  return out
}

/** CPU seconds of this process's finished children (ffmpeg), from /proc; undefined elsewhere. */
function childCpuSeconds(): number | undefined {
  try {
    const text = readFileSync('/proc/self/stat', 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // cutime and cstime (fields 16 and 17), in USER_HZ ticks: 100 a second on every Linux ABI.
    return (Number(fields[13]) + Number(fields[14])) / 100
  } catch {
    return undefined
  }
}

/**
 * Fingerprints `video` through `fingerprintFile` (ffmpeg decoding, every phase, as a query) until at
 * least `minSeconds` have passed, after a warm-up run; then the fingerprinting alone on frames decoded
 * beforehand.
 */
async function fingerprintSpeed(
  video: string,
  progress: NonNullable<MatchingBenchInit['onProgress']>,
  minSeconds = 2,
): Promise<FingerprintSpeed> {
  const stage = 'fingerprinting speed'
  progress(stage, 0, 3)
  await fingerprintFile(video)
  progress(stage, 1, 3)
  let frames = 0
  let runs = 0
  const cpuBefore = process.cpuUsage()
  const childBefore = childCpuSeconds()
  const started = performance.now()
  while (runs < 2 || performance.now() - started < minSeconds * 1000) {
    const file = await fingerprintFile(video)
    frames += Math.round(file.duration * fingerprintFormat.sampleFps)
    runs++
  }
  const wall = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const childAfter = childCpuSeconds()
  const nodeCpu = (cpu.user + cpu.system) / 1e6
  const childCpu =
    childBefore === undefined || childAfter === undefined ? undefined : childAfter - childBefore
  progress(stage, 2, 3)

  const decoded = await decodeLuma(video)
  fingerprintVideo(decoded)
  let alone = 0
  let aloneRuns = 0
  const aloneStarted = cpuMs()
  while (aloneRuns < 2 || alone < minSeconds) {
    fingerprintVideo(decoded)
    aloneRuns++
    alone = (cpuMs() - aloneStarted) / 1000
  }
  progress(stage, 3, 3)
  return {
    video: basename(video),
    frames: frames / runs,
    framesPerCpuSecond: childCpu === undefined ? undefined : Math.round(frames / (nodeCpu + childCpu)),
    decodeCpuShare: childCpu === undefined ? undefined : round(childCpu / (nodeCpu + childCpu), 3),
    framesPerWallSecond: Math.round(frames / wall),
    framesPerSecExcludingDecode: Math.round((decoded.frames.length * aloneRuns) / alone),
  }
}

/** The luminance frames `fingerprintFile` decodes (the same ffmpeg filter), held in memory. */
async function decodeLuma(video: string): Promise<{ size: number; frames: Uint8Array[] }> {
  const { decodeSize, sampleFps } = fingerprintFormat
  const child = spawn(
    'ffmpeg',
    [
      ...['-v', 'error', '-nostdin', '-i', video, '-map', '0:v:0', '-an', '-sn'],
      ...['-vf', `fps=${sampleFps},scale=${decodeSize}:${decodeSize}:flags=area,format=gray`],
      ...['-f', 'rawvideo', 'pipe:1'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const chunks: Buffer[] = []
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  const frameBytes = decodeSize * decodeSize
  const frames: Uint8Array[] = []
  for (let at = 0; at + frameBytes <= bytes.length; at += frameBytes)
    frames.push(new Uint8Array(bytes.subarray(at, at + frameBytes)))
  return { size: decodeSize, frames }
}

// ---------------------------------------------------------------------------------------------
// The synthetic corpus

interface Corpus {
  references: number
  realReferences: number
  /** References' words, entry e at e · 25. */
  refs: Uint32Array
  /** The real video a reference came from, −1 for a synthetic one. */
  refVideo: Int16Array
  queries: number
  queryWords: Uint32Array
  kind: Uint8Array
  /** A planted query's reference and distance; a real query's video (else −1). */
  source: Int32Array
  distance: Int16Array
  queryVideo: Int16Array
  counts: [number, number, number]
  /** The pairs within the threshold, by query: reference entries (a video's own excluded). */
  truth: Map<number, number[]>
}

/** xorshift32: a fast, seeded source of 32-bit words for a corpus that is the same on every run. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return s >>> 0
  }
}

function buildCorpus(options: {
  videos: RealVideo[]
  references: number
  queries: number
  plantedShare: number
  maxPlanted: number
  threshold: number
  seed: number
}): Corpus {
  const { videos, references: n, queries: count, maxPlanted, threshold } = options
  const next = xorshift(options.seed)
  const below = (k: number) => Math.floor((next() / 0x1_0000_0000) * k)

  // References: random, then the real videos' phase-0 fingerprints (a reference keeps phase 0 only;
  // a still one is neither indexed nor looked up, as in a match run).
  const refs = new Uint32Array(n * W)
  for (let i = 0; i < refs.length; i++) refs[i] = next()
  const refVideo = new Int16Array(n).fill(-1)
  const realRefs = videos.flatMap((v, video) =>
    v.file.fingerprints
      .filter((f) => f.phase === 0 && !f.still)
      .map((f) => ({ video, words: toWords(f.bits) })),
  )
  const realFrom = n - realRefs.length
  realRefs.forEach((r, i) => {
    refs.set(r.words, (realFrom + i) * W)
    refVideo[realFrom + i] = r.video
  })

  // Queries: every real fingerprint (every phase), the planted share, the rest unrelated; shuffled,
  // so that any first part of the list (a sample, a layout's budget) is a fair mix.
  const realQueries = videos
    .flatMap((v, video) => v.file.fingerprints.filter((f) => !f.still).map((f) => ({ video, bits: f.bits })))
    .slice(0, count)
  const planted = Math.min(Math.round(options.plantedShare * count), count - realQueries.length)
  const unrelated = count - planted - realQueries.length
  const kinds = [
    ...Array<number>(unrelated).fill(queryKind.unrelated),
    ...Array<number>(planted).fill(queryKind.planted),
  ]
  const order = Array.from({ length: count }, (_, i) => i)
  for (let i = count - 1; i > 0; i--) {
    const j = below(i + 1)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const queryWords = new Uint32Array(count * W)
  const kind = new Uint8Array(count)
  const source = new Int32Array(count).fill(-1)
  const distance = new Int16Array(count).fill(-1)
  const queryVideo = new Int16Array(count).fill(-1)
  const bits = Uint16Array.from({ length: fingerprintBits }, (_, i) => i)
  let real = 0
  for (let slot = 0; slot < count; slot++) {
    const q = order[slot]!
    const at = q * W
    if (slot < kinds.length && kinds[slot] === queryKind.unrelated) {
      for (let w = 0; w < W; w++) queryWords[at + w] = next()
      continue
    }
    if (slot < kinds.length) {
      // A copy of a random synthetic reference with exactly d distinct bits flipped (partial shuffle).
      const ref = below(realFrom)
      const d = below(maxPlanted + 1)
      queryWords.set(refs.subarray(ref * W, ref * W + W), at)
      for (let i = 0; i < d; i++) {
        const j = i + below(fingerprintBits - i)
        const bit = bits[j]!
        bits[j] = bits[i]!
        bits[i] = bit
        queryWords[at + (bit >>> 5)]! ^= 1 << (bit & 31)
      }
      kind[q] = queryKind.planted
      source[q] = ref
      distance[q] = d
      continue
    }
    const r = realQueries[real++]!
    queryWords.set(toWords(r.bits), at)
    kind[q] = queryKind.real
    queryVideo[q] = r.video
  }

  // The pairs within the threshold: the planted ones, and the real ones by brute force over the real
  // references (the synthetic ones are ~400 bits from everything; `runBruteForce` checks it).
  const truth = new Map<number, number[]>()
  for (let q = 0; q < count; q++) {
    if (kind[q] === queryKind.planted && distance[q]! <= threshold) truth.set(q, [source[q]!])
    if (kind[q] !== queryKind.real) continue
    const within: number[] = []
    for (let e = realFrom; e < n; e++)
      if (refVideo[e] !== queryVideo[q] && hamming(queryWords, q * W, refs, e * W) <= threshold)
        within.push(e)
    if (within.length > 0) truth.set(q, within)
  }
  return {
    references: n,
    realReferences: realRefs.length,
    refs,
    refVideo,
    queries: count,
    queryWords,
    kind,
    source,
    distance,
    queryVideo,
    counts: [unrelated, planted, realQueries.length],
    truth,
  }
}

/** Whether reference `e` is query `q`'s own video (a match run leaves a video's own references out). */
function ownVideo(corpus: Corpus, q: number, e: number): boolean {
  const video = corpus.refVideo[e]!
  return video >= 0 && video === corpus.queryVideo[q]
}

const pairKey = (q: number, e: number) => q * 0x1_0000_0000 + e

// ---------------------------------------------------------------------------------------------
// Brute force and the layouts

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

/** The matching section of `crowdmesh bench`'s printed table. */
export function matchingTable(report: MatchingBenchReport): string {
  const mark = (ok: boolean) => (ok ? 'meets' : 'MISSES')
  const { fingerprint: fp, bruteForce: bf, corpus, layouts, chosen } = report
  const n = (x: number) => x.toLocaleString('en-US')
  const lines: string[] = []
  if (fp !== undefined)
    lines.push(
      `  matching.fingerprintFramesPerSecPerCore  ` +
        (fp.framesPerCpuSecond === undefined
          ? `${fp.framesPerWallSecond} frames/s (wall)`
          : `${fp.framesPerCpuSecond} frames per CPU-second with ffmpeg decoding (ffmpeg ${Math.round(
              fp.decodeCpuShare! * 100,
            )} % of it; ${fp.framesPerWallSecond} frames/s wall)`) +
        `, ${fp.framesPerSecExcludingDecode} without decoding (${fp.video}, ${fingerprintFormat.sampleFps} fps sampled, every phase)`,
    )
  else
    lines.push(
      '  matching.fingerprintFramesPerSecPerCore  not measured: the video-matching samples are missing',
    )
  lines.push(
    `  matching.bruteForcePairsPerSecPerCore    ${(bf.pairsPerSecPerCore / 1e6).toFixed(1)} M/s at the ${corpus.threshold}-bit threshold, ` +
      `${(bf.fullDistancePairsPerSecPerCore / 1e6).toFixed(1)} M/s full distance  ` +
      `(${mark(bf.pairsPerSecPerCore >= matchingTargets.bruteForcePairsPerSecPerCore)} ≥ 20 M)`,
    `  matching.lsh  ${n(corpus.references)} references (${corpus.realReferences} real), ${n(corpus.queries)} queries: ` +
      `${n(corpus.planted)} planted at 0–${corpus.maxPlantedDistance} bits, ${corpus.real} real, ${n(corpus.unrelated)} unrelated; ` +
      `brute force ${bf.msPerQuery.toFixed(1)} ms a query over ${bf.sampleQueries} of them (${bf.pairsFound} pairs within the threshold, ` +
      `${bf.pairsNotKnown} not planted or real); times are CPU time`,
  )
  const buckets = layouts[0]?.recallByDistance ?? []
  lines.push(
    `    layout     build  cand./query  query ms  speed-up  recall  (real)   by planted distance ${buckets
      .map((b) => `${b.from}–${b.to}`)
      .join(' ')}`,
  )
  for (const l of layouts)
    lines.push(
      `    ${l.name.padEnd(9)} ${l.buildSeconds.toFixed(1).padStart(5)} s ${n(l.candidatesPerQuery).padStart(11)} ` +
        `${l.queryMs.toFixed(3).padStart(9)} ${`${Math.round(l.speedup)}×`.padStart(9)}  ${l.recall.toFixed(4)}  ` +
        `(${l.recallReal?.toFixed(3) ?? '–'})  ${l.recallByDistance.map((b) => b.recall.toFixed(3)).join(' ')}` +
        (l.queriesRun < corpus.queries
          ? `  [${n(l.queriesRun)} queries in its time; speed-up over ${l.speedupQueries}]`
          : ''),
    )
  lines.push(
    `  matching.lsh.chosen  ${chosen.name}: recall ${chosen.recall.toFixed(4)} (${mark(chosen.meetsRecall)} ≥ 0.99), ` +
      `${Math.round(chosen.speedup)}× brute force (${mark(chosen.speedup >= matchingTargets.speedup)} ≥ 50×)`,
  )
  return `${lines.join('\n')}\n`
}

function ratio(a: number, b: number): number {
  return b === 0 ? 1 : round(a / b, 4)
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
