import { fingerprintFormat } from './format.ts'

/*
 * Hamming distance over 800-bit fingerprints held as 25 little-endian 32-bit words: the inner loop
 * of verification and of brute force. Bits are counted by a 16-bit table (64 KiB, stays in L2): two
 * loads a word beat the SWAR count's dozen operations in V8 (`crowdmesh bench`, matching section).
 */

/** 32-bit words of one fingerprint. */
export const fingerprintWords = fingerprintFormat.bytes / 4

/** A fingerprint's bytes as words (copies: the bytes need not be aligned). */
export function toWords(bits: Uint8Array): Uint32Array {
  const words = new Uint32Array(fingerprintWords)
  new Uint8Array(words.buffer).set(bits.subarray(0, fingerprintFormat.bytes))
  return words
}

/** Set bits of every 16-bit value. */
const popcount16 = (() => {
  const table = new Uint8Array(1 << 16)
  for (let i = 1; i < table.length; i++) table[i] = (i & 1) + table[i >>> 1]!
  return table
})()

/** Bits that differ between fingerprint `a` at word offset `ai` and `b` at `bi`. */
export function hamming(a: Uint32Array, ai: number, b: Uint32Array, bi: number): number {
  const t = popcount16
  let d = 0
  for (let w = 0; w < fingerprintWords; w++) {
    const x = a[ai + w]! ^ b[bi + w]!
    d += t[x & 0xffff]! + t[x >>> 16]!
  }
  return d
}

/** Like `hamming`, but stops (returning a value above `limit`) once the distance passes `limit`. */
export function hammingWithin(a: Uint32Array, ai: number, b: Uint32Array, bi: number, limit: number): number {
  const t = popcount16
  let d = 0
  for (let w = 0; w < fingerprintWords; w++) {
    const x = a[ai + w]! ^ b[bi + w]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) return d
  }
  return d
}

/**
 * Brute force: calls `visit(entry, distance)` for every fingerprint of `refs` (entry e at word e · 25,
 * `count` of them) within `limit` bits of the query at word offset `queryOffset`, in entry order, with
 * its exact distance; returns how many it visited.
 */
export function scanWithin(
  query: Uint32Array,
  queryOffset: number,
  refs: Uint32Array,
  count: number,
  limit: number,
  visit: (entry: number, distance: number) => void,
): number {
  if (count * fingerprintWords > refs.length)
    throw new RangeError(`${count} fingerprints do not fit the words`)
  return scan(query, queryOffset, refs, undefined, count, limit, visit)
}

/**
 * Verification: like `scanWithin`, over the listed entries `entries[0..count)` of `refs` (a query's
 * candidates), in list order.
 */
export function scanEntriesWithin(
  query: Uint32Array,
  queryOffset: number,
  refs: Uint32Array,
  entries: ArrayLike<number>,
  count: number,
  limit: number,
  visit: (entry: number, distance: number) => void,
): number {
  return scan(query, queryOffset, refs, entries, count, limit, visit)
}

/**
 * The scan both share: entries `0..count)` of `refs`, or `entries[0..count)`. The query's words stay
 * in locals and the loop is unrolled; a reference is dropped once its first 13, 14, 15, 17 or 21
 * words put it past `limit` (an unrelated one is past the threshold after 13 or 14 words).
 */
function scan(
  query: Uint32Array,
  queryOffset: number,
  refs: Uint32Array,
  entries: ArrayLike<number> | undefined,
  count: number,
  limit: number,
  visit: (entry: number, distance: number) => void,
): number {
  const t = popcount16
  // Signed views: V8 keeps int32 words in registers, where uint32 ones above 2³¹ become doubles.
  const q = new Int32Array(query.buffer, query.byteOffset + queryOffset * 4, fingerprintWords)
  const r = new Int32Array(refs.buffer, refs.byteOffset, refs.length)
  const q0 = q[0]!
  const q1 = q[1]!
  const q2 = q[2]!
  const q3 = q[3]!
  const q4 = q[4]!
  const q5 = q[5]!
  const q6 = q[6]!
  const q7 = q[7]!
  const q8 = q[8]!
  const q9 = q[9]!
  const q10 = q[10]!
  const q11 = q[11]!
  const q12 = q[12]!
  const q13 = q[13]!
  const q14 = q[14]!
  const q15 = q[15]!
  const q16 = q[16]!
  const q17 = q[17]!
  const q18 = q[18]!
  const q19 = q[19]!
  const q20 = q[20]!
  const q21 = q[21]!
  const q22 = q[22]!
  const q23 = q[23]!
  const q24 = q[24]!
  let hits = 0
  for (let i = 0; i < count; i++) {
    const e = entries === undefined ? i : entries[i]!
    const at = e * fingerprintWords
    let x = q0 ^ r[at]!
    let d = t[x & 0xffff]! + t[x >>> 16]!
    x = q1 ^ r[at + 1]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q2 ^ r[at + 2]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q3 ^ r[at + 3]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q4 ^ r[at + 4]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q5 ^ r[at + 5]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q6 ^ r[at + 6]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q7 ^ r[at + 7]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q8 ^ r[at + 8]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q9 ^ r[at + 9]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q10 ^ r[at + 10]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q11 ^ r[at + 11]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q12 ^ r[at + 12]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q13 ^ r[at + 13]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q14 ^ r[at + 14]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q15 ^ r[at + 15]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q16 ^ r[at + 16]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q17 ^ r[at + 17]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q18 ^ r[at + 18]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q19 ^ r[at + 19]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q20 ^ r[at + 20]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q21 ^ r[at + 21]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q22 ^ r[at + 22]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q23 ^ r[at + 23]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q24 ^ r[at + 24]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    hits++
    visit(e, d)
  }
  return hits
}
