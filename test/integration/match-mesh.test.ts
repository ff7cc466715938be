import { spawnSync } from 'node:child_process'
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  loadMatchingDataset,
  type MatchingDataset,
  scoreMatches,
} from '../../peer/jobs/match/ground-truth.ts'
import { fingerprintJobInit, type MatchRunResult, runMatchRun } from '../../peer/jobs/match/match-run.ts'
import { type RunningEvent, startEvent } from '../../peer/mesh/event.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { repoRoot } from '../support/fixtures.ts'
import { expectQuarantined } from '../support/quarantine.ts'

/*
 * A match run over the real mesh: the shared video set (the TMK chair video and its six copies, the
 * doorknob and 23 distractors) matched all against all by two Node participant processes that
 * fingerprint with ffmpeg and match over WebRTC, beside a third that lies about matches (it hides
 * every match and invents one: README, "Trust"). The matches must be exactly the ground truth's, the
 * liar quarantined, and broken inputs beside them (empty, corrupt, truncated, audio only, four hours
 * long) each fail with a clear error while the run goes on.
 */

const datasetDir = join(repoRoot, '..', 'shared', 'data', 'video-matching')
let dataset: MatchingDataset
let event: RunningEvent
let scratch: string
const processes: ParticipantProcess[] = []
let liar: ParticipantProcess
let liarId: string
const quarantined: { participantId: string; reason: string }[] = []
let result: MatchRunResult
const broken: Record<string, RegExp> = {
  'empty.mp4': /empty file/,
  'corrupt.mp4': /not a video ffmpeg can read/,
  'truncated.mp4': /truncated or damaged|not a video ffmpeg can read/,
  'audio-only.m4a': /no video stream/,
  'four-hours.mkv': /longer than the 3600 s/,
}

function ffmpeg(...args: string[]): void {
  const run = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args])
  if (run.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${run.stderr.toString()}`)
}

beforeAll(async () => {
  dataset = await loadMatchingDataset(datasetDir)
  scratch = await mkdtemp(join(tmpdir(), 'crowdmesh-match-mesh-'))
  await writeFile(join(scratch, 'empty.mp4'), new Uint8Array(0))
  await writeFile(
    join(scratch, 'corrupt.mp4'),
    Uint8Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 24),
  )
  const original = await readFile(join(datasetDir, 'tmk/chair-orig-22-sd-bar.mp4'))
  await writeFile(join(scratch, 'truncated.mp4'), original.subarray(0, Math.floor(original.length / 3)))
  ffmpeg('-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', join(scratch, 'audio-only.m4a'))
  // Four hours at one frame a minute: a long file that is small and quick to make.
  ffmpeg(
    '-f',
    'lavfi',
    '-i',
    'color=c=gray:s=32x32:r=1/60',
    '-t',
    '14400',
    '-c:v',
    'libx264',
    '-g',
    '1',
    join(scratch, 'four-hours.mkv'),
  )
  await copyFile(join(datasetDir, 'tmk/doorknob-hd-no-bar.mp4'), join(scratch, 'copied-doorknob.mp4'))
  event = await startEvent({
    // A short run of two participants: trusted after 3 results in a row rather than 10, so that the
    // run is not mostly their untrusted phase (every match result replicated). Validation's own tests
    // keep the defaults (README, "Trust").
    coordinator: { jobs: [fingerprintJobInit('run')], validation: { trustAfter: 3 } },
    turn: 'off',
  })
  event.coordinator.on('participantQuarantined', (q) => quarantined.push(q))
  for (let i = 0; i < 2; i++)
    processes.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))
  liar = new ParticipantProcess(event.joinLink, {
    entry: join(repoRoot, 'test', 'support', 'lying-participant.ts'),
    options: { model: 'random', dutyCycle: 1, cores: 1 },
  })
  liarId = ((await liar.waitFor('welcome')) as { participantId: string }).participantId
  const videos = dataset.videos.map((id) => ({ id, path: join(datasetDir, id) }))
  const bad = Object.keys(broken).map((id) => ({ id: `broken/${id}`, path: join(scratch, id) }))
  result = await runMatchRun(event, {
    name: 'run',
    queries: [...videos, ...bad],
    references: [...videos, ...bad],
    folder: join(scratch, 'run'),
    skipSelf: true,
  })
}, 300_000)

afterAll(async () => {
  await Promise.all([...processes, liar].map((p) => p?.stop('SIGKILL')))
  await event?.stop()
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
})

describe('a match run over the real mesh', () => {
  it('finds exactly the ground truth on the shared set: every chair pair at its offset, nothing else', () => {
    const score = scoreMatches(dataset, result.matches)
    expect(score.falsePositives).toEqual([])
    expect(score.missed).toEqual([])
    expect(score.pairs).toBe(21)
    expect(score.precision).toBe(1)
    expect(score.recall).toBe(1)
    expect(score.worstOffsetError).toBeLessThanOrEqual(1)
    // Both directions of each pair: 42 matches of copies of one original, no more.
    expect(result.matches).toHaveLength(42)
    // The participants computed it: both took tasks of both kinds.
    for (const p of processes) expect(p.events.some((e) => e.type === 'firstLease')).toBe(true)
  })

  it('quarantines the participant that lied about matches, and nobody else', async () => {
    expect(
      quarantined.map((q) => q.participantId),
      JSON.stringify(quarantined),
    ).toEqual([liarId])
    expect(quarantined[0]!.reason).toMatch(/match|reference/)
    await expectQuarantined(liar)
    for (const p of processes) expect(p.child.exitCode).toBeNull()
  })

  it('fails each broken video with a clear reason, as query and as reference, and matches the rest', () => {
    for (const [name, reason] of Object.entries(broken)) {
      const failures = result.failed.filter((f) => f.id === `broken/${name}`)
      expect(failures.map((f) => f.role).sort()).toEqual(['query', 'reference'])
      for (const failure of failures) expect(failure.error).toMatch(reason)
    }
    expect(result.failed).toHaveLength(2 * Object.keys(broken).length)
    expect(result.fingerprints.queries).toBeGreaterThan(0)
  })
})
