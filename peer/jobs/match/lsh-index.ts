import { fingerprintBits } from './format.ts'
import { fingerprintWords, scanEntriesWithin } from './hamming.ts'

/*
 * The reference index: locality-sensitive hashing by bands (the seed's FIG. 6). A fingerprint's 800
 * bits are cut into bands of `bandBits`; a band's bits are its key. A query finds every reference
 * that shares at least one key with it, or, with `probeRadius` 1, a key one bit away (multi-index
 * hashing: the probes cover every band within one bit error). The candidates are then verified by
 * their Hamming distance. The seed's layout is 25 bands of 4 bytes; what the benchmark measured for
 * each layout is in the README ("Video matching").
 */

/** How the index cuts and probes. */
export interface LshLayout {
  /** Bits per band: 8, 16 or 32 (800 / bandBits bands). */
  bandBits: 8 | 16 | 32
  /** Bits a band's key may differ in and still be probed: 0 or 1 (or 2, for measuring). */
  probeRadius: 0 | 1 | 2
}

/** The layout the matcher uses (measured: README, "Video matching"). */
export const defaultLayout: LshLayout = { bandBits: 16, probeRadius: 0 }

/** Statistics of one query. */
export interface QueryCost {
  /** Distinct references compared (verified) for the query. */
  candidates: number
}

/** One band's table: entries sorted by key, and where each bucket of keys (their low `dirBits`) starts. */
interface BandTable {
  directory: Uint32Array
  keys: Uint32Array
  entries: Uint32Array
}

/** The index of reference fingerprints, each with the video and segment it came from. */
export class FingerprintIndex {
  readonly layout: LshLayout
  private readonly bands: number
  private readonly dirBits: number
  private words = new Uint32Array(1024 * fingerprintWords)
  private videos = new Uint32Array(1024)
  private segments = new Uint32Array(1024)
  private count = 0
  /** Per band after `freeze`: the directory (bucket starts by the key's low `dirBits`), keys and entries sorted by key. */
  private frozen: BandTable[] | undefined
  /** One bit per entry: candidates of the query under way (cleared before they are verified). */
  private seen = new Uint32Array(0)
  /** The query's distinct candidates, in the order the probes found them. */
  private candidates = new Uint32Array(1024)
  private searching = false

  constructor(layout: LshLayout = defaultLayout) {
    if (![8, 16, 32].includes(layout.bandBits)) throw new RangeError('bandBits is 8, 16 or 32')
    if (![0, 1, 2].includes(layout.probeRadius)) throw new RangeError('probeRadius is 0, 1 or 2')
    this.layout = layout
    this.bands = fingerprintBits / layout.bandBits
    this.dirBits = Math.min(layout.bandBits, 16)
  }

  /** Reference fingerprints held. */
  get size(): number {
    return this.count
  }

  /** Adds a reference fingerprint (its words) of `video`'s segment `segment`; returns its entry. */
  add(words: Uint32Array, video: number, segment: number, offset = 0): number {
    if (this.frozen !== undefined) throw new Error('the index is frozen')
    if (this.count === this.videos.length) this.grow()
    this.words.set(words.subarray(offset, offset + fingerprintWords), this.count * fingerprintWords)
    this.videos[this.count] = video
    this.segments[this.count] = segment
    return this.count++
  }

  /** The video and segment of an entry. */
  entry(entry: number): { video: number; segment: number } {
    return { video: this.videos[entry]!, segment: this.segments[entry]! }
  }

  /** All entries' words (entry e at e · 25). */
  get allWords(): Uint32Array {
    return this.words.subarray(0, this.count * fingerprintWords)
  }

  /** Builds the band tables; the index then answers queries and takes no more fingerprints. */
  freeze(): void {
    if (this.frozen !== undefined) return
    const n = this.count
    const buckets = 1 << this.dirBits
    this.frozen = []
    const keys = new Uint32Array(n)
    for (let band = 0; band < this.bands; band++) {
      for (let e = 0; e < n; e++) keys[e] = this.key(this.words, e * fingerprintWords, band)
      // Counting sort by the low `dirBits` of the key, then (for 32-bit keys) by the rest within a bucket.
      const directory = new Uint32Array(buckets + 1)
      for (let e = 0; e < n; e++) directory[(keys[e]! & (buckets - 1)) + 1]!++
      for (let b = 0; b < buckets; b++) directory[b + 1]! += directory[b]!
      const fill = directory.slice(0, buckets)
      const sortedKeys = new Uint32Array(n)
      const entries = new Uint32Array(n)
      for (let e = 0; e < n; e++) {
        const at = fill[keys[e]! & (buckets - 1)]!++
        sortedKeys[at] = keys[e]!
        entries[at] = e
      }
      if (this.layout.bandBits === 32) sortWithinBuckets(directory, sortedKeys, entries)
      this.frozen.push({ directory, keys: sortedKeys, entries })
    }
    this.seen = new Uint32Array(Math.ceil(n / 32))
  }

