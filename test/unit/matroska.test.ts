import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VideoInputError } from '../../peer/jobs/match/defaults.ts'
import { demuxMatroska, isMatroska } from '../../peer/jobs/match/matroska.ts'
import { repoRoot } from '../support/fixtures.ts'

/*
 * The page's Matroska/WebM demuxer against ffprobe: every frame of the first video track, in file
 * order, with ffprobe's presentation time, key flag and size; for a file with known element sizes
 * (ffmpeg's MKV) and a live one with unknown sizes (a WebM written to a pipe, as MediaRecorder
 * writes). Hostile bytes give a `VideoInputError` or nothing, never another error.
 */

const asl = join(repoRoot, '..', 'shared', 'data', 'video-matching', 'distractors', 'asl-again.mkv')
let scratch: string

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'crowdmesh-matroska-'))
})
afterAll(() => rm(scratch, { recursive: true, force: true }))

function packets(path: string): { time: number; key: boolean; size: number }[] {
  const csv = execFileSync('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0'],
    ...['-show_entries', 'packet=pts_time,size,flags', '-of', 'csv=p=0', path],
  ]).toString()
  return csv
    .trim()
    .split('\n')
    .map((line) => {
      const [time, size, flags] = line.split(',')
      return { time: Number(time), key: flags!.startsWith('K'), size: Number(size) }
    })
}

function expectSameAsFfprobe(path: string, bytes: Uint8Array, codec: RegExp): void {
  const track = demuxMatroska(bytes)
  expect(track).toBeDefined()
  expect(track!.codec).toMatch(codec)
  const expected = packets(path)
  expect(track!.samples.length).toBe(expected.length)
  track!.samples.forEach((sample, i) => {
    expect(sample.time).toBeCloseTo(expected[i]!.time, 5)
    expect(sample.key).toBe(expected[i]!.key)
    expect(sample.data.length).toBe(expected[i]!.size)
  })
}

describe('the Matroska demuxer', () => {
  it('reads an H.264 MKV frame for frame as ffprobe does, with its avcC description', async () => {
    const bytes = new Uint8Array(await readFile(asl))
    expect(isMatroska(bytes)).toBe(true)
    expectSameAsFfprobe(asl, bytes, /^avc1\.[0-9a-f]{6}$/)
    expect(demuxMatroska(bytes)!.description?.[0]).toBe(1)
    expect(demuxMatroska(bytes)!).toMatchObject({ codedWidth: 640, codedHeight: 480 })
  })

  it('reads a live WebM (VP8, unknown-size segment and clusters, with an audio track first) as ffprobe does', () => {
    const path = join(scratch, 'live.webm')
    // Written to a pipe: ffmpeg cannot seek back to write sizes, as MediaRecorder cannot.
    const webm = execFileSync(
      'ffmpeg',
      [
        ...[
          '-v',
          'error',
          '-f',
          'lavfi',
          '-i',
          'sine=d=3',
          '-f',
          'lavfi',
          '-i',
          'testsrc=d=3:s=160x120:r=25',
        ],
        ...[
          '-map',
          '0:a',
          '-map',
          '1:v',
          '-c:a',
          'libopus',
          '-c:v',
          'libvpx',
          '-g',
          '10',
          '-f',
          'webm',
          'pipe:1',
        ],
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    )
    execFileSync('sh', ['-c', `cat > ${path}`], { input: webm })
    expectSameAsFfprobe(path, new Uint8Array(webm), /^vp8$/)
  })

  it('gives a VideoInputError or nothing for hostile bytes, and refuses a file with no video', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), (tail, ebml) => {
        const bytes = ebml ? Uint8Array.from([0x1a, 0x45, 0xdf, 0xa3, ...tail]) : tail
        try {
          demuxMatroska(bytes)
        } catch (error) {
          expect(error).toBeInstanceOf(VideoInputError)
        }
      }),
      { numRuns: 2000 },
    )
    // A real file cut anywhere, and nested a thousand segments deep.
    const real = new Uint8Array(execFileSync('cat', [asl]))
    for (let n = 0; n < real.length; n += 331) {
      try {
        demuxMatroska(real.subarray(0, n))
      } catch (error) {
        expect(error).toBeInstanceOf(VideoInputError)
      }
    }
    const deep = [
      0x1a,
      0x45,
      0xdf,
      0xa3,
      0x80,
      ...Array.from({ length: 1000 }, () => [
        0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      ]).flat(),
    ]
    expect(() => demuxMatroska(Uint8Array.from(deep))).toThrow(VideoInputError)
    const audio = execFileSync('ffmpeg', [
      '-v',
      'error',
      '-f',
      'lavfi',
      '-i',
      'sine=d=1',
      '-c:a',
      'libopus',
      '-f',
      'webm',
      'pipe:1',
    ])
    expect(() => demuxMatroska(new Uint8Array(audio))).toThrow(/no video stream/)
  })
})
