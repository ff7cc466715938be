import { type SweepInput, sweepComputer } from './depth-sweep.ts'
import { type SightInput, sightComputer } from './line-of-sight.ts'

/**
 * Work a frame's decision spreads over threads one camera at a time: the depth sweep's rays
 * (depth-sweep.ts) or the line-of-sight test (line-of-sight.ts). Each input is plain arrays and
 * numbers, so another thread can take it as it is (its arrays over shared memory), and a camera
 * writes the same bytes whoever computes it.
 */
export type CameraWork = SweepInput | SightInput

/**
 * Runs camera work: every camera in this thread (`inThread`), or spread over threads that share the
 * input's arrays (`SweepThreads` in sweep-threads.ts, Node). The result does not depend on the runner.
 */
export interface CameraRunner {
  /** Memory for the arrays every thread reads and writes (a `SharedArrayBuffer` where threads share them). */
  allocate(bytes: number): ArrayBufferLike
  /** Computes every camera of `input` (`workCameras`), returning once all are done. */
  run(input: CameraWork): void
}

/** Every camera in the calling thread. */
export const inThread: CameraRunner = {
  allocate: (bytes) => new ArrayBuffer(bytes),
  run: (input) => void workCameras(input),
}

/**
 * The index of `control` a camera's state is at. `control` holds [next camera to claim, cameras
 * done], then each camera's state (0 unclaimed, 1 claimed, 2 done); cameras are claimed with
 * `Atomics.add`, so threads never take the same one.
 */
export const controlState = (slot: number): number => 2 + slot

/** Computes one camera of `input` at a time, with scratch memory of its own (one per thread). */
export function cameraComputer(input: CameraWork): (slot: number) => void {
  return input.kind === 'sweep' ? sweepComputer(input) : sightComputer(input)
}

/**
 * Claims the input's cameras one at a time until none is left, and computes each: what every thread
 * runs. Returns the cameras this thread computed.
 */
export function workCameras(input: CameraWork): number {
  const { control, cameraCount } = input
  const compute = cameraComputer(input)
  let mine = 0
  for (;;) {
    const slot = Atomics.add(control, 0, 1)
    if (slot >= cameraCount) return mine
    Atomics.store(control, controlState(slot), 1)
    compute(slot)
    Atomics.store(control, controlState(slot), 2)
    Atomics.add(control, 1, 1)
    if (control.buffer instanceof SharedArrayBuffer) Atomics.notify(control, 1)
    mine++
  }
}
