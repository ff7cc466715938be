import type { Capability } from '../protocol/capability.ts'

/** Options of a capability meter. */
export interface CapabilityMeterInit {
  cores: number
  /** Share of the processor this participant lends, (0, 1]. */
  dutyCycle: number
  /** Weight of a new measurement in the running estimates (default 0.3). */
  smoothing?: number
}

/**
 * What a participant measures of itself and states when it asks for work: its throughput from the
 * blocks it completes (calibration block first), its round trip from lease requests, and its
 * upstream bandwidth from result uploads where the transport can time them.
 */
export class CapabilityMeter {
  private readonly cores: number
  private readonly dutyCycle: number
  private readonly smoothing: number
  private threadsPerSec = 0
  private rttMs = 0
  private bandwidth = 0

  constructor(init: CapabilityMeterInit) {
    this.cores = init.cores
    this.dutyCycle = init.dutyCycle
    this.smoothing = init.smoothing ?? 0.3
  }

  /** A block of `threads` took `busyMs` of compute: throughput at full speed, scaled to the duty cycle. */
  recordBlock(threads: number, busyMs: number): void {
    const rate = ((threads * 1000) / Math.max(busyMs, 0.01)) * this.dutyCycle
    this.threadsPerSec = this.blend(this.threadsPerSec, rate)
  }

  /** A request/response round trip took `ms`. */
  recordRoundTrip(ms: number): void {
    this.rttMs = this.blend(this.rttMs, ms)
  }

  /** `bytes` went up in `ms`. */
  recordUpload(bytes: number, ms: number): void {
    if (ms <= 0) return
    this.bandwidth = this.blend(this.bandwidth, (bytes * 1000) / ms)
  }

  /** The capability to state now. */
  current(): Capability {
    return {
      cores: this.cores,
      threadsPerSec: this.threadsPerSec,
      bandwidthBytesPerSec: this.bandwidth,
      rttMs: this.rttMs,
      dutyCycle: this.dutyCycle,
    }
  }

  private blend(previous: number, sample: number): number {
    return previous === 0 ? sample : previous + this.smoothing * (sample - previous)
  }
}

/**
 * Idle time that keeps a participant within its duty cycle after `busyMs` of work: busy / (busy + idle)
 * = duty, so the device's own use stays unaffected.
 */
export function dutyCyclePauseMs(busyMs: number, dutyCycle: number): number {
  return dutyCycle >= 1 ? 0 : (busyMs * (1 - dutyCycle)) / dutyCycle
}
