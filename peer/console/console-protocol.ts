import { z } from 'zod'

/*
 * What the operator's console page and the event's process say to each other: the live snapshot
 * streamed to the page (Server-Sent Events), and the actions the page posts. Shared by both sides,
 * so a column added here is added to the page's table too.
 */

/** The devices table's columns, in the order of each row's values. */
export const deviceColumns = [
  'participant',
  'address',
  'agent',
  'backend',
  'cores',
  'duty',
  'rttMs',
  'msPerThread',
  'processed',
  'assigned',
  'fps',
  'trust',
  'kinds',
  'dedicated',
  'joinedS',
] as const
export type DeviceColumn = (typeof deviceColumns)[number]

/** One row of the devices table: values in `deviceColumns` order (arrays keep 1,000 rows small). */
export type DeviceRow = [
  participant: string,
  address: string,
  agent: string,
  backend: string,
  cores: number,
  duty: number,
  rttMs: number,
  msPerThread: number,
  processed: number,
  assigned: number,
  fps: number,
  trust: string,
  kinds: string,
  dedicated: boolean,
  joinedS: number,
]

/** A job as the console shows it. */
export interface ConsoleJob {
  jobId: string
  kind: string
  class: 'live' | 'batch'
  weight: number
  state: 'running' | 'paused' | 'ended'
  roundsCompleted: number
  roundsDropped: number
  openRounds: number
  queuedUnits: number
  /** Rounds completed per second over the last 10 s. */
  rate: number
  /** Latency of its last rounds (up to 200), ms; null before the first. */
  latencyP50: number | null
  latencyP95: number | null
  /** Units computed per second over the last 10 s. */
  unitsPerSec: number
  /** A live job's capacity floor (reference units per second) and the crowd's capacity, when set. */
  floor: { needed: number; capacity: number } | null
}

/** One point of a job's diagram, taken once a second. */
export type SeriesPoint = [
  atS: number,
  roundsCompleted: number,
  latencyP95: number | null,
  participants: number,
  unitsPerSec: number,
]

export interface ConsoleAlert {
  /** Stable while the condition lasts (the page keys its list by it). */
  id: string
  level: 'error' | 'warning'
  text: string
  /** Seconds since the console started. */
  sinceS: number
}

/** One message of the stream: everything the page shows, replaced whole each time. */
export interface ConsoleSnapshot {
  event: string
  /** Seconds since the console started. */
  atS: number
  devices: DeviceRow[]
  jobs: ConsoleJob[]
  alerts: ConsoleAlert[]
  crowd: { participants: number; browsers: number; nodes: number; dedicated: number }
  /** Each job's diagram: the whole history in the first message, its newest point after that. */
  series: Record<string, SeriesPoint[]>
  /** Whether `series` holds whole histories (the first message) or one new point per job. */
  seriesWhole: boolean
}

/** An action the page posts to `…/api/actions`. */
export const consoleActionSchema = z.discriminatedUnion('action', [
  z.strictObject({ action: z.enum(['pause', 'resume', 'end']), jobId: z.string().min(1).max(100) }),
  z.strictObject({
    action: z.literal('weight'),
    jobId: z.string().min(1).max(100),
    weight: z.number().finite().min(0.01).max(1000),
  }),
  z.strictObject({
    action: z.literal('remove'),
    participantId: z.string().min(1).max(100),
    reason: z.string().trim().min(1).max(500),
  }),
  z.strictObject({
    action: z.literal('link'),
    role: z.enum(['participant', 'recorder']),
    ttlSeconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 24 * 3600),
  }),
  z.strictObject({
    action: z.literal('floor'),
    jobId: z.string().min(1).max(100),
    /** Reference units per second; null: back to the job's own (from its rate and size). */
    unitsPerSec: z.number().finite().min(0).max(1e12).nullable(),
  }),
])
export type ConsoleAction = z.infer<typeof consoleActionSchema>

/** A recording as the console lists it. */
export interface ConsoleRecording {
  id: string
  state: 'recording' | 'published'
  createdAt: number
  bytes: number | null
  shareUrl: string
}

/** What the page measured, for tests and the console benchmark (`crowdmesh bench --only console`). */
export interface ConsoleProbe {
  snapshots: number
  /** Wall-clock ms (epoch) when each participant was first drawn, and when it was last seen gone. */
  firstSeen: Record<string, number>
  goneAt: Record<string, number>
  /** Milliseconds each snapshot took to apply and draw, the last 1,000. */
  renderMs: number[]
  lastError: string | undefined
  /**
   * Scrolls the devices table a row and a half a frame for `ms` and answers each frame's interval
   * (the console benchmark's frame time while scrolling); `still`: the same without scrolling.
   */
  scroll: (ms: number, still?: boolean) => Promise<number[]>
  /** How long each draw of the devices table took, ms (the last 1,000). */
  drawMs: number[]
}
