import fc from 'fast-check'
import { expect } from 'vitest'
import type { AnyJobKind, JobSpec, TaskBase } from '../../peer/jobs/kind.ts'

/*
 * What every job kind must do, whatever it computes: checked on the kind's own simulated job, so a
 * new kind is held to it by adding one line to `test/unit/kind-conformance.test.ts`.
 */

/** A job of `kind` of about `units` units a round, as the simulator would make it. */
export function simulatedSpec(kind: AnyJobKind, units: number): JobSpec {
  return {
    jobId: 'conformance',
    kind: kind.name,
    version: kind.version,
    description: kind.simulation.job('conformance', units),
  }
}

/** Cuts a whole round with the given task sizes (cycled), after adding its inputs; returns its tasks. */
export function cutRound(
  kind: AnyJobKind,
  spec: JobSpec,
  sizes: readonly number[],
  units: number,
): TaskBase[] {
  const plan = kind.openRound(spec, 7, 0)
  for (const input of kind.simulation.inputs(spec, 7, units)) expect(plan.addInput(input)).toBe(true)
  expect(plan.inputsComplete).toBe(true)
  // An input added twice is ignored, not counted again.
  for (const input of kind.simulation.inputs(spec, 7, units)) expect(plan.addInput(input)).toBe(false)
  expect(plan.unitsLeft()).toBe(plan.totalUnits)
  const tasks: TaskBase[] = []
  for (let i = 0; ; i++) {
    const before = plan.unitsLeft()
    const max = sizes[i % sizes.length]!
    const task = plan.cut(max)
    if (task === undefined) break
    const units = kind.taskUnits(task)
    expect(units).toBeGreaterThanOrEqual(1)
    expect(units).toBeLessThanOrEqual(max)
    expect(plan.unitsLeft()).toBe(before - units)
    tasks.push(task)
  }
  expect(plan.unitsLeft()).toBe(0)
  return tasks
}

/** The tasks' spans tile the round: no unit twice, every unit once. */
export function expectTiling(kind: AnyJobKind, tasks: readonly TaskBase[], totalUnits: number): void {
  const byLane = new Map<number, [number, number][]>()
  let units = 0
  for (const task of tasks) {
    const span = kind.taskSpan(task)
    expect(span.count).toBe(kind.taskUnits(task))
    units += span.count
    const lane = byLane.get(span.lane) ?? []
    lane.push([span.first, span.first + span.count])
    byLane.set(span.lane, lane)
  }
  expect(units).toBe(totalUnits)
  for (const ranges of byLane.values()) {
    ranges.sort((a, b) => a[0] - b[0])
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1])
  }
  expect(new Set(tasks.map((t) => kind.taskKey(t))).size).toBe(tasks.length)
}

/** Keys name their round: the same cut of two rounds gives two sets of keys with nothing in common. */
export function expectKeysPerRound(kind: AnyJobKind, spec: JobSpec, units: number): void {
  const keysOf = (round: number) => {
    const plan = kind.openRound(spec, round, 0)
    for (const input of kind.simulation.inputs(spec, round, units)) plan.addInput(input)
    const keys: string[] = []
    for (let task = plan.cut(units / 4); task !== undefined; task = plan.cut(units / 4))
      keys.push(kind.taskKey(task))
    return keys
  }
  const seven = new Set(keysOf(7))
  expect(keysOf(8).filter((key) => seven.has(key))).toEqual([])
}

/** Runs every conformance check on `kind` (a simulated job of about `units` units a round). */
export function checkKind(kind: AnyJobKind, units: number): void {
  const spec = simulatedSpec(kind, units)
  expect(kind.schemas.job.safeParse(spec.description).success).toBe(true)
  const total = kind.openRound(spec, 0, 0)
  for (const input of kind.simulation.inputs(spec, 0, units)) total.addInput(input)
  const totalUnits = total.totalUnits
  expect(totalUnits).toBeGreaterThan(0)

  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: Math.max(1, Math.ceil(totalUnits / 3)) }), {
        minLength: 1,
        maxLength: 8,
      }),
      (sizes) => {
        const tasks = cutRound(kind, spec, sizes, units)
        expectTiling(kind, tasks, totalUnits)
      },
    ),
    { numRuns: 40 },
  )

  expectKeysPerRound(kind, spec, units)

  // Every task crosses the wire and back: its schema takes it, its result round-trips within its
  // limit, and the result describes it (and no other task).
  const tasks = cutRound(kind, spec, [Math.max(1, Math.floor(totalUnits / 5))], units)
  // A sink is opened once its round has its first input, as the coordinator does.
  const round = kind.openRound(spec, 7, 0)
  const [first, ...others] = kind.simulation.inputs(spec, 7, units)
  round.addInput(first)
  const sink = kind.openSink(spec, round, 0)
  for (const input of others) round.addInput(input)
  for (const [i, task] of tasks.entries()) {
    expect(kind.schemas.task.parse(task)).toEqual(task)
    const result: unknown = kind.simulation.fakeResult(task)
    const bytes = kind.result.encode(result)
    expect(bytes.length).toBeLessThanOrEqual(kind.limits.maxResultBytes(task))
    const decoded: unknown = kind.result.decode(bytes, task)
    expect(kind.result.matches(task, decoded)).toBe(true)
    if (tasks.length > 1) expect(kind.result.matches(tasks[(i + 1) % tasks.length]!, decoded)).toBe(false)
    expect(() => kind.result.decode(bytes.subarray(0, bytes.length - 1), task)).toThrow()
    expect(sink.complete).toBe(false)
    expect(sink.add(task, decoded)).toBe('added')
  }
  // A copy of a counted result is a duplicate, and the round completes once every task counted.
  expect(sink.add(tasks[0]!, kind.simulation.fakeResult(tasks[0]!))).toBe('duplicate')
  expect(sink.complete).toBe(true)
  const outcome: unknown = sink.finish()
  const gossip = kind.outcome.encode(outcome, spec, 1 << 20)
  expect(gossip.length).toBeLessThanOrEqual(1 << 20)
  const snapshot: unknown = kind.outcome.decode(gossip)
  expect(kind.outcome.summary(snapshot).frameIndex).toBe(7)
  // A picture, where the kind draws one, is whole pixels of RGBA that a canvas takes as they are.
  const picture = kind.outcome.picture?.(snapshot)
  if (picture !== undefined) {
    expect(picture.width * picture.height).toBeGreaterThan(0)
    expect(picture.rgba.length).toBe(picture.width * picture.height * 4)
  }
  expect(() => kind.outcome.decode(gossip.subarray(0, 3))).toThrow()

  // Coarser levels, where the kind has them, are smaller rounds of the size it says.
  if (kind.levels !== undefined)
    for (let level = 1; level <= kind.levels.maxLevel; level++) {
      const plan = kind.openRound(spec, 0, level)
      for (const input of kind.simulation.inputs(spec, 0, units)) plan.addInput(input)
      expect(plan.totalUnits).toBe(kind.levels.unitsAt(spec, level))
      expect(plan.totalUnits).toBeLessThan(totalUnits)
    }
}
