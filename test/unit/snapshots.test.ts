import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  chooseSnapshot,
  filesToCopy,
  type Snapshot,
  type SnapshotFile,
  similarity,
} from '../../peer/pool/snapshots.ts'

/* The seed's similarity function for snapshot folders, with its own worked example. */

const ref = (n: number, at = 'v1'): SnapshotFile => ({ class: 'reference', location: `store/${at}/ref${n}` })
const ugc = (n: number, at = 'v1'): SnapshotFile => ({ class: 'ugc', location: `store/${at}/ugc${n}` })

describe('the similarity function', () => {
  it("scores the seed's example 1: ref1 and ref2 agree, ugc1's location changed", () => {
    const snapshot = { files: [ref(1), ref(2), ugc(1), ugc(2)] }
    expect(similarity(snapshot, [ref(1), ref(2), ugc(1, 'v2'), ugc(2)])).toBe(1)
    expect(similarity(snapshot, [ref(1), ref(2), ugc(1), ugc(2)])).toBe(2)
    // A class agrees only when all its files do: one more reference is a disagreement.
    expect(similarity(snapshot, [ref(1), ref(2), ref(3), ugc(1), ugc(2)])).toBe(1)
    expect(similarity({ files: [] }, [ref(1), ugc(1)])).toBe(0)
  })

  it('picks the best score, the oldest on ties, an empty folder when all score 0, else wipes the oldest', () => {
    const task = [ref(1), ref(2), ugc(5), ugc(6)]
    const folders: Snapshot[] = [
      { id: 'new-refs', files: [ref(1), ref(2), ugc(1)], usedAt: 30 },
      { id: 'old-refs', files: [ref(1), ref(2), ugc(9)], usedAt: 10 },
      { id: 'other', files: [ref(7), ugc(8)], usedAt: 5 },
    ]
    expect(chooseSnapshot(folders, task)).toMatchObject({
      snapshot: { id: 'old-refs' },
      score: 1,
      wipe: false,
    })
    const unrelated = [ref(40), ugc(41)]
    expect(chooseSnapshot(folders, unrelated)).toMatchObject({
      snapshot: { id: 'other' },
      score: 0,
      wipe: true,
    })
    expect(chooseSnapshot([...folders, { id: 'empty', files: [], usedAt: 50 }], unrelated)).toMatchObject({
      snapshot: { id: 'empty' },
      wipe: false,
    })
    expect(chooseSnapshot([], task)).toBeUndefined()
    expect(filesToCopy(folders[1]!, task)).toEqual([ugc(5), ugc(6)])
  })

  it('never picks a folder another scores higher than, and copies nothing a kept class holds', () => {
    const file = fc.record({
      class: fc.constantFrom('reference', 'ugc'),
      location: fc.constantFrom('a', 'b', 'c', 'd'),
    })
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.uuid(), files: fc.array(file, { maxLength: 4 }), usedAt: fc.nat() }), {
          minLength: 1,
          maxLength: 5,
        }),
        fc.array(file, { minLength: 1, maxLength: 4 }),
        (folders, task) => {
          const chosen = chooseSnapshot(folders, task)!
          const best = Math.max(...folders.map((f) => similarity(f, task)))
          expect(chosen.score).toBe(best)
          if (chosen.wipe) expect(best).toBe(0)
          const copied = chosen.wipe ? task : filesToCopy(chosen.snapshot, task)
          expect(copied.length).toBeLessThanOrEqual(task.length)
        },
      ),
    )
  })
})
