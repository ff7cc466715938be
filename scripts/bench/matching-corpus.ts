import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fingerprintFile } from '../../peer/jobs/match/ffmpeg-frames.ts'
import {
  decodeFingerprints,
  encodeFingerprints,
  type FingerprintFile,
} from '../../peer/jobs/match/fingerprint-file.ts'
import { fingerprintBits, fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { fingerprintWords, hamming, toWords } from '../../peer/jobs/match/hamming.ts'
import { repoRoot } from '../options.ts'

/*
 * The matching benchmark's corpus: the real fingerprints of the shared videos (cached), and a million
 * references with planted, real and unrelated queries whose pairs within the threshold are known
 * (see `matching.ts`).
 */

const W = fingerprintWords

/** What each query is. */
export const queryKind = { unrelated: 0, planted: 1, real: 2 } as const

export interface RealVideo {
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
export async function realFingerprints(
  dir: string,
  cacheDir: string,
  progress: (stage: string, done: number, total: number) => void,
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

export interface Corpus {
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
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return s >>> 0
  }
}

export function buildCorpus(options: {
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
export function ownVideo(corpus: Corpus, q: number, e: number): boolean {
  const video = corpus.refVideo[e]!
  return video >= 0 && video === corpus.queryVideo[q]
}

export const pairKey = (q: number, e: number) => q * 0x1_0000_0000 + e

// ---------------------------------------------------------------------------------------------
// Brute force and the layouts
