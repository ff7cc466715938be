import { mkdir, readdir, stat, writeFile } from 'node:fs/promises'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fingerprintFile } from '../../peer/jobs/match/ffmpeg-frames.ts'
import { encodeFingerprints } from '../../peer/jobs/match/fingerprint-file.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { CrowdmeshError } from '../../peer/protocol/errors.ts'
import { parseCommandWithPositionals, stringOption } from '../options.ts'
import { processEnding } from '../process-ending.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh fingerprint FILE|DIR [options]

Fingerprints videos on this machine (ffmpeg decodes them): one fingerprint of ${fingerprintFormat.bytes} bytes for every
quarter second (${fingerprintFormat.phases} phases of each ${fingerprintFormat.segmentSeconds} s segment), format version ${fingerprintFormat.version} (README, "Video
matching"). Any video ffmpeg decodes (MP4, WebM, MKV, MOV, animated GIF), any size and frame rate.
A video that cannot be fingerprinted (not a video, no video stream, empty, cut short, longer than an
hour) is reported with its reason; the others go on.

Options:
  --out DIR    where the .cmfp files go, one per video, named after its path relative to DIR
               (or to the file's folder)                            [default: out/fingerprints]
  --json       print one JSON object: { videos: [{ id, duration, fingerprints, still, file,
               seconds } or { id, error }], seconds }
  -h, --help   show this help
`

const videoFile = /\.(mp4|webm|mkv|mov|gif|avi|m4v)$/i

/** `crowdmesh fingerprint`. */
export async function fingerprintCommand(args: string[]): Promise<void> {
  const parsed = parseCommandWithPositionals(
    args,
    { out: { type: 'string' }, json: { type: 'boolean' } },
    help,
    1,
  )
  if (parsed === undefined) return
  const { values, positionals } = parsed
  const target = resolve(positionals[0]!)
  const json = values.json === true
  const out = resolve(stringOption(values, 'out') ?? join('out', 'fingerprints'))
  const info = await stat(target).catch(() => undefined)
  if (info === undefined) throw new CrowdmeshError(`${target}: no such file or folder`)
  const root = info.isDirectory() ? target : dirname(target)
  const files = info.isDirectory()
    ? (await readdir(target, { recursive: true }))
        .filter((p) => videoFile.test(p))
        .sort()
        .map((p) => join(target, p))
    : [target]
  if (files.length === 0) throw new CrowdmeshError(`${target}: no video files (${videoFile.source})`)
  const ending = processEnding()
  const started = performance.now()
  const rows: Record<string, unknown>[] = []
  const bar = progressBar('fingerprinting', { quiet: json && process.stderr.isTTY !== true })
  try {
    for (const [i, file] of files.entries()) {
      const id = relative(root, file)
      const t0 = performance.now()
      try {
        const result = await fingerprintFile(file, { signal: ending.signal })
        const path = join(out, `${id}.cmfp`)
        await mkdir(dirname(path), { recursive: true })
        await writeFile(path, encodeFingerprints(result))
        rows.push({
          id,
          duration: Math.round(result.duration * 1000) / 1000,
          fingerprints: result.fingerprints.length,
          still: result.fingerprints.filter((f) => f.still).length,
          file: path,
          seconds: Math.round(performance.now() - t0) / 1000,
        })
      } catch (error) {
        if (ending.signal.aborted) throw error
        if (!(error instanceof CrowdmeshError)) throw error
        rows.push({ id, error: error.message })
      }
      bar.update(i + 1, files.length)
    }
  } finally {
    ending.dispose()
  }
  const seconds = Math.round(performance.now() - started) / 1000
  bar.done(`${files.length} video${files.length === 1 ? '' : 's'}`)
  if (json) {
    process.stdout.write(`${JSON.stringify({ videos: rows, seconds, out })}\n`)
  } else {
    for (const row of rows)
      process.stdout.write(
        row.error !== undefined
          ? `  ${String(row.id)}: ${row.error as string}\n`
          : `  ${String(row.id)}: ${String(row.duration)} s, ${String(row.fingerprints)} fingerprints (${String(row.still)} still) → ${basename(String(row.file))}\n`,
      )
    process.stdout.write(
      `fingerprinted ${rows.filter((r) => r.error === undefined).length} of ${rows.length} in ${seconds} s; files in ${out}\n`,
    )
  }
  if (rows.some((r) => r.error !== undefined)) process.exitCode = 1
  ending.settle()
}
