import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { boxLuma, bt601, lumaOfRgba } from '../../peer/jobs/match/luma-box.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * The browser's CPU transform against ffmpeg's `scale=128:128:flags=area,format=gray` (Node's): the
 * same frames at full size, averaged down by `boxLuma`, must be ffmpeg's within a level or two, for
 * SD, HD and portrait videos. Also: a limited-range plane is stretched as ffmpeg stretches it.
 */

const dir = join(repoRoot, '..', 'shared', 'data', 'video-matching')

function frames(path: string, filter: string, count: number): Buffer {
  return execFileSync(
    'ffmpeg',
    [
      '-v',
      'error',
      '-i',
      path,
      '-vf',
      `fps=16,${filter}`,
      '-frames:v',
      String(count),
      '-f',
      'rawvideo',
      'pipe:1',
    ],
    { maxBuffer: 1 << 30 },
  )
}

describe('boxLuma', () => {
  for (const [file, width, height] of [
    ['tmk/chair-19-sd-bar.mp4', 480, 720],
    ['tmk/doorknob-hd-no-bar.mp4', 1280, 720],
    ['distractors/asl-again.mkv', 640, 480],
  ] as const)
    it(`averages ${file} (${width}×${height}) down to ffmpeg's 128² area scaling within 2 levels`, () => {
      const path = join(dir, file)
      const full = frames(path, 'format=gray', 12)
      const small = frames(path, 'scale=128:128:flags=area,format=gray', 12)
      let worst = 0
      let total = 0
      for (let f = 0; f < 12; f++) {
        const mine = boxLuma({ data: full.subarray(f * width * height), width, height, stride: width })
        for (let i = 0; i < mine.length; i++) {
          const d = Math.abs(mine[i]! - small[f * 16384 + i]!)
          worst = Math.max(worst, d)
          total += d
        }
      }
      expect(worst).toBeLessThanOrEqual(2)
      expect(total / (12 * 16384)).toBeLessThan(0.3)
    })

  it('stretches a limited-range plane to full range, and reads luminance back from RGB', () => {
    const plane = { data: Uint8Array.from([16, 235, 126, 16]), width: 2, height: 2, stride: 2 }
    expect([...boxLuma(plane, 2, true)]).toEqual([0, 255, 128, 0])
    expect([...boxLuma(plane, 1, false)]).toEqual([98])
    const rgba = Uint8Array.from([255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255, 0, 255, 0, 255])
    expect([...lumaOfRgba(rgba, 4, 1, bt601).data]).toEqual([255, 0, 76, 150])
  })
})
