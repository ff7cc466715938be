import { describe, it } from 'vitest'
import { jobKinds } from '../../peer/jobs/registry.ts'
import { checkKind } from '../support/kind-conformance.ts'

describe('every job kind keeps the plug-in contract', () => {
  for (const kind of jobKinds.values())
    it(`${kind.name}: tasks tile each round exactly, results cross the wire and count once, outcomes gossip`, () => {
      checkKind(kind, 20_000)
    })
})
