import { parentPort } from 'node:worker_threads'
import { type CameraWork, workCameras } from './camera-work.ts'

/*
 * A helper thread of `SweepThreads`: takes camera work (its arrays over shared memory) and claims
 * cameras until none is left. It writes nothing but the work's shared arrays, and never logs: the
 * thread that posted the work is blocked waiting for it.
 */

parentPort?.on('message', (input: CameraWork) => {
  workCameras(input)
})
parentPort?.postMessage('ready')