  /**
   * Calls `visit(entry, distance)` for every reference within `maxDistance` bits of the query (words
   * at `offset`) that shares a probed band key with it. Returns how many candidates were compared.
   */
  search(
    query: Uint32Array,
    offset: number,
    maxDistance: number,
    visit: (entry: number, distance: number) => void,
  ): QueryCost {
    const tables = this.frozen
    if (tables === undefined) throw new Error('freeze the index before searching it')
    // A `visit` that searches again gets buffers of its own: this query's candidates are still being read.
    const outer = this.searching ? this.candidates : undefined
    if (outer !== undefined) this.candidates = new Uint32Array(1024)
    this.searching = true
    try {
      const { bandBits, probeRadius } = this.layout
      // First every probe's distinct candidates, then their verification in one pass: the scattered
      // loads of successive candidates' fingerprints then overlap (they, not the counting, cost).
      let count = 0
      for (let band = 0; band < this.bands; band++) {
        const table = tables[band]!
        const key = this.key(query, offset, band)
        count = this.gather(table, key, count)
        if (probeRadius >= 1)
          for (let i = 0; i < bandBits; i++) {
            const one = (key ^ (1 << i)) >>> 0
            count = this.gather(table, one, count)
            if (probeRadius >= 2)
              for (let j = i + 1; j < bandBits; j++) count = this.gather(table, (one ^ (1 << j)) >>> 0, count)
          }
      }
      const candidates = this.candidates
      const seen = this.seen
      for (let i = 0; i < count; i++) seen[candidates[i]! >>> 5] = 0
      scanEntriesWithin(query, offset, this.words, candidates, count, maxDistance, visit)
      return { candidates: count }
    } finally {
      if (outer !== undefined) this.candidates = outer
      else this.searching = false
    }
  }

  /** Appends the entries of `table` under `key` not yet seen to `candidates`; returns their count. */
  private gather(table: BandTable, key: number, count: number): number {
    const bucket = key & ((1 << this.dirBits) - 1)
    let at = table.directory[bucket]!
    const end = table.directory[bucket + 1]!
    const { keys, entries } = table
    if (this.layout.bandBits === 32) at = lowerBound(keys, at, end, key)
    const seen = this.seen
    let candidates = this.candidates
    for (; at < end && keys[at] === key; at++) {
      const entry = entries[at]!
      const bit = 1 << (entry & 31)
      const word = seen[entry >>> 5]!
      if ((word & bit) !== 0) continue
      seen[entry >>> 5] = word | bit
      if (count === candidates.length) {
        const grown = new Uint32Array(Math.min(candidates.length * 2, Math.max(this.count, 1024)))
        grown.set(candidates)
        this.candidates = candidates = grown
      }
      candidates[count++] = entry
    }
    return count
  }

  /** Key of band `band` of the fingerprint at word offset `offset`. */
  private key(words: Uint32Array, offset: number, band: number): number {
    const bit = band * this.layout.bandBits
    const word = words[offset + (bit >>> 5)]!
    if (this.layout.bandBits === 32) return word >>> 0
    return (word >>> (bit & 31)) & ((1 << this.layout.bandBits) - 1)
  }

  private grow(): void {
    const capacity = this.videos.length * 2
    const words = new Uint32Array(capacity * fingerprintWords)
    words.set(this.words)
    this.words = words
    const videos = new Uint32Array(capacity)
    videos.set(this.videos)
    this.videos = videos
    const segments = new Uint32Array(capacity)
    segments.set(this.segments)
    this.segments = segments
  }
}

/** Sorts each bucket's keys (and their entries alike) by key: insertion sort, buckets are small. */
function sortWithinBuckets(directory: Uint32Array, keys: Uint32Array, entries: Uint32Array): void {
  for (let b = 0; b + 1 < directory.length; b++) {
    const from = directory[b]!
    const to = directory[b + 1]!
    if (to - from > 64) {
      const order = Array.from({ length: to - from }, (_, i) => from + i).sort((x, y) => keys[x]! - keys[y]!)
      const k = order.map((i) => keys[i]!)
      const e = order.map((i) => entries[i]!)
      keys.set(k, from)
      entries.set(e, from)
      continue
    }
    for (let i = from + 1; i < to; i++) {
      const key = keys[i]!
      const entry = entries[i]!
      let j = i - 1
      while (j >= from && keys[j]! > key) {
        keys[j + 1] = keys[j]!
        entries[j + 1] = entries[j]!
        j--
      }
      keys[j + 1] = key
      entries[j + 1] = entry
    }
  }
}

function lowerBound(keys: Uint32Array, from: number, to: number, key: number): number {
  while (from < to) {
    const mid = (from + to) >>> 1
    if (keys[mid]! < key) from = mid + 1
    else to = mid
  }
  return from
}
