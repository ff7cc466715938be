import type { JobSpec, TaskWorker, WorkerEnv } from '../kind.ts'
import { AbortError } from '../../protocol/errors.ts'
import { checkTaskImage, filterRect } from './filter.ts'
import type { ImageFilterJob, ImageTask, ImageTaskResult } from './schemas.ts'

// No node: imports here or below: the browser runs this worker too, with its own frame source.

/** The CPU worker: filters a task's rectangle with `filterRect`, the reference every worker is held to. */
export function imageFilterCpuWorker(env: WorkerEnv): TaskWorker<ImageFilterJob, ImageTask, ImageTaskResult> {
  return {
    backend: 'cpu',
    async run(job: JobSpec<ImageFilterJob>, task: ImageTask, signal?: AbortSignal): Promise<ImageTaskResult> {
      if (signal?.aborted) throw new AbortError()
      const image = await env.frames.get(task.imageUrl, signal)
      if (signal?.aborted) throw new AbortError()
      checkTaskImage(task, image)
      const { jobId, frameIndex, x, y, w, h } = task
      return { jobId, frameIndex, x, y, w, h, rgba: filterRect(image, job.description.filter, task) }
    },
  }
}
