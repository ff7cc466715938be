import { describe, expect, it } from 'vitest'
import { QualityController, type QualityChange } from '../../peer/recorder/quality.ts'

/** Feeds a controller a second at a time: the recorder produces `record` B/s, the link carries `link` B/s. */
function drive(
  controller: QualityController,
  seconds: number,
  rates: (t: number) => { record: number; link: number },
  from = { t: 0, produced: 0, acknowledged: 0 },
) {
  const changes: (QualityChange & { t: number })[] = []
  let { t, produced, acknowledged } = from
  for (let i = 0; i < seconds; i++) {
    const { record, link } = rates(t)
    // The encoder's output follows the level's target.
    produced += record * (controller.level.bitsPerSecond / 2_500_000)
    acknowledged = Math.min(produced, acknowledged + link)
    t += 1000
    const change = controller.sample({ at: t, produced, acknowledged })
    if (change !== undefined) changes.push({ ...change, t })
  }
  return { changes, state: { t, produced, acknowledged } }
}

describe('recording quality of service', () => {
  it('keeps the best quality while the link keeps up', () => {
    const controller = new QualityController()
    const { changes } = drive(controller, 60, () => ({ record: 312_500, link: 400_000 }))
    expect(changes).toEqual([])
    expect(controller.level.name).toBe('high')
  })

  it('steps down when the backlog grows past its threshold, and says so', () => {
    const controller = new QualityController()
    // 2.5 Mbit/s recorded over a 1 Mbit/s link.
    const { changes } = drive(controller, 20, () => ({ record: 312_500, link: 125_000 }))
    expect(changes[0]!.direction).toBe('down')
    expect(changes[0]!.level.name).toBe('medium')
    expect(changes[0]!.backlogSeconds).toBeGreaterThan(4)
    expect(changes[0]!.message).toMatch(
      /slower than the recording.*960×540, 24 frames a second.*Nothing recorded is lost/,
    )
    // Steps are at least 5 s apart, and it goes on down while the link still cannot keep up.
    for (let i = 1; i < changes.length; i++)
      expect(changes[i]!.t - changes[i - 1]!.t).toBeGreaterThanOrEqual(5000)
    expect(controller.index).toBeGreaterThanOrEqual(2)
  })

  it('goes back up once the link has recovered for long enough, and not before', () => {
    const controller = new QualityController()
    const bad = drive(controller, 30, () => ({ record: 312_500, link: 100_000 }))
    const lowest = controller.index
    expect(lowest).toBeGreaterThan(0)
    // The link recovers: the backlog drains, then after 15 s of keeping up, one step up at a time.
    const good = drive(controller, 90, () => ({ record: 312_500, link: 1_000_000 }), bad.state)
    const ups = good.changes.filter((c) => c.direction === 'up')
    expect(ups.length).toBe(lowest)
    expect(ups[0]!.message).toMatch(/recovered/)
    expect(ups[0]!.t - bad.state.t).toBeGreaterThanOrEqual(15_000)
    expect(controller.level.name).toBe('high')
  })

  it('waits longer before trying again after a step up that did not hold (no oscillation)', () => {
    const controller = new QualityController()
    // The link carries 1.5 Mbit/s: medium fits, high does not.
    const { changes } = drive(controller, 400, () => ({ record: 312_500, link: 190_000 }))
    const ups = changes.filter((c) => c.direction === 'up').map((c) => c.t)
    expect(ups.length).toBeGreaterThanOrEqual(3)
    const gaps = ups.slice(1).map((t, i) => t - ups[i]!)
    // Each failed probe doubles the wait (to at most 8×): the gaps grow.
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]!).toBeGreaterThanOrEqual(gaps[i - 1]!)
    expect(gaps.at(-1)!).toBeGreaterThan(2 * gaps[0]!)
    expect(changes.length).toBeLessThan(20)
  })
})
