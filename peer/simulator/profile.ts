import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { InvalidOptionError } from '../protocol/errors.ts'
import { parseMessage } from '../protocol/schemas.ts'

/** A kind of device in a simulated crowd. Ranges are drawn uniformly per participant. */
export interface DeviceClass {
  name: string
  /** Share of the crowd (relative weight). */
  weight: number
  cores: number
  /** Time one core takes for one data thread, ms (the seed's "mean execution time per thread"). */
  msPerThread: [number, number]
  /** Share of its processor the participant lends. */
  dutyCycle: number
  /** Upstream bandwidth, Mbit/s. */
  bandwidthMbps: [number, number]
  rttMs: [number, number]
  /** Chance that a block runs `stragglerSlowdown` times slower (a busy phone, a throttled laptop). */
  stragglerChance: number
  stragglerSlowdown: number
  /** Registry names of the job kinds it runs (`vertex`, `image-filter`); absent: every registered kind. */
  kinds?: string[] | undefined
}

/** A crowd: its device classes. */
export interface CrowdProfile {
  name: string
  classes: DeviceClass[]
}

const range = z
  .tuple([z.number().finite().positive(), z.number().finite().positive()])
  .refine((r) => r[0] <= r[1], {
    message: 'min must not exceed max',
  })

const profileSchema = z.object({
  name: z.string().min(1).max(100),
  classes: z
    .array(
      z.object({
        name: z.string().min(1).max(100),
        weight: z.number().finite().positive(),
        cores: z.number().int().min(1).max(4096),
        msPerThread: range,
        dutyCycle: z.number().gt(0).max(1),
        bandwidthMbps: range,
        rttMs: range,
        stragglerChance: z.number().min(0).max(1),
        stragglerSlowdown: z.number().min(1).max(1000),
        kinds: z.array(z.string().min(1).max(32)).min(1).max(16).optional(),
      }),
    )
    .min(1)
    .max(100),
})

/**
 * The seed's management table: machines of 32, 32, 40, 16 and 4 cores at 24–42 ms per thread, on
 * good links, lending a quarter of their processors.
 */
const seed: CrowdProfile = {
  name: 'seed',
  classes: [
    { cores: 32, msPerThread: [24, 30] },
    { cores: 32, msPerThread: [28, 34] },
    { cores: 40, msPerThread: [30, 36] },
    { cores: 16, msPerThread: [32, 38] },
    { cores: 4, msPerThread: [36, 42] },
  ].map((c, i) => ({
    name: `seed-${i + 1}`,
    weight: 1,
    ...(c as { cores: number; msPerThread: [number, number] }),
    dutyCycle: 0.25,
    bandwidthMbps: [20, 100],
    rttMs: [10, 60],
    stragglerChance: 0.02,
    stragglerSlowdown: 5,
  })),
}

/** An event crowd: mostly phones, some laptops, a few desktops, on venue Wi-Fi and mobile networks. */
const event: CrowdProfile = {
  name: 'event',
  classes: [
    {
      name: 'phone',
      weight: 6,
      cores: 8,
      msPerThread: [60, 160],
      dutyCycle: 0.25,
      bandwidthMbps: [2, 20],
      rttMs: [40, 250],
      stragglerChance: 0.05,
      stragglerSlowdown: 6,
    },
    {
      name: 'laptop',
      weight: 3,
      cores: 8,
      msPerThread: [30, 60],
      dutyCycle: 0.25,
      bandwidthMbps: [10, 60],
      rttMs: [20, 100],
      stragglerChance: 0.03,
      stragglerSlowdown: 4,
    },
    {
      name: 'desktop',
      weight: 1,
      cores: 16,
      msPerThread: [20, 35],
      dutyCycle: 0.5,
      bandwidthMbps: [50, 300],
      rttMs: [10, 40],
      stragglerChance: 0.01,
      stragglerSlowdown: 3,
    },
  ],
}

/**
 * The event crowd at a match run: the same phones, laptops and desktops, a thousand times faster per
 * unit, so that a slice of 64 references (one task, leased whole) takes 0.4–7 s. The seed's
 * "thread" is a heavy unit; at its speeds one reference would take minutes, and the tens of results
 * per identity that earn and spend trust (a sleeper wakes after 100) would need hours of virtual
 * time. What the trust figures of a match run depend on is results per identity, not seconds.
 */
const matchRun: CrowdProfile = {
  name: 'match-run',
  classes: event.classes.map((c) => ({
    ...c,
    msPerThread: [c.msPerThread[0] / 1000, c.msPerThread[1] / 1000],
  })),
}

/** The built-in profiles by name. */
export const builtInProfiles: Readonly<Record<string, CrowdProfile>> = { seed, event, 'match-run': matchRun }

/** A built-in profile by name, or one loaded from a JSON file (validated; errors name the field). */
export async function loadProfile(nameOrFile: string): Promise<CrowdProfile> {
  const builtIn = builtInProfiles[nameOrFile]
  if (builtIn !== undefined) return builtIn
  let text: string
  try {
    text = await readFile(nameOrFile, 'utf8')
  } catch {
    throw new InvalidOptionError(
      `--profile ${nameOrFile}: not a built-in profile (${Object.keys(builtInProfiles).join(', ')}) nor a readable file`,
    )
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (cause) {
    throw new InvalidOptionError(`--profile ${nameOrFile}: not JSON: ${(cause as Error).message}`)
  }
  return parseMessage(profileSchema, data)
}
