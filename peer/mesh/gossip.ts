import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { z } from 'zod'
import { InvalidMessageError, MessageTooLargeError } from '../protocol/errors.ts'
import { parseControl } from './work-protocol.ts'

/**
 * Gossip on an event's mesh. Three topics per event:
 * - `job`: the coordinator's status (job id, frames done, participants), every couple of seconds;
 * - `outcome`: each completed round's outcome, of every job: the job's id, then the outcome as its
 *   kind encodes it (`JobKind.outcome`), which participants display;
 * - `presence`: each participant's own state (computing, paused, its blocks done).
 * Gossipsub signs every message with its author's key (StrictSign) and checks the signature; on the
 * coordinator's topics a validator then drops any message whose author is not the coordinator, so a
 * participant cannot pass itself off as the coordinator.
 */

/** The topic names of an event. */
export function eventTopics(event: string): { job: string; outcome: string; presence: string } {
  return {
    job: `/crowdmesh/${event}/job/1`,
    outcome: `/crowdmesh/${event}/outcome/1`,
    presence: `/crowdmesh/${event}/presence/1`,
  }
}

/** The coordinator's status. */
export const statusSchema = z.object({
  type: z.literal('status'),
  event: z.string().max(128),
  jobId: z.string().max(128),
  framesCompleted: z.number().int().min(0),
  framesDropped: z.number().int().min(0),
  framesOpen: z.number().int().min(0),
  participants: z.number().int().min(0),
  latestFrame: z.number().int().min(-1),
  outcomeFps: z.number().finite().min(0),
  at: z.number().finite(),
})
export type CoordinatorStatus = z.infer<typeof statusSchema>

/** A participant's presence. */
export const presenceSchema = z.object({
  type: z.literal('presence'),
  state: z.enum(['joining', 'computing', 'idle', 'paused', 'leaving']),
  blocksDone: z.number().int().min(0),
  threadsPerSec: z.number().finite().min(0),
  agent: z.string().max(200),
})
export type Presence = z.infer<typeof presenceSchema>

const maxPresenceBytes = 1024

/** Longest job id in an outcome's envelope, bytes (the `welcome` schema's limit). */
const maxJobIdBytes = 128

/** An outcome on gossip (and sent to a participant who joins late): u8 job id length, the id, the kind's payload. */
export function encodeJobOutcome(jobId: string, payload: Uint8Array): Uint8Array {
  const id = new TextEncoder().encode(jobId)
  if (id.length > maxJobIdBytes) throw new MessageTooLargeError(id.length, maxJobIdBytes)
  const out = new Uint8Array(1 + id.length + payload.length)
  out[0] = id.length
  out.set(id, 1)
  out.set(payload, 1 + id.length)
  return out
}

/** The job id and the kind's payload of an outcome's envelope; throws `InvalidMessageError`. */
export function decodeJobOutcome(bytes: Uint8Array): { jobId: string; payload: Uint8Array } {
  const length = bytes[0] ?? 0
  if (length === 0 || length > maxJobIdBytes || bytes.length < 1 + length)
    throw new InvalidMessageError('(outcome)', 'no job id')
  let jobId: string
  try {
    jobId = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(1, 1 + length))
  } catch {
    throw new InvalidMessageError('(outcome)', 'the job id is not UTF-8')
  }
  return { jobId, payload: bytes.subarray(1 + length) }
}

/** Bytes the envelope adds to an outcome of `jobId`. */
export const outcomeEnvelopeBytes = (jobId: string): number => 1 + new TextEncoder().encode(jobId).length

/** Encodes a JSON gossip message (status or presence). */
export function encodeJson(message: CoordinatorStatus | Presence): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(message))
}

/**
 * The validators a participant installs for an event: it gossips with its coordinator alone, so any
 * message forwarded by another peer is rejected; messages on the coordinator's topics must also be
 * signed by the coordinator and parse; presence must parse and stay small. Anything else is rejected
 * (gossipsub then neither delivers nor forwards it, and lowers the forwarding peer's score).
 */
export function eventValidators(
  event: string,
  coordinator: PeerId,
): Map<string, (peer: PeerId, message: Message) => TopicValidatorResult> {
  const topics = eventTopics(event)
  const fromCoordinator = (message: Message) => message.type === 'signed' && message.from.equals(coordinator)
  const check =
    (accept: (message: Message) => boolean) =>
    (peer: PeerId, message: Message): TopicValidatorResult => {
      try {
        return peer.equals(coordinator) && accept(message)
          ? TopicValidatorResult.Accept
          : TopicValidatorResult.Reject
      } catch {
        return TopicValidatorResult.Reject
      }
    }
  return new Map([
    [topics.job, check((m) => fromCoordinator(m) && parseStatus(m.data) !== undefined)],
    // The payload is checked by its job's kind when it is shown (join.ts): a kind a participant
    // lacks is skipped there, not rejected for the peers that have it.
    [topics.outcome, check((m) => fromCoordinator(m) && decodeJobOutcome(m.data) !== undefined)],
    [topics.presence, check((m) => m.type === 'signed' && parsePresence(m.data) !== undefined)],
  ])
}

/**
 * The validators the coordinator installs for its event: nobody else publishes on its own topics,
 * and presence counts only from a peer it admitted (a welcomed participant), signed by an admitted
 * author, parsed and small.
 */
export function coordinatorValidators(
  event: string,
  admitted: (peer: PeerId) => boolean,
): Map<string, (peer: PeerId, message: Message) => TopicValidatorResult> {
  const topics = eventTopics(event)
  const reject = () => TopicValidatorResult.Reject
  const presence = (peer: PeerId, message: Message): TopicValidatorResult => {
    try {
      return admitted(peer) &&
        message.type === 'signed' &&
        admitted(message.from) &&
        parsePresence(message.data) !== undefined
        ? TopicValidatorResult.Accept
        : TopicValidatorResult.Reject
    } catch {
      return TopicValidatorResult.Reject
    }
  }
  return new Map([
    [topics.job, reject],
    [topics.outcome, reject],
    [topics.presence, presence],
  ])
}

/** Parses a status message. */
export const parseStatus = (data: Uint8Array): CoordinatorStatus => parseControl(statusSchema, data)

/** Parses a presence message (at most 1 KiB). */
export function parsePresence(data: Uint8Array): Presence {
  if (data.length > maxPresenceBytes) throw new MessageTooLargeError(data.length, maxPresenceBytes)
  return parseControl(presenceSchema, data)
}
