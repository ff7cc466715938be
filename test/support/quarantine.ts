import { expect } from 'vitest'
import type { ParticipantProcess } from '../../peer/mesh/participant-process.ts'

/**
 * Expects a lying participant process to be gone for good, told why: it exits with 1, and one of its
 * disconnections carries the quarantine's reason (an earlier connection attempt may have timed out
 * and been retried first).
 */
export async function expectQuarantined(liar: ParticipantProcess): Promise<void> {
  expect(await liar.exited).toBe(1)
  const reasons = liar.events.flatMap((e) => (e.type === 'disconnected' ? [String(e.reason)] : []))
  expect(
    reasons.some((r) => /a check proved a result of yours wrong/.test(r)),
    reasons.join('; '),
  ).toBe(true)
}
