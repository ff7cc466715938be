import { z } from 'zod'
import { parseMessage } from './schemas.ts'

/**
 * What a participant states when it asks for work, measured rather than declared: the coordinator
 * sizes its blocks and sets its deadlines from it, and checks it against what it observes.
 */
export interface Capability {
  /** Logical cores of the device. */
  cores: number
  /**
   * Reference units per second it sustains within its duty cycle (the unit of relative cost 1, see
   * `JobKind.cost`), from its calibration task and then from its own completed tasks. 0 when not
   * measured yet.
   */
  threadsPerSec: number
  /** Upstream bandwidth to the coordinator, bytes/s (0 when unknown). */
  bandwidthBytesPerSec: number
  /** Round-trip time to the coordinator, ms. */
  rttMs: number
  /** Share of its processor it may use, (0, 1]: the participant's own use stays unaffected. */
  dutyCycle: number
  /**
   * The job kinds it runs, as `name@version`. Absent: the registry's first kind alone
   * (`legacyKindTag`: what every participant ran before job kinds). It is never leased a task of
   * another kind.
   */
  kinds?: string[] | undefined
  /**
   * The shared inputs it holds (a match run's reference shards in its snapshot cache, by the
   * affinity the run gave them): the coordinator prefers to draw it work that reads them.
   */
  holds?: string[] | undefined
}

/** Schema of a stated capability. */
export const capabilitySchema = z.object({
  cores: z.number().int().min(1).max(4096),
  threadsPerSec: z.number().finite().min(0).max(1e10),
  bandwidthBytesPerSec: z.number().finite().min(0).max(1e12),
  rttMs: z.number().finite().min(0).max(60_000),
  dutyCycle: z.number().finite().gt(0).max(1),
  kinds: z
    .array(z.string().regex(/^[a-z][a-z0-9-]{0,31}@[0-9]{1,4}$/))
    .max(16)
    .optional(),
  holds: z.array(z.string().min(1).max(128)).max(64).optional(),
})

/** Parses a stated capability, naming the offending field. */
export const parseCapability = (d: unknown): Capability => parseMessage(capabilitySchema, d)
