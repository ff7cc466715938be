import { browserFrameSource } from '../../browser/frame-decode.ts'
import type { JobSpec, TaskWorker } from '../kind.ts'
import { imageFilterKind } from './index.ts'
import type { ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'

/*
 * The page script of test-page.html: the kind's workers in a real browser, driven from Node through
 * `window.imageFilterTest` (test/e2e/image-filter-webgl.test.ts). The page decodes images as
 * participants do (`browserFrameSource`) and loads the WebGL worker by `import()` as the kind does.
 */

/** Which worker computes: the kind's CPU or WebGL worker, or the WebGL worker held to WebGL 1. */
export type ImageFilterTestBackend = 'cpu' | 'webgl' | 'webgl1'

/** Tasks of one job for one worker. */
export interface ImageFilterTestRequest {
  backend: ImageFilterTestBackend
  job: JobSpec<ImageFilterJob>
  tasks: ImageTask[]
}

/** The results in task order (RGBA as base64), or the error that stopped them. */
export interface ImageFilterTestReport {
  /** The worker's own name for its backend (`cpu`, `webgl2`, `webgl1`). */
  backend: string
  renderer: string
  rgba: string[]
  error?: { name: string; message: string }
}

/** What the page offers Node. */
export interface ImageFilterTestApi {
  run(request: ImageFilterTestRequest): Promise<ImageFilterTestReport>
}

declare global {
  interface Window {
    imageFilterTest?: ImageFilterTestApi
  }
}

type Worker = TaskWorker<ImageFilterJob, ImageTask, ImageTaskResult> & { renderer?: string }

const frames = browserFrameSource()
const workers = new Map<ImageFilterTestBackend, Promise<Worker>>()

function workerFor(backend: ImageFilterTestBackend): Promise<Worker> {
  let worker = workers.get(backend)
  if (worker === undefined) {
    if (backend === 'cpu') worker = imageFilterKind.workers.cpu({ frames })
    else if (backend === 'webgl') worker = imageFilterKind.workers.webgl!({ frames })
    else {
      worker = import('./webgl-worker.ts').then((m) =>
        m.createImageFilterWebglWorker({ frames, backend: 'webgl1' }),
      )
    }
    workers.set(backend, worker)
  }
  return worker
}

function base64(bytes: Uint8Array): string {
  let text = ''
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  }
  return btoa(text)
}

window.imageFilterTest = {
  async run({ backend, job, tasks }) {
    const report: ImageFilterTestReport = { backend, renderer: '', rgba: [] }
    try {
      const worker = await workerFor(backend)
      report.backend = worker.backend
      report.renderer = worker.renderer ?? 'cpu'
      for (const task of tasks) report.rgba.push(base64((await worker.run(job, task)).rgba))
    } catch (error) {
      report.error =
        error instanceof Error
          ? { name: error.name, message: error.message }
          : { name: 'Error', message: String(error) }
    }
    return report
  },
}
