import type { Clock } from '../protocol/clock.ts'

interface Timer {
  at: number
  seq: number
  fn: (() => void) | undefined
}

/**
 * Virtual time for the simulator: a discrete-event clock. Timers run in order of their time, ties in
 * the order they were set, so a run is deterministic; `runUntil` jumps from one event to the next, so
 * ten minutes of an event pass in however long their events take to process.
 */
export class VirtualClock implements Clock {
  private current = 0
  private seq = 0
  private readonly heap: Timer[] = []
  private live = 0

  now(): number {
    return this.current
  }

  setTimer(fn: () => void, ms: number): unknown {
    const timer: Timer = { at: this.current + Math.max(0, ms), seq: this.seq++, fn }
    push(this.heap, timer)
    this.live++
    return timer
  }

  clearTimer(handle: unknown): void {
    const timer = handle as Timer | undefined
    if (timer?.fn === undefined) return
    // Lazy deletion: the entry stays in the heap and is skipped when it comes up.
    timer.fn = undefined
    this.live--
  }

  /** Timers set and not yet run or cleared. */
  get pending(): number {
    return this.live
  }

  /** Runs every event up to and including time `end` (or until `stop` says so); returns events run. */
  runUntil(end: number, stop?: () => boolean): number {
    let events = 0
    while (this.heap.length > 0) {
      const top = this.heap[0]!
      if (top.at > end) break
      pop(this.heap)
      const fn = top.fn
      if (fn === undefined) continue
      top.fn = undefined
      this.live--
      this.current = top.at
      fn()
      events++
      if (stop?.() === true) return events
    }
    if (this.current < end) this.current = end
    return events
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}

// Sift with a hole rather than swaps: no temporary arrays in the simulator's hottest loop.
function push(heap: Timer[], timer: Timer): void {
  let i = heap.length
  heap.push(timer)
  while (i > 0) {
    const parent = (i - 1) >> 1
    const above = heap[parent]!
    if (!before(timer, above)) break
    heap[i] = above
    i = parent
  }
  heap[i] = timer
}

function pop(heap: Timer[]): void {
  const last = heap.pop()!
  const n = heap.length
  if (n === 0) return
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= n) break
    const r = l + 1
    const child = r < n && before(heap[r]!, heap[l]!) ? r : l
    if (!before(heap[child]!, last)) break
    heap[i] = heap[child]!
    i = child
  }
  heap[i] = last
}
