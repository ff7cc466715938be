import { parentPort } from 'node:worker_threads'
import { type SweepInput, sweepCameras } from './depth-sweep.ts'

/*
 * A helper thread of `SweepThreads`: takes a sweep's input (its arrays over shared memory) and claims
 * cameras until none is left. It writes nothing but the sweep's shared arrays, and never logs: the
 * thread that posted the sweep is blocked waiting for it.
 */

parentPort?.on('message', (input: SweepInput) => {
  sweepCameras(input)
})
parentPort?.postMessage('ready')
