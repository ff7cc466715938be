import { spawn } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { filterRect } from '../../peer/jobs/image-filter/filter.ts'
import { decodePng } from '../../peer/participant/png.ts'
import { decodePly } from '../../peer/quality/ply.ts'
import { ResultsStore } from '../../peer/pool/results-store.ts'
import { repoRoot, templeDir } from '../support/fixtures.ts'
import { probe, recorderLikeWebm } from '../support/media.ts'

/** Runs the CLI as a child process, as a user would (`bin/crowdmesh.js`). */
function crowdmesh(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'crowdmesh.js'), ...args], { cwd: repoRoot })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    child.once('error', reject)
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })
}

describe('crowdmesh CLI', () => {
  it('prints help for itself and every command', async () => {
    const top = await crowdmesh(['--help'])
    expect(top.code).toBe(0)
    const helps: string[] = []
    for (const command of [
      'start',
      'join',
      'eval',
      'simulate',
      'serve',
      'record',
      'bench',
      'fingerprint',
      'match',
      'match-eval',
      'matches',
      'runs',
      'runs create',
      'runs extend',
      'runs serve',
      'runs status',
      'runs priority',
      'runs simulate',
    ]) {
      expect(top.stdout).toContain(command.split(' ')[0])
      helps.push(command)
    }
    // Three at a time: each is a process start, most of it waiting on the module loader.
    for (let i = 0; i < helps.length; i += 3) {
      const batch = helps.slice(i, i + 3)
      const answers = await Promise.all(batch.map((command) => crowdmesh([...command.split(' '), '--help'])))
      answers.forEach((help, j) => {
        expect(help.code, batch[j]).toBe(0)
        expect(help.stdout).toMatch(new RegExp(`Usage: crowdmesh ${batch[j]!}`))
      })
    }
  })

  it('refuses unknown commands and options with exit code 2, and a missing data set with 1', async () => {
    expect((await crowdmesh(['fly'])).code).toBe(2)
    const badOption = await crowdmesh(['eval', '--dataset', templeDir, '--nope'])
    expect(badOption.code).toBe(2)
    expect(badOption.stderr).toMatch(/--help/)
    const badGrid = await crowdmesh(['eval', '--dataset', templeDir, '--grid', 'zero'])
    expect(badGrid.code).toBe(2)
    expect(badGrid.stderr).toMatch(/--grid must be a positive integer/)
    const missing = await crowdmesh(['eval', '--dataset', '/nonexistent/set'])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/cannot read data set folder/)
    const holdout = await crowdmesh(['eval', '--dataset', templeDir, '--holdout', 'nosuchview'])
    expect(holdout.code).toBe(1)
    expect(holdout.stderr).toMatch(/no such view/)
  })

  it('eval --json scores one held-out view, both methods on both renderers, and writes the PLY and the renderings', async () => {
    const out = await mkdtemp(join(tmpdir(), 'crowdmesh-eval-'))
    const run = await crowdmesh([
      'eval',
      '--dataset',
      templeDir,
      '--grid',
      '64',
      '--holdout',
      'templeSR0004',
      '--method',
      'both',
      '--out',
      out,
      '--json',
    ])
    expect(run.code).toBe(0)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({
      dataset: 'templeSR',
      grid: 64,
      holdout: 'templeSR0004',
      method: 'both',
      totalVertices: 64 ** 3,
    })
    // At 64³ the contract's 1-pixel splats leave gaps between a surface's vertices (measured 15.2 dB
    // / 0.64); the footprint renderer fills them (18.3 dB / 0.80). The naive method is scored alike.
    expect(report.psnr).toBeGreaterThan(14)
    expect(report.iou).toBeGreaterThan(0.55)
    expect(report.footprint.psnr).toBeGreaterThan(report.psnr)
    expect(report.footprint.iou).toBeGreaterThan(0.75)
    const methods = report.methods as { method: string; psnr: number }[]
    expect(methods.map((m) => m.method)).toEqual(['occlusion', 'naive'])
    expect(methods[0]!.psnr).toBe(report.psnr)
    expect(methods[1]!.psnr).toBeGreaterThan(14)
    for (const method of ['occlusion', 'naive'])
      expect((await stat(join(out, `templeSR0004-${method}-rendering.png`))).size).toBeGreaterThan(10_000)
    expect(report.coloredVertices).toBeGreaterThan(1000)
    expect(report.seconds).toBeGreaterThan(0)
    // --holdout by index names the same view.
    const byIndex = JSON.parse(
      (
        await crowdmesh([
          'eval',
          '--dataset',
          templeDir,
          '--grid',
          '64',
          '--holdout',
          '3',
          '--out',
          out,
          '--json',
        ])
      ).stdout,
    )
    expect(byIndex.holdout).toBe('templeSR0004')
    expect(byIndex.psnr).toBe(report.psnr)
    const ply = decodePly(await readFile(join(out, 'outcome.ply')))
    expect(ply.rgb.length / 3).toBe(report.modelVertices)
    expect(report.modelVertices).toBeGreaterThan(report.coloredVertices)
    // Points lie in the data set's box.
    for (let i = 0; i < ply.xyz.length; i += 3) {
      expect(ply.xyz[i]).toBeGreaterThan(-0.074)
      expect(ply.xyz[i + 1]).toBeLessThan(0.182)
    }
    expect((await stat(join(out, 'templeSR0004-rendering.png'))).size).toBeGreaterThan(10_000)
  })

  it('start --json runs an event with two local participants: ready (with the join link), participants, progress, the frame outcome', async () => {
    const out = await mkdtemp(join(tmpdir(), 'crowdmesh-start-'))
    const run = await crowdmesh(['start', '--dataset', templeDir, '--grid', '48', '--out', out, '--json'])
    expect(run.code).toBe(0)
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(events[0]).toMatchObject({ type: 'ready', dataset: 'templeSR', cameras: 16, grid: 48 })
    expect(events[0].joinLink).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/join\/[\w-]+\/[\w.-]+$/)
    // The operator's console at the event's own address, with the operator link's token.
    expect(events[0].consoleLink).toMatch(
      new RegExp(`^${events[0].signaling}/console/${events[0].event}/[\\w.-]+$`),
    )
    expect(events[0].webApp).toBe(true)
    expect(events.filter((e) => e.type === 'participant' && e.joined).length).toBe(2)
    expect(events.some((e) => e.type === 'progress')).toBe(true)
    const outcome = events.find((e) => e.type === 'frameOutcome')
    expect(outcome).toMatchObject({ type: 'frameOutcome', frameIndex: 0, totalVertices: 48 ** 3 })
    expect(outcome.colouredVertices).toBeGreaterThan(500)
    // The PLY holds the model: the coloured surface and the interior it colours.
    expect(outcome.modelVertices).toBeGreaterThan(outcome.colouredVertices)
    expect(decodePly(await readFile(outcome.ply)).rgb.length / 3).toBe(outcome.modelVertices)
    expect((await stat(outcome.rendering)).size).toBeGreaterThan(10_000)
  })

  it("start --filter-images runs a batch image-filter job beside the 3D job; each filtered image equals one machine's", async () => {
    const out = await mkdtemp(join(tmpdir(), 'crowdmesh-filter-'))
    const photos = join(out, 'photos')
    await mkdir(photos)
    const names = (await readdir(templeDir)).filter((n) => n.endsWith('.png')).slice(0, 2)
    for (const name of names) await copyFile(join(templeDir, name), join(photos, name))
    const run = await crowdmesh([
      'start',
      '--dataset',
      'synthetic',
      '--grid',
      '16',
      '--no-recordings',
      '--filter-images',
      photos,
      '--filter',
      'box:2',
      '--out',
      out,
      '--json',
    ])
    expect(run.code).toBe(0)
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(events.find((e) => e.type === 'frameOutcome')).toMatchObject({ totalVertices: 16 ** 3 })
    const filtered = events.filter((e) => e.type === 'imageOutcome')
    expect(filtered.map((e) => basename(e.source as string))).toEqual(names)
    for (const e of filtered) {
      const source = decodePng(await readFile(e.source as string))
      const expected = filterRect(
        source,
        { type: 'box', radius: 2 },
        { x: 0, y: 0, w: source.width, h: source.height },
      )
      const got = decodePng(await readFile(e.filtered as string))
      expect([got.width, got.height]).toEqual([source.width, source.height])
      expect(Buffer.compare(got.rgba, expected)).toBe(0)
    }
    const bad = await crowdmesh(['start', '--filter-images', photos, '--filter', 'box:99', '--json'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--filter box:99/)
  })

  it('start --match-ugc --match-refs runs a video match run beside the 3D job and writes its matches', async () => {
    const out = await mkdtemp(join(tmpdir(), 'crowdmesh-start-match-'))
    const videos = join(out, 'videos')
    await mkdir(videos)
    const tmk = join(repoRoot, '..', 'shared', 'data', 'video-matching', 'tmk')
    for (const name of ['chair-19-sd-bar.mp4', 'chair-orig-22-sd-bar.mp4', 'doorknob-hd-no-bar.mp4'])
      await copyFile(join(tmk, name), join(videos, name))
    const run = await crowdmesh([
      ...['start', '--dataset', 'synthetic', '--grid', '16', '--no-recordings'],
      ...['--match-ugc', videos, '--match-refs', videos, '--out', out, '--json'],
    ])
    expect(run.code, run.stderr).toBe(0)
    const events = run.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { type: string; [key: string]: unknown })
    expect(events.find((e) => e.type === 'frameOutcome')).toMatchObject({ totalVertices: 16 ** 3 })
    const matched = events.find((e) => e.type === 'matchOutcome') as
      { matches: { ugcId: string; refId: string }[]; failed: unknown[]; file: string } | undefined
    expect(matched?.failed).toEqual([])
    expect(matched?.matches.map((m) => `${m.ugcId} → ${m.refId}`).sort()).toEqual([
      'chair-19-sd-bar.mp4 → chair-orig-22-sd-bar.mp4',
      'chair-orig-22-sd-bar.mp4 → chair-19-sd-bar.mp4',
    ])
    expect(JSON.parse(await readFile(matched!.file, 'utf8'))).toMatchObject({ matches: matched!.matches })
    const half = await crowdmesh(['start', '--match-ugc', videos, '--json'])
    expect(half.code).toBe(2)
    expect(half.stderr).toMatch(/--match-ugc DIR and --match-refs DIR go together/)
  }, 180_000)

  it('runs on the generated synthetic scene: start, and eval scored against its ground truth', async () => {
    const out = await mkdtemp(join(tmpdir(), 'crowdmesh-synthetic-'))
    const start = await crowdmesh(['start', '--dataset', 'synthetic', '--grid', '32', '--out', out, '--json'])
    expect(start.code).toBe(0)
    const events = start.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    expect(events.find((e) => e.type === 'frameOutcome')).toMatchObject({ totalVertices: 32 ** 3 })
    const evaluated = await crowdmesh([
      'eval',
      '--dataset',
      'synthetic',
      '--grid',
      '32',
      '--holdout',
      '1',
      '--out',
      out,
      '--json',
    ])
    expect(evaluated.code).toBe(0)
    const report = JSON.parse(evaluated.stdout)
    expect(report).toMatchObject({ dataset: 'synthetic', holdout: 'synth0002', grid: 32 })
    expect(report.groundTruth.colourTolerance).toBe(16)
    expect(report.groundTruth.surfaceAccuracy).toBeGreaterThan(0.9)
    expect(report.groundTruth.freeSpaceColoured).toBeLessThan(0.02)
  })

  it('fingerprint writes one .cmfp per video and names a broken one with its reason; match --json finds the chair copies over the mesh with a Node and a browser participant', async () => {
    const videos = join(repoRoot, '..', 'shared', 'data', 'video-matching', 'tmk')
    const scratch = await mkdtemp(join(tmpdir(), 'crowdmesh-cli-match-'))
    await copyFile(join(videos, 'doorknob-hd-no-bar.mp4'), join(scratch, 'doorknob.mp4'))
    await writeFile(join(scratch, 'broken.mp4'), new Uint8Array(100))
    const printed = await crowdmesh(['fingerprint', scratch, '--out', join(scratch, 'out'), '--json'])
    // One video failed: exit code 1, and the other fingerprinted all the same.
    expect(printed.code).toBe(1)
    const report = JSON.parse(printed.stdout) as {
      videos: { id: string; fingerprints?: number; error?: string }[]
    }
    expect(report.videos.find((v) => v.id === 'broken.mp4')?.error).toMatch(/not a video ffmpeg can read/)
    expect(report.videos.find((v) => v.id === 'doorknob.mp4')?.fingerprints).toBe(16)
    expect((await stat(join(scratch, 'out', 'doorknob.mp4.cmfp'))).size).toBe(20 + 16 * 108)

    const out = join(scratch, 'matches.json')
    const run = await crowdmesh([
      'match',
      '--ugc',
      videos,
      '--refs',
      videos,
      '--out',
      out,
      '--json',
      '--work',
      join(scratch, 'work'),
      // One Node participant and one headless Chromium page: both decoders in one run.
      '--participants',
      '1',
      '--browsers',
      '1',
    ])
    expect(run.code, run.stderr).toBe(0)
    const result = JSON.parse(run.stdout) as {
      matches: { ugcId: string; refId: string }[]
      failed: unknown[]
    }
    expect(result.failed).toEqual([])
    // The seven chair videos match each other both ways; the doorknob matches nothing.
    expect(result.matches).toHaveLength(42)
    expect(result.matches.every((m) => m.ugcId.startsWith('chair') && m.refId.startsWith('chair'))).toBe(true)
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(result)
    const nobody = await crowdmesh(['match', '--ugc', videos, '--refs', videos, '--participants', '0'])
    expect(nobody.code).toBe(2)
    expect(nobody.stderr).toMatch(/needs --participants or --browsers/)
  }, 240_000)

  it('matches looks up a results store by user video, reference and owner', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-matches-'))
    const path = join(dir, 'results.db')
    const store = new ResultsStore(path)
    const match = { ugcStart: 0, ugcEnd: 10, refStart: 2, refEnd: 12, score: 0.95 }
    store.writeBatch([
      {
        task: 't1',
        run: 'r',
        matches: [
          { ugcId: 'u1', refId: 'ref-a', ...match },
          { ugcId: 'u2', refId: 'ref-a', ...match },
        ],
        refOwners: { 'ref-a': 'label' },
      },
    ])
    store.close()
    const byRef = await crowdmesh(['matches', '--ref', 'ref-a', '--store', path, '--json'])
    expect(byRef.code, byRef.stderr).toBe(0)
    expect(
      (JSON.parse(byRef.stdout) as { matches: { ugcId: string }[] }).matches.map((m) => m.ugcId),
    ).toEqual(['u1', 'u2'])
    const byOwner = await crowdmesh(['matches', '--owner', 'label', '--store', path])
    expect(byOwner.stdout).toMatch(/2 matches/)
    const none = await crowdmesh(['matches', '--ugc', 'u9', '--store', path])
    expect(none.stdout).toMatch(/0 matches/)
    expect((await crowdmesh(['matches', '--store', path])).code).toBe(2)
    const missing = await crowdmesh(['matches', '--ugc', 'u1', '--store', join(dir, 'nope.db')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no results store/)
  })

  it('simulate --real 3 runs three Node participant processes over WebRTC and reports the mesh figures', async () => {
    const run = await crowdmesh(['simulate', '--real', '3', '--grid', '16', '--frames', '2', '--json'])
    expect(run.code).toBe(0)
    const report = JSON.parse(run.stdout)
    expect(report).toMatchObject({ participants: 3, grid: 16, frames: 2 })
    expect(report.joinToFirstLeaseMs.p50).toBeGreaterThan(0)
    expect(report.frameLatencyMs.p50).toBeGreaterThan(0)
    expect(Number.isFinite(report.outcomeGossipMs.p50)).toBe(true)
  })

  it('simulate --json is deterministic for a seed and reports the figures scripts read', async () => {
    const args = [
      'simulate',
      '--peers',
      '40',
      '--duration',
      '20s',
      '--churn',
      '20%',
      '--fail-rate',
      '5%',
      '--seed',
      '4',
      '--json',
    ]
    const first = await crowdmesh(args)
    expect(first.code).toBe(0)
    const report = JSON.parse(first.stdout)
    for (const field of [
      'framesCompleted',
      'framesDropped',
      'lostThreads',
      'doubleCountedThreads',
      'duplicateWorkShare',
      'wallSeconds',
    ]) {
      expect(report).toHaveProperty(field)
    }
    expect(report.latencyMs).toMatchObject({
      p50: expect.any(Number),
      p95: expect.any(Number),
      p99: expect.any(Number),
    })
    expect(report.participants.length).toBeGreaterThanOrEqual(40)
    expect(report.lostThreads).toBe(0)
    expect(report.doubleCountedThreads).toBe(0)
    const again = JSON.parse((await crowdmesh(args)).stdout)
    expect({ ...again, wallSeconds: 0, participantSecondsPerWallSecond: 0 }).toEqual({
      ...report,
      wallSeconds: 0,
      participantSecondsPerWallSecond: 0,
    })
    const table = await crowdmesh(['simulate', '--peers', '20', '--duration', '10s'])
    expect(table.stdout).toMatch(/ms\/thread/)
    expect(table.stdout).toMatch(/latency {7}p50/)
    const bad = await crowdmesh(['simulate', '--churn', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--churn must be a share/)
  })

  it('serve runs the server peer and record uploads a file to it, publishes it and prints its share link', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'crowdmesh-serve-'))
    const media = await recorderLikeWebm(dir, 4)
    const source = join(dir, 'clip.webm')
    await writeFile(source, media)
    const serve = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'crowdmesh.js'), 'serve', '--root', join(dir, 'store'), '--port', '0', '--json'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    )
    try {
      const ready = JSON.parse(
        await new Promise<string>((resolve) =>
          createInterface({ input: serve.stdout }).once('line', resolve),
        ),
      )
      expect(ready).toMatchObject({ type: 'ready', root: join(dir, 'store') })
      const record = await crowdmesh([
        'record',
        source,
        '--server',
        ready.url,
        '--recorder-key',
        ready.recorderKey,
        '--seconds',
        '4',
        '--pace',
        '8',
        '--json',
      ])
      expect(record.code).toBe(0)
      const report = JSON.parse(record.stdout)
      expect(report.bytes).toBe(media.length)
      expect(report.publishToPlayableMs).toBeGreaterThan(0)
      expect((await fetch(report.shareUrl)).status).toBe(200)
      expect(Math.abs((await probe(report.mp4)).duration - 4)).toBeLessThan(0.5)
      // Without --seconds, --pace is refused with a clear message and exit code 2.
      const refused = await crowdmesh(['record', source, '--server', ready.url, '--pace', '2'])
      expect(refused.code).toBe(2)
      expect(refused.stderr).toMatch(/--pace needs --seconds/)
    } finally {
      serve.kill('SIGTERM')
    }
  })
})
