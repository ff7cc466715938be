import { describe, expect, it } from 'vitest'
import { simulateMatchRun } from '../../peer/simulator/match-run.ts'

/*
 * The simulator's match runs (issue 15): a crowd that comes and goes, with unequal speed, bandwidth
 * and disk, over the real pool. Every slice must be done exactly once however many participants
 * leave mid-task, and a seed fixes the whole run.
 */

describe('a simulated match run', () => {
  const churned = { participants: 40, ugc: 4000, references: 6000, seed: 5, churnPerMinute: 0.02 }

  it('does every slice once while a fifth of the crowd turns over every ten minutes', () => {
    const run = simulateMatchRun(churned)
    expect(run.departures).toBeGreaterThan(10)
    expect(run.regranted).toBeGreaterThan(0)
    expect(run.tasksDone).toBe(run.slices)
    expect(run.tasksFailed).toBe(0)
    // Newcomers start with empty snapshot folders: churn costs copying.
    const steady = simulateMatchRun({ ...churned, churnPerMinute: 0 })
    expect(steady.departures).toBe(0)
    expect(run.bytesCopied).toBeGreaterThan(steady.bytesCopied)
  })

  it('is the same run for the same seed', () => {
    expect(simulateMatchRun(churned)).toEqual(simulateMatchRun(churned))
  })
})
