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
})
