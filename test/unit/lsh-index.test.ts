import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { matchDefaults } from '../../peer/jobs/match/defaults.ts'
import {
  decodeFingerprints,
  encodeFingerprints,
  maxFingerprintsPerFile,
} from '../../peer/jobs/match/fingerprint-file.ts'
import type { Fingerprint } from '../../peer/jobs/match/fingerprint.ts'
import { fingerprintBits, fingerprintFormat } from '../../peer/jobs/match/format.ts'
import {
  fingerprintWords,
  hamming,
  hammingWithin,
  scanEntriesWithin,
  scanWithin,
} from '../../peer/jobs/match/hamming.ts'
import { FingerprintIndex, type LshLayout } from '../../peer/jobs/match/lsh-index.ts'

const W = fingerprintWords
const threshold = matchDefaults.maxHammingBits

const layouts: LshLayout[] = ([8, 16, 32] as const).flatMap((bandBits) =>
  ([0, 1, 2] as const).map((probeRadius) => ({ bandBits, probeRadius })),
)

/**
 * The layout `crowdmesh bench` chose: the only one of the seed's and the multi-index layouts with
 * recall ≥ 0.99 at the threshold when copies lie anywhere up to it (README, "Video matching").
 */
const chosenLayout: LshLayout = { bandBits: 16, probeRadius: 1 }

/** xorshift32 words from a seed: corpora the same on every run of a seed. */
function words(seed: number): () => number {
  let s = seed >>> 0 || 1
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return s >>> 0
  }
}

function randomFingerprints(count: number, next: () => number): Uint32Array {
  const out = new Uint32Array(count * W)
  for (let i = 0; i < out.length; i++) out[i] = next()
  return out
}

/** A copy of fingerprint `from` of `source` with the given bits flipped, at `to` of `target`. */
function plant(source: Uint32Array, from: number, target: Uint32Array, to: number, flips: Iterable<number>) {
  target.set(source.subarray(from * W, from * W + W), to * W)
  for (const bit of flips) target[to * W + (bit >>> 5)]! ^= 1 << (bit & 31)
}

/** `count` distinct bits of the 800, drawn from `next`. */
function distinctBits(count: number, next: () => number): number[] {
  const bits = Array.from({ length: fingerprintBits }, (_, i) => i)
  for (let i = 0; i < count; i++) {
    const j = i + (next() % (fingerprintBits - i))
    ;[bits[i], bits[j]] = [bits[j]!, bits[i]!]
  }
  return bits.slice(0, count)
}

function indexOf(refs: Uint32Array, layout: LshLayout): FingerprintIndex {
  const index = new FingerprintIndex(layout)
  for (let e = 0; e < refs.length / W; e++) index.add(refs, e, 0, e * W)
  index.freeze()
  return index
}

/** Whether some band of the two fingerprints differs in at most `radius` bits (a probed key is shared). */
function sharesProbedKey(a: Uint32Array, ai: number, b: Uint32Array, bi: number, layout: LshLayout): boolean {
  for (let band = 0; band < fingerprintBits / layout.bandBits; band++) {
    let differ = 0
    for (let bit = band * layout.bandBits; bit < (band + 1) * layout.bandBits; bit++)
      differ += ((a[ai + (bit >>> 5)]! ^ b[bi + (bit >>> 5)]!) >>> (bit & 31)) & 1
    if (differ <= layout.probeRadius) return true
  }
  return false
}

/** Pigeonhole: a copy this close shares at least one band within the probe radius. */
const pigeonhole = (layout: LshLayout) => (fingerprintBits / layout.bandBits) * (layout.probeRadius + 1) - 1

