import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type EditName, generateEditedDataset } from '../../peer/jobs/match/edit-generator.ts'
import { groupOriginals, scoreThreshold } from '../../peer/jobs/match/edit-score.ts'
import { loadMatchingDataset } from '../../peer/jobs/match/ground-truth.ts'
import { defaultMatchRule, ReferenceSet } from '../../peer/jobs/match/matcher.ts'
import { fingerprintDataset, matchAllAgainstAll } from '../../scripts/commands/match-eval.ts'
import { repoRoot } from '../support/fixtures.ts'

/** The shared video-matching samples beside the repository (as the other tests read ../shared/data). */
const videoMatchingDir = join(repoRoot, '..', 'shared', 'data', 'video-matching')
const chair = 'tmk/chair-orig-22-sd-bar.mp4'

/** Fingerprints a data set (cached in `cacheDir`), matches all against all at the default rule, and scores it. */
async function scoreAtDefault(root: string, cacheDir: string) {
  const dataset = await loadMatchingDataset(root)
  const { videos, failed } = await fingerprintDataset(dataset, { cacheDir })
  expect(failed).toEqual([])
  const references = new ReferenceSet()
  for (const video of videos) references.add(video)
  const matches = matchAllAgainstAll(videos, references.freeze(), defaultMatchRule.maxHammingBits)
  return { dataset, matches, score: scoreThreshold(dataset, defaultMatchRule.maxHammingBits, matches) }
}

describe('match-eval: all-against-all matching scored against the ground truth', () => {
  let work: string
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'crowdmesh-match-eval-'))
  })
  afterAll(async () => {
    await rm(work, { recursive: true, force: true })
  })

  it('matches all 21 chair pairs of the shared set at their offsets, and nothing else', async () => {
    const { score, matches } = await scoreAtDefault(videoMatchingDir, join(work, 'fingerprints'))
    expect(score.pairs.falsePositives).toEqual([])
    expect(score.pairs.precision).toBe(1)
    expect(score.pairs.pairs).toBe(21)
    expect(score.pairs.missed).toEqual([])
    expect(score.pairs.recall).toBe(1)
    expect(score.pairs.worstOffsetError).toBeLessThanOrEqual(1)
    // Each of the six copies with the original, the large logo and the 3.7 s clip included.
    expect(score.edits.copies).toBe(6)
    expect(score.edits.found).toBe(6)
    // The doorknob and the distractors match nothing, in either direction.
    for (const m of matches) {
      expect(m.ugcId).toMatch(/^tmk\/chair-/)
      expect(m.refId).toMatch(/^tmk\/chair-/)
    }
  })

  it('finds every generated copy of the chair with its original at the right offset, and nothing unrelated', async () => {
    const edits: EditName[] = ['crop', 'letterbox', 'logo', 'brightness', 'clip']
    const generated = await generateEditedDataset({
      source: videoMatchingDir,
      out: join(work, 'edits'),
      originals: [chair],
      edits,
      clipsPerStrength: 1,
    })
    // Four edits at two strengths, and one clip of each strength.
    expect(generated.copies).toHaveLength(10)
    expect(generated.made).toBe(10)
    const clips = generated.copies.filter((c) => c.edit === 'clip')
    for (const clip of clips) expect(clip.offset).toBeGreaterThan(0)

    const { dataset, score } = await scoreAtDefault(generated.root, join(work, 'fingerprints'))
    expect(groupOriginals(dataset).get('chair')).toBe(chair)
    expect(score.pairs.falsePositives).toEqual([])
    expect(score.pairs.precision).toBe(1)
    // The shared set's six copies and the ten generated ones.
    expect(score.edits.copies).toBe(16)
    expect(score.edits.missed).toEqual([])
    expect(score.edits.recall).toBe(1)
    expect(score.edits.worstOffsetError).toBeLessThanOrEqual(1)
    for (const edit of edits)
      for (const strength of ['mild', 'strong']) {
        const row = score.edits.byEdit.find((r) => r.edit === edit && r.strength === strength)
        expect(row, `${edit} ${strength}`).toMatchObject({ copies: 1, found: 1 })
      }

    // A second run keeps every copy: same parameters, same files.
    const again = await generateEditedDataset({
      source: videoMatchingDir,
      out: join(work, 'edits'),
      originals: [chair],
      edits,
      clipsPerStrength: 1,
    })
    expect(again).toMatchObject({ made: 0, kept: 10 })
    expect(again.copies).toEqual(generated.copies)
  })
})
