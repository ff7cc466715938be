import { z } from 'zod'
import { capabilitySchema } from '../protocol/capability.ts'
import { parseMessage } from '../protocol/schemas.ts'

/**
 * Messages between the coordinator's thread and a participant thread. A thread boundary is a
 * process boundary in miniature: both sides validate what they receive.
 */

/** Coordinator → participant. */
export const toParticipantSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('jobs'),
    jobs: z.array(
      z.object({ jobId: z.string(), kind: z.string(), version: z.number().int(), description: z.unknown() }),
    ),
  }),
  // The task is checked by its job's kind in the participant (its `JobDirectory`).
  z.object({
    type: z.literal('lease'),
    requestId: z.number().int(),
    lease: z
      .object({
        leaseId: z.number().int(),
        block: z.looseObject({ jobId: z.string(), frameIndex: z.number().int() }),
        deadline: z.number(),
      })
      .nullable(),
  }),
  z.object({ type: z.literal('work-available') }),
  z.object({ type: z.literal('ack'), requestId: z.number().int() }),
])
export type ToParticipant = z.infer<typeof toParticipantSchema>

/** Participant → coordinator. */
export const toCoordinatorSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('lease-request'), requestId: z.number().int(), capability: capabilitySchema }),
  z.object({
    type: z.literal('result'),
    requestId: z.number().int(),
    leaseId: z.number().int(),
    bytes: z.instanceof(Uint8Array),
  }),
  z.object({
    type: z.literal('failed'),
    requestId: z.number().int(),
    leaseId: z.number().int(),
    reason: z.string().max(1000),
  }),
])
export type ToCoordinator = z.infer<typeof toCoordinatorSchema>

export const parseToParticipant = (d: unknown): ToParticipant => parseMessage(toParticipantSchema, d)
export const parseToCoordinator = (d: unknown): ToCoordinator => parseMessage(toCoordinatorSchema, d)
