import { join } from 'node:path'
import { CrowdmeshError } from '../protocol/errors.ts'
import type { Logger } from '../protocol/logger.ts'
import { type AudioResult, runAudioStages, type SpeechToText } from './audio-stage.ts'
import { followFile, pipelineOutputs, runPipeline } from './media-pipeline.ts'
import { FragmentIndex } from './mp4-faststart.ts'
import type { RecordingStore } from './recording-store.ts'
import { writeFaststart } from './share-responses.ts'

/** As many recordings are being processed as the server allows: try again shortly. */
export class ServerBusyError extends CrowdmeshError {}

/** Limits of the processing pool (from `recordingLimits`). */
export interface ProcessingInit {
  /** Recordings processed at once. */
  maxProcessing: number
  /** A recording's processing with no new bytes for this long is stopped, ms. */
  processingIdleMs: number
}

/** What the pool uses. */
export interface ProcessingComponents {
  store: RecordingStore
  speechToText?: SpeechToText | undefined
  logger: Logger
}

/** One recording's processing: its ffmpeg stages, following its bytes as they arrive. */
interface Pipeline {
  /** Where the input ends, once publish says so. */
  end: number | undefined
  done: Promise<void>
  audio: Promise<AudioResult>
  /** Both stages over, their processes gone. */
  settled: Promise<void>
  index: FragmentIndex
  controller: AbortController
  idle: NodeJS.Timeout
  /** Set once publish waits for it: it is not stopped for being idle any more. */
  finishing: Promise<void> | undefined
}

/**
 * The recordings being processed, and nothing else: a recording's ffmpeg stages start with its
 * first bytes (a recorder that says hello and goes costs nothing), at most `maxProcessing` at once
 * (bytes of one more are refused with `ServerBusyError`), and end once its bytes stop for
 * `processingIdleMs`. Then its outputs are incomplete; its next bytes, or its publish, start the
 * stages again from its stored bytes, which rewrite every output from the start, so a recording is
 * processed whole however often it paused.
 */
export class ProcessingPool {
  private readonly init: ProcessingInit
  private readonly components: ProcessingComponents
  private readonly pipelines = new Map<string, Pipeline>()
  /** Stopped pipelines whose processes may not be gone yet: a restart waits for them. */
  private readonly ending = new Map<string, Promise<void>>()

  constructor(init: ProcessingInit, components: ProcessingComponents) {
    this.init = init
    this.components = components
  }

  /** Pipelines running now. */
  get running(): number {
    return this.pipelines.size
  }

  /** Whether the recording's processing runs now (live viewers follow its output while it does). */
  has(id: string): boolean {
    return this.pipelines.has(id)
  }

  /** Whether publish is waiting for the recording's processing. */
  finishing(id: string): boolean {
    return this.pipelines.get(id)?.finishing !== undefined
  }

  /**
   * New bytes of the recording come: its processing runs from now on (started from its stored
   * bytes if it was not running). Throws `ServerBusyError` when it would be one too many.
   */
  async feed(id: string, mimeType: string): Promise<void> {
    await this.pipeline(id, mimeType)
  }

  /**
   * Processes the recording's bytes up to `bytes` and completes every output, the moov-first MP4
   * too. Callers at once share one run.
   */
  async finish(id: string, mimeType: string, bytes: number): Promise<void> {
    const pipeline = await this.pipeline(id, mimeType)
    pipeline.finishing ??= (async () => {
      clearTimeout(pipeline.idle)
      pipeline.end = bytes
      try {
        await pipeline.done
        // The sound is a copy, done with the video; captions may take longer and come when ready.
        if (this.components.speechToText === undefined) await pipeline.audio
        await writeFaststart(this.components.store.folderOf(id), pipeline.index.layout())
      } finally {
        this.retire(id, pipeline)
      }
    })()
    return pipeline.finishing
  }

  /** Stops the recording's processing, if it runs, and waits for its processes to be gone. */
  async stop(id: string): Promise<void> {
    const pipeline = this.pipelines.get(id)
    if (pipeline !== undefined) {
      pipeline.controller.abort()
      this.retire(id, pipeline)
    }
    await this.ending.get(id)
  }

  /** Stops every recording's processing (the server stops). */
  async close(): Promise<void> {
    for (const [id, pipeline] of [...this.pipelines]) {
      pipeline.controller.abort()
      this.retire(id, pipeline)
    }
    await Promise.all(this.ending.values())
  }

  private async pipeline(id: string, mimeType: string): Promise<Pipeline> {
    for (;;) {
      const current = this.pipelines.get(id)
      if (current !== undefined) {
        if (current.finishing === undefined) current.idle.refresh()
        return current
      }
      const ending = this.ending.get(id)
      if (ending === undefined) break
      // The stopped run's ffmpeg may still hold the outputs open: a new run rewrites them after it.
      await ending
    }
    if (this.pipelines.size >= this.init.maxProcessing)
      throw new ServerBusyError(
        `the server is processing ${this.pipelines.size} recordings, as many as it may: try again shortly`,
      )
    return this.start(id, mimeType)
  }

  private start(id: string, mimeType: string): Pipeline {
    const { store, speechToText, logger: log } = this.components
    const folder = store.folderOf(id)
    const controller = new AbortController()
    const signal = controller.signal
    const pipeline: Pipeline = {
      end: undefined,
      done: Promise.resolve(),
      audio: Promise.resolve({ audio: undefined, captions: undefined }),
      settled: Promise.resolve(),
      index: new FragmentIndex(join(folder, pipelineOutputs.fragmentedMp4)),
      controller,
      idle: setTimeout(() => this.idle(id, pipeline), this.init.processingIdleMs),
      finishing: undefined,
    }
    pipeline.idle.unref()
    // Each stage reads the recording's file as it grows, at its own pace.
    const follow = () =>
      followFile(store.mediaPath(id), { end: () => pipeline.end, grew: () => store.grew(id), signal })
    pipeline.done = runPipeline({ input: follow(), folder, mimeType, signal, index: pipeline.index })
    pipeline.audio = runAudioStages({ input: follow(), folder, mimeType, signal, speechToText })
    pipeline.settled = Promise.allSettled([pipeline.done, pipeline.audio]).then(() => undefined)
    void pipeline.audio.then((result) => {
      if (result.note !== undefined && !signal.aborted) log(`recording ${id}: ${result.note}`)
    })
    // Failures are reported at publish; until then nothing waits on it.
    pipeline.done.catch((error: unknown) => {
      if (!signal.aborted) log(`processing ${id}: ${(error as Error).message}`)
    })
    this.pipelines.set(id, pipeline)
    return pipeline
  }

  /** No bytes came for a while: the recording's processes end (its stored bytes remain). */
  private idle(id: string, pipeline: Pipeline): void {
    if (this.pipelines.get(id) !== pipeline || pipeline.finishing !== undefined) return
    this.components.logger(`processing ${id}: no bytes for ${this.init.processingIdleMs} ms: stopped`)
    pipeline.controller.abort()
    this.retire(id, pipeline)
  }

  private retire(id: string, pipeline: Pipeline): void {
    clearTimeout(pipeline.idle)
    if (this.pipelines.get(id) === pipeline) this.pipelines.delete(id)
    const gone = pipeline.settled.then(() => {
      if (this.ending.get(id) === gone) this.ending.delete(id)
    })
    this.ending.set(id, gone)
  }
}
