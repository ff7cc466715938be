import type { UnitCost } from '../jobs/kind.ts'

/*
 * Task sizes from a participant's measured speed. Speeds are in reference units a second (the unit
 * the participant's meter reports, of relative cost 1); a kind's unit costs `relativeCost` of them,
 * and carries its own bytes in and out.
 */

/** What the sizer knows of a participant. */
export interface SpeedEstimate {
  /** Reference units (data threads) per second, or 0 when not measured yet. */
  threadsPerSec: number
  /** Upstream bytes per second, or 0 when unknown (transfer then counts as free). */
  bandwidthBytesPerSec: number
  rttMs: number
}

/** What a task costs per unit (a kind's `UnitCost`, less its size limits). */
export type TaskCost = Pick<UnitCost, 'relativeCost' | 'inputBytesPerUnit' | 'resultBytesPerUnit'>

/** Limits of the sizer, in the kind's units. */
export interface SizerLimits {
  targetBlockMs: number
  minUnits: number
  maxUnits: number
  calibrationUnits: number
}

/**
 * Units in a participant's next task, so that computing it and moving its bytes takes about
 * `targetBlockMs`: more units to more processing power and better links (the seed's rule). A
 * participant not measured yet gets a small calibration task.
 */
export function taskUnits(speed: SpeedEstimate, cost: TaskCost, limits: SizerLimits): number {
  if (speed.threadsPerSec <= 0) return limits.calibrationUnits
  const secondsPerUnit =
    cost.relativeCost / speed.threadsPerSec +
    (speed.bandwidthBytesPerSec > 0
      ? (cost.resultBytesPerUnit + cost.inputBytesPerUnit) / speed.bandwidthBytesPerSec
      : 0)
  // The round trip is paid once per task; it eats into the target but never below a quarter of it.
  const budget = Math.max(limits.targetBlockMs / 4, limits.targetBlockMs - speed.rttMs) / 1000
  const units = Math.round(budget / secondsPerUnit)
  return Math.min(limits.maxUnits, Math.max(limits.minUnits, units))
}

/** Expected time for a participant to compute `units` units of a task and return the result, ms. */
export function expectedTaskMs(speed: SpeedEstimate, cost: TaskCost, units: number): number {
  const compute = (units * cost.relativeCost) / speed.threadsPerSec
  const transfer =
    speed.bandwidthBytesPerSec > 0
      ? (units * (cost.resultBytesPerUnit + cost.inputBytesPerUnit)) / speed.bandwidthBytesPerSec
      : 0
  return (compute + transfer) * 1000 + speed.rttMs
}
