/**
 * A token bucket: `ratePerSecond` sustained, `burst` at once. Time comes from the caller (the
 * coordinator's clock), so tests drive it exactly.
 */
export class TokenBucket {
  private readonly rate: number
  private readonly burst: number
  private tokens: number
  private last: number

  constructor(ratePerSecond: number, burst: number, now: number) {
    this.rate = ratePerSecond
    this.burst = burst
    this.tokens = burst
    this.last = now
  }

  /** Takes one token if there is one; false means the caller is over its rate. */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
