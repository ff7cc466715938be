import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { cachedFiles } from '../../peer/jobs/file-cache.ts'
import type { AnyJobKind, JobSpec } from '../../peer/jobs/kind.ts'
import type { FingerprintFile } from '../../peer/jobs/match/fingerprint-file.ts'
import {
  type FingerprintJob,
  fingerprintKind,
  type FingerprintTask,
} from '../../peer/jobs/match/fingerprint-kind.ts'
import { nodeVideos } from '../../peer/jobs/node-env.ts'
import { repoRoot } from '../support/fixtures.ts'
import { memoryMatchJob, memoryMatchTask, seededFingerprints } from '../support/fingerprints.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { matchKind, type MatchTaskResult } from '../../peer/jobs/match/match-kind.ts'
import { kindValidator } from '../../peer/jobs/validator.ts'
import type { AnyTaskWorker, WorkerFactory } from '../../peer/participant/job-directory.ts'
import { lyingWorkers } from '../support/lying-worker.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'

/*
 * Validating match results (README, "Trust"): the coordinator reruns the matcher over the references
 * a result reports and a few sampled ones, from the same fingerprint files. An invented match never
 * passes; a hidden one passes a check that does not look at its reference, and is found where a
 * replica disagrees.
 */

const video = seededFingerprints

// Twelve references; the query is reference 5, and reference 9 is a copy of it: two matches.
const files = new Map<string, Uint8Array>()
for (let i = 0; i < 12; i++) files.set(`mem:ref${i}`, video(i + 1, 20))
files.set('mem:ref9', files.get('mem:ref5')!)
files.set('mem:query', files.get('mem:ref5')!)
files.set(
  'mem:list',
  new TextEncoder().encode(
    JSON.stringify({
      references: [...Array(12).keys()].map((i) => ({ id: `r${i}`, url: `mem:ref${i}`, duration: 20 })),
    }),
  ),
)
const source = cachedFiles((url) => Promise.resolve(files.get(url)!), 64 * 2 ** 20)
const job = memoryMatchJob(12)
const task = memoryMatchTask(2, 10)

describe('validating match results', () => {
  it('passes the honest result, refuses an invented match, finds a hidden one where a replica disagrees', async () => {
    const worker = await matchKind.workers.cpu({ frames: frameSource(), files: source })
    const honest = await worker.run(job, task)
    expect(honest.matches.map((m) => m.ref).sort()).toEqual([5, 9])
    const validator = kindValidator(matchKind, job, { frames: frameSource(), files: source })!
    const checker = validator.checker!
    expect(validator.sparseLies).toBe(true)
    const all = [...Array(10).keys()]
    expect(await checker.check(task, honest, all)).toEqual({ ok: true })

    // An invented match is refused even by the cheap check (no reference sampled).
    const invented: MatchTaskResult = {
      ...honest,
      matches: [...honest.matches, { ...honest.matches[0]!, ref: 3 }],
    }
    const refused = await checker.check(task, invented, [])
    expect(refused).toMatchObject({ ok: false, unit: 1 })
    expect(refused.ok === false && refused.reason).toMatch(
      /reference r3 against q: recomputed no match, the result says 0\.00/,
    )

    // A hidden match passes a check that does not look at its reference…
    const hidden: MatchTaskResult = { ...honest, matches: honest.matches.filter((m) => m.ref !== 9) }
    expect(await checker.check(task, hidden, [0, 1])).toEqual({ ok: true })
    // …but not a replica's comparison: the disputed reference, checked, shows who hid it.
    expect(validator.agree(task, honest, hidden)).toBe(false)
    expect(validator.disputed(task, honest, hidden, 10)).toEqual([7])
    expect(await checker.check(task, hidden, [7])).toMatchObject({ ok: false, unit: 7 })
    expect(await checker.check(task, honest, [7])).toEqual({ ok: true })
    // The same matches listed in another order agree.
    expect(validator.agree(task, honest, { ...honest, matches: [...honest.matches].reverse() })).toBe(true)
  })
})

describe('validating fingerprint results', () => {
  it('passes ffmpeg’s own fingerprints and ones a decoder’s few bits away, refuses made-up ones', async () => {
    const videoUrl = pathToFileURL(
      join(repoRoot, '..', 'shared', 'data', 'video-matching', 'tmk', 'chair-19-sd-bar.mp4'),
    ).href
    const spec: JobSpec<FingerprintJob> = {
      jobId: 'f',
      kind: fingerprintKind.name,
      version: fingerprintKind.version,
      description: { format: fingerprintFormat.version },
    }
    const fingerprintTask: FingerprintTask = {
      jobId: 'f',
      frameIndex: 0,
      videoId: 'chair',
      videoUrl,
      duration: 19,
      first: 4,
      count: 3,
      phases: [0, 1],
    }
    const videos = nodeVideos()
    const worker = await fingerprintKind.workers.cpu({ frames: frameSource(), videos })
    const honest = await worker.run(spec, fingerprintTask)
    const validator = kindValidator(fingerprintKind, spec, { frames: frameSource(), videos })!
    expect(await validator.checker!.check(fingerprintTask, honest, [0, 2])).toEqual({ ok: true })
    const flip = (file: FingerprintFile, bits: number, segment: number): FingerprintFile => ({
      ...file,
      fingerprints: file.fingerprints.map((f) => {
        if (f.segment !== segment) return f
        const copy = f.bits.slice()
        for (let i = 0; i < bits; i++) copy[i >> 3]! ^= 1 << (i & 7)
        return { ...f, bits: copy }
      }),
    })
    // Another decoder's few bits: the same result.
    const near = flip(honest, 10, 5)
    expect(validator.agree(fingerprintTask, honest, near)).toBe(true)
    expect(await validator.checker!.check(fingerprintTask, near, [1])).toEqual({ ok: true })
    // Made up: refused, and the segment named.
    const lie = flip(honest, 300, 6)
    expect(validator.disputed(fingerprintTask, honest, lie, 5)).toEqual([2])
    const verdict = await validator.checker!.check(fingerprintTask, lie, [2])
    expect(verdict).toMatchObject({ ok: false, unit: 2 })
    expect(verdict.ok === false && verdict.reason).toMatch(
      /segment 6 phase \d of chair: the result's fingerprint is \d+ bits away/,
    )
  })
})

describe('a lying match worker', () => {
  it('hides or invents matches in a well-formed result, and the checker refuses each lie', async () => {
    const honestWorkers = (kind: typeof matchKind) =>
      kind.workers.cpu({ frames: frameSource(), files: source }) as Promise<AnyTaskWorker>
    const checker = kindValidator(matchKind, job, { frames: frameSource(), files: source })!.checker!
    for (const model of ['random', 'constant', 'lazy', 'colluder', 'partial'] as const) {
      const worker = await lyingWorkers(honestWorkers as WorkerFactory, model)(matchKind as AnyJobKind)
      const lie = (await worker.run(job, task)) as MatchTaskResult
      expect(matchKind.result.matches(task, lie), model).toBe(true)
      // The references it reports, and the two with true matches, checked: the lie shows.
      const verdict = await checker.check(task, lie, [3, 7])
      expect(verdict.ok, model).toBe(false)
    }
  })
})
