import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import {
  cameraComputer,
  type CameraWork,
  controlState,
  type CameraRunner,
  workCameras,
} from './camera-work.ts'

/**
 * The depth sweep and the line-of-sight tests spread over threads (Node; `CameraWork`): the
 * coordinator decides a frame once every block is in, when the participants' threads on its machine
 * are idle, and the cameras are independent. The work stays synchronous for its caller (a round's sink finishes synchronously): the calling
 * thread claims cameras like the others, then waits on shared memory (`Atomics.wait`, which Node's
 * main thread may do) for the cameras others claimed. Nothing depends on a helper thread: one that
 * has not started yet claims nothing, and a camera another thread claimed but did not finish in time
 * (a thread that died, a machine swapping) is computed again here. A camera sets the same bits
 * whoever computes it, so recomputing one changes nothing.
 */
export class SweepThreads implements CameraRunner {
  private readonly size: number
  private workers: Worker[] = []
  private readonly readyWorkers = new WeakMap<Worker, Promise<void>>()
  private closed = false
  /** Cameras computed, and of those computed by the helpers (for logs and tests). */
  readonly statistics = { cameras: 0, helped: 0 }

  /** `threads` helpers beside the calling thread (default: one per core, less the caller's). */
  constructor(threads = availableParallelism() - 1) {
    this.size = Math.max(0, threads)
  }

  allocate(bytes: number): ArrayBufferLike {
    return this.size > 0 && !this.closed ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)
  }

  run(input: CameraWork): void {
    if (input.control.buffer instanceof SharedArrayBuffer) {
      for (const worker of this.helpers()) worker.postMessage(input)
    }
    const started = performance.now()
    const mine = workCameras(input)
    const { control, cameraCount } = input
    this.statistics.cameras += cameraCount
    if (!(control.buffer instanceof SharedArrayBuffer)) return
    // Cameras others claimed: wait for them as long as a few of this thread's own would take.
    // The wait starts again whenever another camera is done, so a helper at work gets its time.
    const perCamera = mine > 0 ? (performance.now() - started) / mine : 50
    let deadline = 0
    for (let done = -1, now = Atomics.load(control, 1); now < cameraCount; now = Atomics.load(control, 1)) {
      if (now !== done) deadline = performance.now() + 4 * perCamera + 250
      done = now
      const left = deadline - performance.now()
      if (left <= 0) break
      Atomics.wait(control, 1, now, left)
    }
    const helped = Math.min(Atomics.load(control, 1), cameraCount) - mine
    this.statistics.helped += helped
    if (helped + mine >= cameraCount) return
    const compute = cameraComputer(input)
    for (let slot = 0; slot < cameraCount; slot++)
      if (Atomics.load(control, controlState(slot)) !== 2) compute(slot)
  }

  /** Starts the helpers now (they start with the first camera work otherwise); resolves once they listen. */
  async ready(): Promise<void> {
    await Promise.all(this.helpers().map((worker) => this.readyWorkers.get(worker) ?? Promise.resolve()))
  }

  /** Ends the helper threads; camera work after this runs in the calling thread. */
  close(): Promise<void> {
    this.closed = true
    const ending = this.workers.map((worker) => worker.terminate())
    this.workers = []
    return Promise.all(ending).then(() => undefined)
  }

  /** The helpers, started on the first camera work (and again after one exits). */
  private helpers(): Worker[] {
    if (this.closed) return []
    while (this.workers.length < this.size) {
      const worker = new Worker(new URL('./sweep-thread.ts', import.meta.url))
      // A helper must never keep a process alive that has finished its work.
      worker.unref()
      const gone = () => {
        this.workers = this.workers.filter((w) => w !== worker)
      }
      worker.once('error', gone)
      worker.once('exit', gone)
      this.readyWorkers.set(
        worker,
        new Promise((resolve) => {
          worker.once('message', () => resolve())
          worker.once('exit', () => resolve())
        }),
      )
      this.workers.push(worker)
    }
    return this.workers
  }
}
