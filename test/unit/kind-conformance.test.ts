import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { jobKinds } from '../../peer/jobs/registry.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { checkKind, cutRound, simulatedSpec } from '../support/kind-conformance.ts'

describe('every job kind keeps the plug-in contract', () => {
  for (const kind of jobKinds.values())
    it(`${kind.name}: tasks tile each round exactly, results cross the wire and count once, outcomes gossip`, () => {
      checkKind(kind, 20_000)
    })

  // Results come from participants and outcomes from gossip: a kind's decoders are a boundary, and
  // anything they cannot read is a `CrowdmeshError` (a clear refusal), never a crash of another type.
  for (const kind of jobKinds.values())
    it(`${kind.name}: refuses hostile result and outcome bytes with a CrowdmeshError`, () => {
      const spec = simulatedSpec(kind, 20_000)
      const task = cutRound(kind, spec, [1000], 20_000)[0]!
      const real = kind.result.encode(kind.simulation.fakeResult(task))
      const hostile = fc.oneof(
        fc.uint8Array({ maxLength: 512 }),
        fc.json().map((text) => new TextEncoder().encode(text)),
        // The real bytes with some changed: every header field is reached.
        fc
          .array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
          .map((edits) => {
            const bytes = real.slice()
            for (const [at, value] of edits) bytes[at] = value
            return bytes
          }),
      )
      const refusesClearly = (decode: () => unknown) => {
        try {
          decode()
        } catch (error) {
          expect(error).toBeInstanceOf(CrowdmeshError)
        }
      }
      fc.assert(
        fc.property(hostile, (bytes) => {
          refusesClearly(() => kind.result.decode(bytes, task))
          refusesClearly(() => kind.outcome.decode(bytes))
        }),
        { numRuns: 300 },
      )
    })
})