describe('Hamming distance', () => {
  it('scanWithin, scanEntriesWithin and hammingWithin agree with hamming', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 0, max: fingerprintBits }), (seed, limit) => {
        const next = words(seed)
        const refs = randomFingerprints(64, next)
        const query = new Uint32Array(W)
        // Near and far references: copies of the query at random distances, and random ones.
        query.set(refs.subarray(0, W))
        for (let e = 0; e < 32; e++) plant(query, 0, refs, e, distinctBits(next() % 400, next))
        const expected = new Map<number, number>()
        for (let e = 0; e < 64; e++) {
          const d = hamming(query, 0, refs, e * W)
          if (d <= limit) expected.set(e, d)
          const within = hammingWithin(query, 0, refs, e * W, limit)
          if (d <= limit) expect(within).toBe(d)
          else expect(within).toBeGreaterThan(limit)
        }
        const scanned = new Map<number, number>()
        expect(scanWithin(query, 0, refs, 64, limit, (e, d) => scanned.set(e, d))).toBe(expected.size)
        expect(scanned).toEqual(expected)
        const order = Array.from({ length: 64 }, (_, i) => 63 - i)
        const listed: [number, number][] = []
        scanEntriesWithin(query, 0, refs, order, 64, limit, (e, d) => listed.push([e, d]))
        expect(listed).toEqual([...expected].sort((a, b) => b[0] - a[0]))
      }),
      { numRuns: 100 },
    )
  })

  it('counts every differing bit', () => {
    const a = new Uint32Array(W)
    const b = new Uint32Array(W).fill(0xffffffff)
    expect(hamming(a, 0, b, 0)).toBe(fingerprintBits)
    b[7] = 0xfffffffe
    expect(hamming(a, 0, b, 0)).toBe(fingerprintBits - 1)
  })
})

