import { recorderDefaults } from '../protocol/defaults.ts'

/*
 * Quality of service for a recording (the seed): the recorder compares what it uploads with what it
 * records. When the bytes not yet acknowledged grow past a few seconds of recording, the link cannot
 * keep up: the recorder steps down (a smaller canvas, fewer frames a second: what MediaRecorder's
 * encoder honours live), says so, and steps back up once the link has kept up for a while. A step
 * up that soon needs a step down again doubles the wait before the next one, so a link at the edge
 * settles instead of oscillating. Pure and clock-free: the page feeds it a sample a second.
 */

/** One quality step: the canvas size and frame rate the recorder draws at, and the encoder's target. */
export interface QualityLevel {
  readonly name: string
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly bitsPerSecond: number
}

/** What the uploader reports at a moment. */
export interface QualitySample {
  /** Milliseconds, any monotonic clock. */
  at: number
  /** Bytes the recorder produced so far. */
  produced: number
  /** Bytes the server acknowledged so far. */
  acknowledged: number
}

/** A change of quality, for the recorder to apply and show. */
export interface QualityChange {
  level: QualityLevel
  index: number
  direction: 'down' | 'up'
  /** Seconds of recording waiting to be uploaded when it was decided. */
  backlogSeconds: number
  /** A sentence for the person recording. */
  message: string
}

export type QualityOptions = Partial<Omit<typeof recorderDefaults, 'qualityLevels'>> & {
  levels?: readonly QualityLevel[]
}

/** Decides the recording's quality from the upload's progress. */
export class QualityController {
  private readonly levels: readonly QualityLevel[]
  private readonly options: Required<Omit<QualityOptions, 'levels'>>
  private readonly samples: QualitySample[] = []
  private current = 0
  private lastChange = Number.NEGATIVE_INFINITY
  private recoveredSince: number | undefined
  private recoverMs: number
  private lastStepUp = Number.NEGATIVE_INFINITY

  constructor(options: QualityOptions = {}) {
    const { levels, ...rest } = options
    this.levels = levels ?? recorderDefaults.qualityLevels
    this.options = { ...recorderDefaults, ...rest }
    this.recoverMs = this.options.recoverMs
  }

  get level(): QualityLevel {
    return this.levels[this.current]!
  }

  get index(): number {
    return this.current
  }

  /** Takes a sample; returns the change to make, if any. */
  sample(sample: QualitySample): QualityChange | undefined {
    this.samples.push(sample)
    // Rates over the last 5 s: long enough to smooth a burst, short enough to react.
    while (this.samples.length > 2 && sample.at - this.samples[0]!.at > 5000) this.samples.shift()
    const first = this.samples[0]!
    const seconds = (sample.at - first.at) / 1000
    if (seconds < 2) return undefined
    const recordRate = (sample.produced - first.produced) / seconds
    const uploadRate = (sample.acknowledged - first.acknowledged) / seconds
    if (recordRate <= 0) return undefined
    const backlog = sample.produced - sample.acknowledged
    const backlogSeconds = backlog / recordRate
    const settled = sample.at - this.lastChange >= this.options.holdMs
    if (backlogSeconds > this.options.backlogDownSeconds && uploadRate < recordRate) {
      this.recoveredSince = undefined
      if (!settled || this.current === this.levels.length - 1) return undefined
      // A step up that did not hold: wait twice as long before trying again.
      if (sample.at - this.lastStepUp < 2 * this.recoverMs)
        this.recoverMs = Math.min(8 * this.options.recoverMs, this.recoverMs * 2)
      return this.change(this.current + 1, 'down', sample.at, backlogSeconds)
    }
    if (backlogSeconds < this.options.backlogUpSeconds) {
      this.recoveredSince ??= sample.at
      if (this.current > 0 && settled && sample.at - this.recoveredSince >= this.recoverMs) {
        this.lastStepUp = sample.at
        return this.change(this.current - 1, 'up', sample.at, backlogSeconds)
      }
    } else this.recoveredSince = undefined
    return undefined
  }

  private change(index: number, direction: 'down' | 'up', at: number, backlogSeconds: number): QualityChange {
    this.current = index
    this.lastChange = at
    this.recoveredSince = undefined
    // Rates measured at the old quality say nothing about the new one.
    this.samples.splice(0, this.samples.length - 1)
    const level = this.level
    const what = `${level.width}×${level.height}, ${level.fps} frames a second`
    return {
      level,
      index,
      direction,
      backlogSeconds,
      message:
        direction === 'down'
          ? `Your connection is slower than the recording (${backlogSeconds.toFixed(0)} s waiting to upload): recording at ${what} until it recovers. Nothing recorded is lost.`
          : `Your connection has recovered: recording at ${what}.`,
    }
  }
}
