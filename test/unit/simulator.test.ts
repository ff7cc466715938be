import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { builtInProfiles, loadProfile } from '../../peer/simulator/profile.ts'
import { type SimulationInit, simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'
import { VirtualClock } from '../../peer/simulator/virtual-clock.ts'

const base: SimulationInit = {
  ...simulationDefaults,
  profile: builtInProfiles.seed!,
  peers: 60,
  durationMs: 20_000,
}

/** The report without the wall-clock figures, which differ from run to run. */
function deterministicPart(report: ReturnType<typeof simulate>) {
  const { wallSeconds: _w, participantSecondsPerWallSecond: _p, ...rest } = report
  return rest
}

describe('virtual clock', () => {
  it('runs timers in time order, ties in the order set, and skips cleared ones', () => {
    const clock = new VirtualClock()
    const seen: string[] = []
    clock.setTimer(() => seen.push('b'), 20)
    clock.setTimer(() => seen.push('a'), 10)
    const cleared = clock.setTimer(() => seen.push('x'), 15)
    clock.setTimer(() => {
      seen.push('c1')
      clock.setTimer(() => seen.push('d'), 0)
    }, 20)
    clock.clearTimer(cleared)
    expect(clock.runUntil(100)).toBe(4)
    expect(seen).toEqual(['a', 'b', 'c1', 'd'])
    expect(clock.now()).toBe(100)
    expect(clock.pending).toBe(0)
  })
})

describe('mesh simulator', () => {
  it('is deterministic: the same seed gives the same report, another seed another', () => {
    const a = simulate({ ...base, churnPerMinute: 0.2, failRate: 0.05, seed: 7 })
    const b = simulate({ ...base, churnPerMinute: 0.2, failRate: 0.05, seed: 7 })
    const c = simulate({ ...base, churnPerMinute: 0.2, failRate: 0.05, seed: 8 })
    expect(deterministicPart(a)).toEqual(deterministicPart(b))
    expect(deterministicPart(c)).not.toEqual(deterministicPart(a))
  })

  it('loses and double-counts nothing under churn, crashes and stragglers (batch mode)', () => {
    const report = simulate({ ...base, durationMs: 60_000, churnPerMinute: 0.3, failRate: 0.2, seed: 3 })
    expect(report.crashes).toBeGreaterThan(0)
    expect(report.leaves).toBeGreaterThan(0)
    expect(report.reassignments).toBeGreaterThan(0)
    expect(report.framesCompleted).toBe(report.framesAdded)
    expect(report.lostThreads).toBe(0)
    expect(report.doubleCountedThreads).toBe(0)
    expect(report.duplicateWorkShare).toBeGreaterThanOrEqual(0)
    expect(report.duplicateWorkShare).toBeLessThan(0.2)
  })

  it('live mode: an overloaded crowd gets coarser frames or drops them, and says so', () => {
    const report = simulate({
      ...base,
      peers: 10,
      grid: 24,
      live: { latencyBudgetMs: 2000, overload: 'downgrade' },
    })
    expect(report.framesDowngraded).toBeGreaterThan(0)
    expect(report.framesCompleted + report.framesDropped + report.framesUnfinished).toBe(report.framesAdded)
    expect(report.latencyMs.max).toBeLessThanOrEqual(2000)
    const dropping = simulate({
      ...base,
      peers: 10,
      grid: 24,
      live: { latencyBudgetMs: 2000, overload: 'drop' },
    })
    expect(dropping.framesDropped).toBeGreaterThan(0)
    expect(dropping.framesDowngraded).toBe(0)
    expect(dropping.lostThreads).toBe(0)
  })

  it('push mode schedules the same event without losing or double-counting a thread', () => {
    const report = simulate({ ...base, mode: 'push', churnPerMinute: 0.3, failRate: 0.2, durationMs: 40_000 })
    expect(report.framesCompleted).toBe(report.framesAdded)
    expect(report.lostThreads).toBe(0)
    expect(report.doubleCountedThreads).toBe(0)
    expect(report.crashes + report.leaves).toBeGreaterThan(0)
  })

  it('gives faster participants more threads (capability-sized blocks)', () => {
    const report = simulate({ ...base, peers: 40 })
    const perThread = (device: string) => {
      const rows = report.participants.filter((p) => p.device === device)
      return rows.reduce((a, p) => a + p.threadsProcessed, 0) / rows.length
    }
    // seed-1: 32 cores at 24–30 ms; seed-5: 4 cores at 36–42 ms.
    expect(perThread('seed-1')).toBeGreaterThan(4 * perThread('seed-5'))
  })
})

describe('crowd profiles', () => {
  it('loads a profile file and names the field of a bad one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-profile-'))
    const good = {
      name: 'lab',
      classes: [
        {
          name: 'box',
          weight: 1,
          cores: 8,
          msPerThread: [10, 20],
          dutyCycle: 1,
          bandwidthMbps: [100, 100],
          rttMs: [1, 2],
          stragglerChance: 0,
          stragglerSlowdown: 1,
        },
      ],
    }
    await writeFile(join(dir, 'good.json'), JSON.stringify(good))
    expect((await loadProfile(join(dir, 'good.json'))).classes[0]!.cores).toBe(8)
    await writeFile(
      join(dir, 'bad.json'),
      JSON.stringify({ ...good, classes: [{ ...good.classes[0], cores: 0 }] }),
    )
    await expect(loadProfile(join(dir, 'bad.json'))).rejects.toMatchObject({ field: 'classes.0.cores' })
    await expect(loadProfile(join(dir, 'none.json'))).rejects.toThrow(/not a built-in profile/)
  })
})