describe('LSH index', () => {
  it('reports exactly the references within the limit that share a probed band key, with their distance', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.constantFrom(...layouts),
        fc.integer({ min: 0, max: 320 }),
        (seed, layout, limit) => {
          const next = words(seed)
          const refs = randomFingerprints(120, next)
          const queries = randomFingerprints(12, next)
          // Most queries are copies of a reference at a random distance; one in four is unrelated.
          for (let q = 0; q < 12; q++)
            if (q % 4 !== 3) plant(refs, next() % 120, queries, q, distinctBits(next() % 321, next))
          const index = indexOf(refs, layout)
          for (let q = 0; q < 12; q++) {
            const reported = new Map<number, number>()
            const cost = index.search(queries, q * W, limit, (entry, distance) => {
              expect(reported.has(entry)).toBe(false)
              reported.set(entry, distance)
            })
            const expected = new Map<number, number>()
            let candidates = 0
            for (let e = 0; e < 120; e++) {
              if (!sharesProbedKey(queries, q * W, refs, e * W, layout)) continue
              candidates++
              const d = hamming(queries, q * W, refs, e * W)
              if (d <= limit) expected.set(e, d)
            }
            expect(reported).toEqual(expected)
            expect(cost.candidates).toBe(candidates)
            for (const [entry] of reported) expect(index.entry(entry)).toEqual({ video: entry, segment: 0 })
          }
        },
      ),
      { numRuns: 60 },
    )
  })

  it('always finds a copy within the pigeonhole distance, for every layout', () => {
    const copy = fc.constantFrom(...layouts).chain((layout) =>
      fc.record({
        layout: fc.constant(layout),
        flips: fc.uniqueArray(fc.integer({ min: 0, max: fingerprintBits - 1 }), {
          maxLength: pigeonhole(layout),
        }),
        seed: fc.integer(),
      }),
    )
    fc.assert(
      fc.property(copy, ({ layout, flips, seed }) => {
        const next = words(seed)
        const refs = randomFingerprints(50, next)
        const source = next() % 50
        const query = new Uint32Array(W)
        plant(refs, source, query, 0, flips)
        let found = false
        indexOf(refs, layout).search(query, 0, fingerprintBits, (entry, distance) => {
          if (entry === source) found = distance === flips.length
        })
        expect(found).toBe(true)
      }),
      { numRuns: 150 },
    )
  })

  it('finds the worst-spread copy at the pigeonhole distance, for every layout', () => {
    // radius + 1 flips in every band but one, which keeps radius: the farthest copy it must find.
    for (const layout of layouts) {
      const next = words(7)
      const refs = randomFingerprints(20, next)
      const bands = fingerprintBits / layout.bandBits
      const flips: number[] = []
      for (let band = 0; band < bands; band++)
        for (let k = 0; k < layout.probeRadius + (band === bands - 1 ? 0 : 1); k++)
          flips.push(band * layout.bandBits + k)
      expect(flips.length).toBe(pigeonhole(layout))
      const query = new Uint32Array(W)
      plant(refs, 3, query, 0, flips)
      const found: number[] = []
      indexOf(refs, layout).search(query, 0, fingerprintBits, (entry) => found.push(entry))
      expect(found).toContain(3)
      // One more flip in that last band, and no band is within the radius any more.
      plant(refs, 3, query, 0, [...flips, (bands - 1) * layout.bandBits + layout.probeRadius])
      const after: number[] = []
      indexOf(refs, layout).search(query, 0, fingerprintBits, (entry) => after.push(entry))
      expect(after).not.toContain(3)
    }
  })

  it(`finds ≥ 99 % of brute force's pairs within the threshold with the chosen layout (copies at 0–${threshold} bits)`, () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const next = words(seed)
        const refs = randomFingerprints(3000, next)
        const queries = new Uint32Array(2000 * W)
        for (let q = 0; q < 2000; q++)
          plant(refs, next() % 3000, queries, q, distinctBits(next() % (threshold + 1), next))
        const truth = new Set<number>()
        for (let q = 0; q < 2000; q++)
          scanWithin(queries, q * W, refs, 3000, threshold, (e) => truth.add(q * 4096 + e))
        const index = indexOf(refs, chosenLayout)
        let found = 0
        for (let q = 0; q < 2000; q++)
          index.search(queries, q * W, threshold, (e) => {
            expect(truth.has(q * 4096 + e)).toBe(true)
            found++
          })
        expect(truth.size).toBeGreaterThanOrEqual(2000)
        expect(found / truth.size).toBeGreaterThanOrEqual(0.99)
      }),
      { numRuns: 5 },
    )
  })

  it('answers a query from inside `visit` without losing the outer query', () => {
    const next = words(3)
    const refs = randomFingerprints(40, next)
    const index = indexOf(refs, { bandBits: 16, probeRadius: 0 })
    const outer: number[] = []
    index.search(refs, 5 * W, threshold, (entry) => {
      outer.push(entry)
      const inner: number[] = []
      index.search(refs, 9 * W, threshold, (e) => inner.push(e))
      expect(inner).toEqual([9])
    })
    expect(outer).toEqual([5])
  })

  it('refuses a search before freeze and an add after it', () => {
    const index = new FingerprintIndex()
    index.add(new Uint32Array(W), 0, 0)
    expect(() => index.search(new Uint32Array(W), 0, threshold, () => {})).toThrow(Error)
    index.freeze()
    expect(() => index.add(new Uint32Array(W), 0, 1)).toThrow(Error)
    const found: number[] = []
    index.search(new Uint32Array(W), 0, threshold, (entry) => found.push(entry))
    expect(found).toEqual([0])
  })

  it('searches an empty index', () => {
    const index = new FingerprintIndex(chosenLayout)
    index.freeze()
    expect(index.search(new Uint32Array(W), 0, threshold, () => {})).toEqual({ candidates: 0 })
  })

  it('refuses a layout it does not know', () => {
    for (const layout of [
      { bandBits: 12, probeRadius: 0 },
      { bandBits: 64, probeRadius: 0 },
      { bandBits: 16, probeRadius: 3 },
      { bandBits: 16, probeRadius: -1 },
    ])
      expect(() => new FingerprintIndex(layout as unknown as LshLayout)).toThrow(RangeError)
  })
})

