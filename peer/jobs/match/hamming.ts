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

/** Set bits of a 32-bit value (SWAR). */
export function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff
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
 * its exact distance; returns how many it visited. The query's words stay in locals and the loop is
 * unrolled; a reference is dropped once 13, 17 or 21 words put it past `limit` (at the verification
 * threshold, 200 of 800 bits, an unrelated one is past it after 13 or 14 words).
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
  const t = popcount16
  const q0 = query[queryOffset]!
  const q1 = query[queryOffset + 1]!
  const q2 = query[queryOffset + 2]!
  const q3 = query[queryOffset + 3]!
  const q4 = query[queryOffset + 4]!
  const q5 = query[queryOffset + 5]!
  const q6 = query[queryOffset + 6]!
  const q7 = query[queryOffset + 7]!
  const q8 = query[queryOffset + 8]!
  const q9 = query[queryOffset + 9]!
  const q10 = query[queryOffset + 10]!
  const q11 = query[queryOffset + 11]!
  const q12 = query[queryOffset + 12]!
  const q13 = query[queryOffset + 13]!
  const q14 = query[queryOffset + 14]!
  const q15 = query[queryOffset + 15]!
  const q16 = query[queryOffset + 16]!
  const q17 = query[queryOffset + 17]!
  const q18 = query[queryOffset + 18]!
  const q19 = query[queryOffset + 19]!
  const q20 = query[queryOffset + 20]!
  const q21 = query[queryOffset + 21]!
  const q22 = query[queryOffset + 22]!
  const q23 = query[queryOffset + 23]!
  const q24 = query[queryOffset + 24]!
  let hits = 0
  for (let e = 0, at = 0; e < count; e++, at += fingerprintWords) {
    let x = q0 ^ refs[at]!
    let d = t[x & 0xffff]! + t[x >>> 16]!
    x = q1 ^ refs[at + 1]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q2 ^ refs[at + 2]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q3 ^ refs[at + 3]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q4 ^ refs[at + 4]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q5 ^ refs[at + 5]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q6 ^ refs[at + 6]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q7 ^ refs[at + 7]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q8 ^ refs[at + 8]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q9 ^ refs[at + 9]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q10 ^ refs[at + 10]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q11 ^ refs[at + 11]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q12 ^ refs[at + 12]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q13 ^ refs[at + 13]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q14 ^ refs[at + 14]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q15 ^ refs[at + 15]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q16 ^ refs[at + 16]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q17 ^ refs[at + 17]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q18 ^ refs[at + 18]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q19 ^ refs[at + 19]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q20 ^ refs[at + 20]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q21 ^ refs[at + 21]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q22 ^ refs[at + 22]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q23 ^ refs[at + 23]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q24 ^ refs[at + 24]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    hits++
    visit(e, d)
  }
  return hits
}

/**
 * Verification: like `scanWithin`, over the listed entries `entries[0..count)` of `refs` (a list of
 * candidates), in list order. Each entry's first 13 words are counted before any branch, so the
 * loads of successive candidates overlap (they are scattered: the memory waits, not the counting,
 * are the cost).
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
  const t = popcount16
  const q0 = query[queryOffset]!
  const q1 = query[queryOffset + 1]!
  const q2 = query[queryOffset + 2]!
  const q3 = query[queryOffset + 3]!
  const q4 = query[queryOffset + 4]!
  const q5 = query[queryOffset + 5]!
  const q6 = query[queryOffset + 6]!
  const q7 = query[queryOffset + 7]!
  const q8 = query[queryOffset + 8]!
  const q9 = query[queryOffset + 9]!
  const q10 = query[queryOffset + 10]!
  const q11 = query[queryOffset + 11]!
  const q12 = query[queryOffset + 12]!
  const q13 = query[queryOffset + 13]!
  const q14 = query[queryOffset + 14]!
  const q15 = query[queryOffset + 15]!
  const q16 = query[queryOffset + 16]!
  const q17 = query[queryOffset + 17]!
  const q18 = query[queryOffset + 18]!
  const q19 = query[queryOffset + 19]!
  const q20 = query[queryOffset + 20]!
  const q21 = query[queryOffset + 21]!
  const q22 = query[queryOffset + 22]!
  const q23 = query[queryOffset + 23]!
  const q24 = query[queryOffset + 24]!
  let hits = 0
  for (let i = 0; i < count; i++) {
    const e = entries[i]!
    const at = e * fingerprintWords
    let x = q0 ^ refs[at]!
    let d = t[x & 0xffff]! + t[x >>> 16]!
    x = q1 ^ refs[at + 1]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q2 ^ refs[at + 2]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q3 ^ refs[at + 3]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q4 ^ refs[at + 4]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q5 ^ refs[at + 5]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q6 ^ refs[at + 6]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q7 ^ refs[at + 7]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q8 ^ refs[at + 8]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q9 ^ refs[at + 9]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q10 ^ refs[at + 10]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q11 ^ refs[at + 11]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q12 ^ refs[at + 12]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q13 ^ refs[at + 13]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q14 ^ refs[at + 14]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q15 ^ refs[at + 15]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q16 ^ refs[at + 16]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q17 ^ refs[at + 17]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q18 ^ refs[at + 18]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q19 ^ refs[at + 19]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q20 ^ refs[at + 20]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    x = q21 ^ refs[at + 21]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q22 ^ refs[at + 22]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q23 ^ refs[at + 23]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    x = q24 ^ refs[at + 24]!
    d += t[x & 0xffff]! + t[x >>> 16]!
    if (d > limit) continue
    hits++
    visit(e, d)
  }
  return hits
}
