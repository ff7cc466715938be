import { createReadStream } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fingerprintFile, probeVideo } from '../../peer/jobs/match/ffmpeg-frames.ts'
import { nodeVideos } from '../../peer/jobs/node-env.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * A Node participant's (and the coordinator checker's) video source: a video behind http is
 * downloaded once and fingerprinted from disk. Two downloads begun in the same tick once got the same
 * file name, so one video overwrote the other and an honest participant was refuted by the checker.
 * A range of segments decodes only its span, and must give what the whole video gives.
 */

const dataset = join(repoRoot, '..', 'shared', 'data', 'video-matching')
const files = ['tmk/doorknob-hd-no-bar.mp4', 'distractors/asl-book.mkv', 'distractors/asl-again.mkv']
let base: string
const server = createServer((request, response) => {
  const name = decodeURIComponent((request.url ?? '/').slice(1))
  if (!files.includes(name)) return void response.writeHead(404).end()
  response.writeHead(200, { 'content-type': 'video/mp4' })
  createReadStream(join(dataset, name)).pipe(response)
})

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('videos fetched over http', () => {
  it('fingerprints each of several videos asked for in one tick as its own file', async () => {
    const videos = nodeVideos()
    const ranges = await Promise.all(
      files.map(async (name) => ({ name, duration: (await probeVideo(join(dataset, name))).duration })),
    )
    const range = (duration: number) => ({ first: 0, count: 1, phases: [0], duration })
    const fetched = await Promise.all(
      ranges.map(({ name, duration }) =>
        videos.fingerprint(`${base}/${encodeURIComponent(name)}`, range(duration)),
      ),
    )
    for (const [i, { name, duration }] of ranges.entries()) {
      const local = await fingerprintFile(join(dataset, name), range(duration))
      expect(fetched[i]!.fingerprints, name).toEqual(local.fingerprints)
    }
  })

  it("a task's range gives the whole video's fingerprints bit for bit, wherever it starts", async () => {
    // A 10 fps video: after a seek, its first frame may fall up to 0.1 s past the seek point. The fps
    // filter once started its instants at that frame, a frame or two late, so a one-segment check
    // of an honest task differed by up to 125 bits and the coordinator accused an honest participant.
    const path = join(dataset, 'distractors', 'one-by-one-person-detection.mp4')
    const { duration } = await probeVideo(path)
    const whole = await fingerprintFile(path, { first: 0, count: 30, duration })
    const key = (f: { segment: number; phase: number }) => `${f.segment}/${f.phase}`
    const expected = new Map(whole.fingerprints.map((f) => [key(f), f]))
    for (const first of [3, 19, 20, 22, 24]) {
      const one = await fingerprintFile(path, { first, count: 1, duration })
      expect(one.fingerprints.length).toBeGreaterThan(0)
      for (const f of one.fingerprints) expect(f, key(f)).toEqual(expected.get(key(f)))
    }
  })
})