describe('fingerprint files', () => {
  const fingerprint = fc
    .record({
      segment: fc.integer({ min: 0, max: 3600 }),
      phase: fc.integer({ min: 0, max: fingerprintFormat.phases - 1 }),
      still: fc.boolean(),
      bits: fc.uint8Array({ minLength: fingerprintFormat.bytes, maxLength: fingerprintFormat.bytes }),
    })
    .map((f): Fingerprint => f)
  const inOrder = fc
    .uniqueArray(fingerprint, {
      maxLength: 40,
      selector: (f) => f.segment * fingerprintFormat.phases + f.phase,
    })
    .map((list) => list.sort((a, b) => a.segment - b.segment || a.phase - b.phase))
  const sample = (): Fingerprint[] =>
    [0, 1, 2].flatMap((segment) =>
      [0, 1, 2, 3].map((phase) => ({
        segment,
        phase,
        still: phase === 2,
        bits: new Uint8Array(fingerprintFormat.bytes).fill(segment * 4 + phase),
      })),
    )
  const refusal = (bytes: Uint8Array, field?: string) =>
    expect(() => decodeFingerprints(bytes)).toThrow(
      expect.objectContaining({ name: 'InvalidMessageError', ...(field !== undefined && { field }) }),
    )
  const headerBytes = 20
  const recordBytes = 8 + fingerprintFormat.bytes

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(inOrder, fc.double({ min: 0, max: 3600, noNaN: true }), (fingerprints, duration) => {
        const decoded = decodeFingerprints(encodeFingerprints({ duration, fingerprints }))
        expect(decoded.duration).toBe(duration)
        expect(decoded.fingerprints).toEqual(fingerprints)
      }),
      { numRuns: 100 },
    )
  })

  it('decodes bytes that do not start at their buffer’s start', () => {
    const bytes = encodeFingerprints({ duration: 3, fingerprints: sample() })
    const shifted = new Uint8Array(bytes.length + 3)
    shifted.set(bytes, 3)
    expect(decodeFingerprints(shifted.subarray(3)).fingerprints).toEqual(sample())
  })

  it('refuses another magic, another version, another phase count and a bad duration', () => {
    const good = () => encodeFingerprints({ duration: 3, fingerprints: sample() })
    const magic = good()
    magic[0] = 0
    refusal(magic, '(fingerprints)')
    const version = good()
    version[4] = fingerprintFormat.version + 1
    refusal(version, 'version')
    const phases = good()
    phases[5] = fingerprintFormat.phases + 1
    refusal(phases, 'phases')
    const duration = good()
    new DataView(duration.buffer).setFloat64(8, Number.NaN, true)
    refusal(duration, 'duration')
    new DataView(duration.buffer).setFloat64(8, -1, true)
    refusal(duration, 'duration')
  })

  it('refuses truncated bytes and a count that does not fit them', () => {
    const bytes = encodeFingerprints({ duration: 3, fingerprints: sample() })
    refusal(bytes.subarray(0, headerBytes - 1))
    refusal(bytes.subarray(0, 0))
    refusal(bytes.subarray(0, bytes.length - 1), 'count')
    refusal(bytes.subarray(0, bytes.length - recordBytes), 'count')
    const more = bytes.slice()
    new DataView(more.buffer).setUint32(16, sample().length + 1, true)
    refusal(more, 'count')
    const huge = bytes.slice()
    new DataView(huge.buffer).setUint32(16, maxFingerprintsPerFile + 1, true)
    refusal(huge, 'count')
    const longer = new Uint8Array(bytes.length + 1)
    longer.set(bytes)
    refusal(longer, 'count')
  })

  it('refuses records out of order or repeated', () => {
    const list = sample()
    refusal(encodeFingerprints({ duration: 3, fingerprints: [...list].reverse() }), '[1]')
    refusal(encodeFingerprints({ duration: 3, fingerprints: [list[0]!, list[2]!, list[1]!] }), '[2]')
    refusal(encodeFingerprints({ duration: 3, fingerprints: [list[0]!, list[1]!, list[1]!] }), '[2]')
    refusal(encodeFingerprints({ duration: 3, fingerprints: [list[4]!, list[4]!] }), '[1]')
  })

  it('refuses flags it does not know', () => {
    const bytes = encodeFingerprints({ duration: 3, fingerprints: sample() })
    bytes[headerBytes + 5 * recordBytes + 5] = 2
    refusal(bytes, '[5].flags')
  })

  it('refuses a phase out of range', () => {
    const bytes = encodeFingerprints({ duration: 3, fingerprints: sample() })
    bytes[headerBytes + 2 * recordBytes + 4] = fingerprintFormat.phases
    refusal(bytes, '[2].phase')
    bytes[headerBytes + 2 * recordBytes + 4] = 255
    refusal(bytes, '[2].phase')
  })
})
