import { schedulingDefaults } from '../protocol/defaults.ts'

/** What the participant page shows; also readable as `crowdmesh.state` (the browser tests read it). */
export interface AppState {
  phase: 'checking' | 'joining' | 'computing' | 'paused' | 'left' | 'refused' | 'unsupported' | 'error'
  /** A sentence for the person: why it stopped, what it is doing. */
  message: string
  /** A lasting note (no WebGL: computing on the processor). */
  notice: string
  event: string
  participantId: string
  /** The link may create recordings (a recorder's or an operator's): the page offers to record. */
  mayRecord: boolean
  /** What computes: the GPU through WebGL2 or WebGL1, or the processor. */
  backend: 'webgl2' | 'webgl1' | 'cpu' | ''
  /** The GPU as the browser names it ('' without WebGL). */
  renderer: string
  dutyCycle: number
  blocksDone: number
  threadsDone: number
  blocksFailed: number
  busyMs: number
  /** Busy time over time on the page, percent. */
  sharePercent: number
  peers: number
  /** Frame of the outcome shown (−1: none yet). */
  frameIndex: number
  outcomes: number
  outcomeRatePerMin: number
  colouredTotal: number
  /** Points the viewer draws. */
  points: number
  framesDone: number
  /**
   * The latest outcome of each of the event's other jobs (not the 3D one): shown under the viewer
   * by its kind's picture (an image job's thumbnail) or its summary.
   */
  otherJobs: OtherJobShown[]
  /** Keeping match data on the device: not asked, being asked, or the person's answer. */
  storage: 'unasked' | 'asking' | 'granted' | 'declined'
}

/** An outcome of another job, as the page shows it. */
export interface OtherJobShown {
  jobId: string
  kind: string
  frameIndex: number
  items: number
  /** The size of the picture drawn (0×0: the kind has none). */
  pictureWidth: number
  pictureHeight: number
}

/** The state before anything happened. */
export function initialState(): AppState {
  return {
    phase: 'checking',
    message: '',
    notice: '',
    event: '',
    participantId: '',
    mayRecord: false,
    backend: '',
    renderer: '',
    dutyCycle: schedulingDefaults.dutyCycle,
    blocksDone: 0,
    threadsDone: 0,
    blocksFailed: 0,
    busyMs: 0,
    sharePercent: 0,
    peers: 0,
    frameIndex: -1,
    outcomes: 0,
    outcomeRatePerMin: 0,
    colouredTotal: 0,
    points: 0,
    framesDone: 0,
    otherJobs: [],
    storage: 'unasked',
  }
}
