/**
 * A seeded pseudo-random generator (mulberry32): the simulator draws every random choice from one,
 * so a seed fixes a whole run.
 */
export class Random {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** Exponentially distributed with the given mean (waiting times of a Poisson process). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p
  }

  /** An element chosen with probability proportional to its weight. */
  weighted<T extends { weight: number }>(items: readonly T[]): T {
    const total = items.reduce((a, i) => a + i.weight, 0)
    let x = this.next() * total
    for (const item of items) {
      x -= item.weight
      if (x < 0) return item
    }
    return items[items.length - 1]!
  }
}
