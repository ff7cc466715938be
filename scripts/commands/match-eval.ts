import { createHash } from 'node:crypto'
import { mkdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, join, resolve } from 'node:path'
import {
  type EditName,
  editNames,
  generateEditedDataset,
  type GeneratedDataset,
} from '../../peer/jobs/match/edit-generator.ts'
import {
  chooseThreshold,
  type EditRecall,
  scoreThreshold,
  sweepThresholds,
  type ThresholdPoint,
} from '../../peer/jobs/match/edit-score.ts'
import { fingerprintFile, probeVideo, VideoInputError } from '../../peer/jobs/match/ffmpeg-frames.ts'
import { decodeFingerprints, encodeFingerprints } from '../../peer/jobs/match/fingerprint-file.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'
import { loadMatchingDataset, type MatchingDataset } from '../../peer/jobs/match/ground-truth.ts'
import {
  defaultMatchRule,
  type Match,
  matchVideo,
  ReferenceSet,
  type VideoFingerprints,
} from '../../peer/jobs/match/matcher.ts'
import { AbortError, InvalidMessageError } from '../../peer/protocol/errors.ts'
import { parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'
import { type ProcessEnding, processEnding } from '../process-ending.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh match-eval --dataset DIR [options]

Scores video matching on a data set with ground truth (a ground-truth.json as in
../shared/data/video-matching): fingerprints every video (cached), matches each video against all
the others, and compares the matches with the ground truth. The Hamming threshold is swept over
${sweepThresholds[0]}..${sweepThresholds.at(-1)} bits; the largest one without a false positive is reported with the default's.

Options:
  --dataset DIR        the data set: ground-truth.json and its videos                     [required]
  --edits              first make edited copies of the data set's originals with ffmpeg (into
                       OUT/edits: each edit at two strengths, and clips at random offsets), and
                       score those: recall per edit and strength at the largest threshold that
                       keeps precision 1.0, and the untouched set at that threshold
  --originals LIST     with --edits: the videos to edit, comma-separated, relative to DIR
                       (default: each group's original and the unrelated videos of 20 s or more)
  --only LIST          with --edits: only these edits, comma-separated, of
                       ${editNames.join(', ')}
  --seed N             with --edits: the seed of the clips and captions          [default: 14]
  --out DIR            where fingerprints (and edits) go      [default: out/match-eval/<name of DIR>]
  --fresh              fingerprint again even what the cache holds
  --json               print one JSON object
  -h, --help           show this help
`

/** `crowdmesh match-eval`. */
export async function matchEvalCommand(args: string[]): Promise<void> {
  const ending = processEnding()
  try {
    await runMatchEval(args, ending)
  } catch (error) {
    if (!ending.signal.aborted) throw error
    if (error !== ending.signal.reason && !(error instanceof AbortError))
      process.stderr.write(`crowdmesh match-eval: ${String(error)}\n`)
  } finally {
    ending.dispose()
  }
  ending.settle()
}

async function runMatchEval(args: string[], ending: ProcessEnding): Promise<void> {
  const values = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      edits: { type: 'boolean' },
      originals: { type: 'string' },
      only: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      fresh: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const datasetDir = stringOption(values, 'dataset')
  if (datasetDir === undefined) throw new UsageError('--dataset DIR is required')
  const withEdits = values.edits === true
  const originalsText = stringOption(values, 'originals')
  const onlyText = stringOption(values, 'only')
  const seedText = stringOption(values, 'seed')
  if (!withEdits && (originalsText ?? onlyText ?? seedText) !== undefined)
    throw new UsageError('--originals, --only and --seed go with --edits')
  const only = onlyText?.split(',').map((e) => e.trim())
  for (const edit of only ?? [])
    if (!(editNames as readonly string[]).includes(edit))
      throw new UsageError(`--only: no edit "${edit}" (there are ${editNames.join(', ')})`)
  const seed = seedText === undefined ? 14 : positiveInt(seedText, 'seed', 14)
  const json = values.json === true
  const quiet = json && process.stderr.isTTY !== true
  const out = resolve(stringOption(values, 'out') ?? join('out', 'match-eval', basename(resolve(datasetDir))))
  const { signal } = ending
  const started = performance.now()

  const source = await loadMatchingDataset(resolve(datasetDir))
  let edited: GeneratedDataset | undefined
  let generateSeconds = 0
  if (withEdits) {
    const bar = progressBar('making edited copies', { quiet })
    const t0 = performance.now()
    edited = await generateEditedDataset({
      source: source.root,
      out: join(out, 'edits'),
      ...(originalsText !== undefined && { originals: originalsText.split(',').map((v) => v.trim()) }),
      ...(only !== undefined && { edits: only as EditName[] }),
      seed,
      signal,
      onProgress: (done, total) => bar.update(done, total),
    })
    bar.done(`${edited.copies.length} copies (${edited.made} made, ${edited.kept} kept)`)
    generateSeconds = (performance.now() - t0) / 1000
  }
  // The edited set links the source's videos, so fingerprinting it covers both sets.
  const scored = edited === undefined ? source : await loadMatchingDataset(edited.root)
  const bar = progressBar('fingerprinting', { quiet })
  const fingerprints = await fingerprintDataset(scored, {
    cacheDir: join(out, 'fingerprints'),
    fresh: values.fresh === true,
    signal,
    onProgress: (done, total) => bar.update(done, total),
  })
  bar.done(
    `${scored.videos.length} videos (${fingerprints.computed} fingerprinted, ${fingerprints.cached} cached)`,
  )

  const t1 = performance.now()
  const sweep = sweepDataset(scored, fingerprints.videos, sweepThresholds, signal)
  const untouchedSweep =
    edited === undefined
      ? sweep
      : sweepDataset(
          source,
          fingerprints.videos.filter((v) => source.videos.includes(v.id)),
          sweepThresholds,
          signal,
        )
  const matchSeconds = (performance.now() - t1) / 1000
  const report = {
    dataset: source.root,
    out,
    seconds: round((performance.now() - started) / 1000, 1),
    generateSeconds: round(generateSeconds, 1),
    fingerprintSeconds: round(fingerprints.seconds, 1),
    matchSeconds: round(matchSeconds, 1),
    videos: scored.videos.length,
    fingerprinted: fingerprints.computed,
    cached: fingerprints.cached,
    failed: fingerprints.failed,
    untouched: setReport(untouchedSweep),
    ...(edited !== undefined && {
      edits: { root: edited.root, copies: edited.copies.length, seed, ...setReport(sweep) },
    }),
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(report)}\n`)
    return
  }
  const lines: string[] = []
  for (const { video, error } of fingerprints.failed) lines.push(`could not fingerprint ${video}: ${error}`)
  lines.push(`untouched set ${source.root} (${source.videos.length} videos):`)
  lines.push(...describeSet(report.untouched, false))
  if (report.edits !== undefined) {
    lines.push(
      '',
      `edited set ${report.edits.root} (${scored.videos.length} videos, ${report.edits.copies} made copies):`,
    )
    lines.push(...describeSet(report.edits, true))
  }
  lines.push(
    '',
    `${report.seconds} s in all: ${report.generateSeconds} s making copies, ${report.fingerprintSeconds} s fingerprinting, ` +
      `${report.matchSeconds} s matching (${sweepThresholds.length} thresholds)`,
  )
  process.stdout.write(`${lines.join('\n')}\n`)
}

/** A set's figures: the sweep in short, and the full scores at the chosen threshold and at the default. */
function setReport(sweep: readonly ThresholdPoint[]) {
  const chosen = chooseThreshold(sweep)
  const defaultPoint = sweep.find((p) => p.maxHammingBits === defaultMatchRule.maxHammingBits)
  const full = (point: ThresholdPoint) => ({
    maxHammingBits: point.maxHammingBits,
    precision: round(point.pairs.precision, 4),
    pairs: point.pairs.pairs,
    pairsFound: point.pairs.pairsFound,
    pairRecall: round(point.pairs.recall, 4),
    missedPairs: point.pairs.missed,
    truePositives: point.pairs.truePositives,
    falsePositives: point.pairs.falsePositives.map(({ match, why }) => ({ ...match, why })),
    unrelatedMatches: point.unrelated,
    wrongOffsetMatches: point.wrongOffset,
    worstOffsetError: round(point.pairs.worstOffsetError, 3),
    copies: point.edits.copies,
    copiesFound: point.edits.found,
    copyRecall: round(point.edits.recall, 4),
    copyWorstOffsetError: round(point.edits.worstOffsetError, 3),
    missedCopies: point.edits.missed,
    byEdit: point.edits.byEdit.map((row) => ({
      ...row,
      recall: round(row.recall, 4),
      worstOffsetError: round(row.worstOffsetError, 3),
    })),
  })
  return {
    sweep: sweep.map((p) => ({
      maxHammingBits: p.maxHammingBits,
      precision: round(p.pairs.precision, 4),
      falsePositives: p.pairs.falsePositives.length,
      unrelatedMatches: p.unrelated,
      wrongOffsetMatches: p.wrongOffset,
      pairRecall: round(p.pairs.recall, 4),
      copyRecall: round(p.edits.recall, 4),
    })),
    chosen: chosen === undefined ? null : full(chosen),
    /** The largest threshold of the sweep without a match between unrelated videos (wrong offsets allowed). */
    largestWithoutUnrelated: sweep.reduce<number | null>(
      (best, p) => (p.unrelated === 0 && p.maxHammingBits > (best ?? -1) ? p.maxHammingBits : best),
      null,
    ),
    atDefault: defaultPoint === undefined ? null : full(defaultPoint),
  }
}

type SetReport = ReturnType<typeof setReport>

/** The text report of one set. */
function describeSet(set: SetReport, table: boolean): string[] {
  const lines: string[] = []
  const summary = (label: string, p: NonNullable<SetReport['chosen']>, shown: number) => {
    lines.push(
      `  ${label}: precision ${p.precision.toFixed(3)} (${p.truePositives} right matches, ${p.falsePositives.length} wrong: ` +
        `${p.unrelatedMatches} of unrelated videos, ${p.wrongOffsetMatches} at a wrong offset), ` +
        `pairs ${p.pairsFound}/${p.pairs} (recall ${p.pairRecall.toFixed(3)}), copies with their original ${p.copiesFound}/${p.copies} ` +
        `(recall ${p.copyRecall.toFixed(3)}), worst offset error ${p.worstOffsetError.toFixed(2)} s`,
    )
    for (const fp of p.falsePositives.slice(0, shown))
      lines.push(
        `    false positive: ${fp.ugcId} [${fp.ugcStart}, ${fp.ugcEnd}) s ~ ${fp.refId} [${fp.refStart}, ${fp.refEnd}) s, ` +
          `score ${fp.score}: ${fp.why}`,
      )
    if (p.falsePositives.length > shown) lines.push(`    … and ${p.falsePositives.length - shown} more`)
    if (!table) for (const { a, b } of p.missedPairs) lines.push(`    missed pair: ${a} ~ ${b}`)
  }
  lines.push(
    '  sweep: bits, precision, wrong matches (of unrelated videos + at a wrong offset), copy recall, pair recall',
  )
  for (const p of set.sweep)
    lines.push(
      `    ${String(p.maxHammingBits).padStart(3)}  ${p.precision.toFixed(3)}  ${String(p.falsePositives).padStart(4)} ` +
        `(${p.unrelatedMatches} + ${p.wrongOffsetMatches})  ${p.copyRecall.toFixed(3)}  ${p.pairRecall.toFixed(3)}`,
    )
  lines.push(
    set.largestWithoutUnrelated === null
      ? '  every threshold matches some unrelated videos'
      : `  no match of unrelated videos up to ${set.largestWithoutUnrelated} bits`,
  )
  if (set.chosen === null) lines.push('  no threshold of the sweep keeps precision 1.0')
  else summary(`at ${set.chosen.maxHammingBits} bits (the largest with precision 1.0)`, set.chosen, 20)
  if (set.atDefault !== null && set.atDefault.maxHammingBits !== set.chosen?.maxHammingBits)
    summary(`at the default ${set.atDefault.maxHammingBits} bits`, set.atDefault, 5)
  if (table && set.chosen !== null) {
    lines.push(
      '',
      `  recall per edit at ${set.chosen.maxHammingBits} bits (found/copies, worst offset error):`,
    )
    lines.push(...editTable(set.chosen.byEdit).map((l) => `    ${l}`))
    for (const video of set.chosen.missedCopies) lines.push(`    missed: ${video}`)
  }
  return lines
}

/** Rows of edits, columns of strengths. */
function editTable(rows: readonly EditRecall[]): string[] {
  const strengths = [...new Set(rows.map((r) => r.strength ?? '(given)'))]
  const edits = [...new Set(rows.map((r) => r.edit))]
  const cell = (r: EditRecall | undefined) =>
    r === undefined
      ? ''
      : `${r.recall.toFixed(2)} (${r.found}/${r.copies}, ${r.worstOffsetError.toFixed(2)} s)`
  const width = Math.max(4, ...edits.map((e) => e.length))
  const cells = edits.map((edit) =>
    strengths.map((s) => cell(rows.find((r) => r.edit === edit && (r.strength ?? '(given)') === s))),
  )
  const cellWidth = Math.max(...strengths.map((s) => s.length), ...cells.flat().map((c) => c.length))
  return [
    `${'edit'.padEnd(width)}  ${strengths.map((s) => s.padEnd(cellWidth)).join('  ')}`,
    ...edits.map((edit, i) =>
      `${edit.padEnd(width)}  ${cells[i]!.map((c) => c.padEnd(cellWidth)).join('  ')}`.trimEnd(),
    ),
  ]
}

/** Options of `fingerprintDataset`. */
export interface FingerprintDatasetInit {
  /** Where `.cmfp` files are kept, keyed by each video's real path, size, mtime and the fingerprint format. */
  cacheDir: string
  /** Ignore what the cache holds (fingerprints are written anew). */
  fresh?: boolean
  /** Videos fingerprinted at once [2, or 1 on one core]: ffmpeg decodes one while this thread fingerprints another. */
  concurrency?: number
  signal?: AbortSignal
  /** Seconds of video done, of all to do. */
  onProgress?: (done: number, total: number) => void
}

/** A data set's fingerprints. */
export interface DatasetFingerprints {
  /** The videos fingerprinted, in the data set's order, ids their paths in it. */
  videos: VideoFingerprints[]
  /** Videos that could not be fingerprinted (left out of matching), and why. */
  failed: { video: string; error: string }[]
  computed: number
  cached: number
  /** Wall-clock seconds spent. */
  seconds: number
}

/**
 * Fingerprints every video of a data set, reading fingerprints cached by an earlier run and caching
 * what it computes. A video that cannot be fingerprinted (`VideoInputError`) is reported, not fatal.
 */
export async function fingerprintDataset(
  dataset: MatchingDataset,
  init: FingerprintDatasetInit,
): Promise<DatasetFingerprints> {
  const started = performance.now()
  await mkdir(init.cacheDir, { recursive: true })
  const results = new Map<string, VideoFingerprints>()
  const failed: DatasetFingerprints['failed'] = []
  const todo: { video: string; cacheFile: string; seconds: number }[] = []
  let cached = 0
  let computed = 0
  for (const video of dataset.videos) {
    const path = join(dataset.root, video)
    const cacheFile = join(init.cacheDir, `${await cacheKey(path)}.cmfp`)
    if (init.fresh !== true) {
      const hit = await readCached(cacheFile)
      if (hit !== undefined) {
        results.set(video, { id: video, ...hit })
        cached++
        continue
      }
    }
    try {
      // Probed first, so the bar measures seconds of video and a broken file fails early.
      todo.push({ video, cacheFile, seconds: Math.max(0.1, (await probeVideo(path, init.signal)).duration) })
    } catch (error) {
      if (!(error instanceof VideoInputError)) throw error
      failed.push({ video, error: error.message })
    }
  }
  const total = todo.reduce((s, t) => s + t.seconds, 0)
  let done = 0
  const progress = new Map<string, number>()
  const report = () => init.onProgress?.(done + [...progress.values()].reduce((a, b) => a + b, 0), total)
  let next = 0
  const worker = async () => {
    while (next < todo.length) {
      const { video, cacheFile, seconds } = todo[next++]!
      try {
        const file = await fingerprintFile(join(dataset.root, video), {
          ...(init.signal !== undefined && { signal: init.signal }),
          onFrames: (frames) => {
            progress.set(video, Math.min(seconds, frames / fingerprintFormat.sampleFps))
            report()
          },
        })
        results.set(video, { id: video, ...file })
        computed++
        const partial = `${cacheFile}.${process.pid}.partial`
        await writeFile(partial, encodeFingerprints(file))
        await rename(partial, cacheFile)
      } catch (error) {
        if (init.signal?.aborted === true) throw new AbortError()
        if (!(error instanceof VideoInputError)) throw error
        failed.push({ video, error: error.message })
      } finally {
        progress.delete(video)
        done += seconds
        report()
      }
    }
  }
  const concurrency = init.concurrency ?? Math.min(2, availableParallelism())
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker))
  return {
    videos: dataset.videos.flatMap((v) => results.get(v) ?? []),
    failed: failed.sort((a, b) => a.video.localeCompare(b.video)),
    computed,
    cached,
    seconds: (performance.now() - started) / 1000,
  }
}

/** The cache's name for a video: its real path (a linked video shares its source's), size, mtime, and the format. */
async function cacheKey(path: string): Promise<string> {
  const info = await stat(path)
  const key = JSON.stringify({
    path: await realpath(path),
    size: info.size,
    mtimeMs: info.mtimeMs,
    fingerprintFormat,
  })
  return createHash('sha256').update(key).digest('hex').slice(0, 32)
}

/** A cached fingerprint file, or undefined when there is none or it does not decode (it is then made again). */
async function readCached(
  file: string,
): Promise<{ duration: number; fingerprints: VideoFingerprints['fingerprints'] } | undefined> {
  const bytes = await readFile(file).catch(() => undefined)
  if (bytes === undefined) return undefined
  try {
    return decodeFingerprints(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (error) {
    if (error instanceof InvalidMessageError) return undefined
    throw error
  }
}

/** Every video as a query against all the others as references (itself skipped), with one threshold. */
export function matchAllAgainstAll(
  videos: readonly VideoFingerprints[],
  references: ReferenceSet,
  maxHammingBits: number,
): Match[] {
  const rule = { ...defaultMatchRule, maxHammingBits }
  return videos.flatMap((video) => matchVideo(video, references, rule, (refId) => refId === video.id).matches)
}

/** All-against-all matching at each threshold, scored. The index is built once: thresholds only change verification. */
export function sweepDataset(
  dataset: MatchingDataset,
  videos: readonly VideoFingerprints[],
  thresholds: readonly number[],
  signal?: AbortSignal,
): ThresholdPoint[] {
  const references = new ReferenceSet()
  for (const video of videos) references.add(video)
  references.freeze()
  return thresholds.map((bits) => {
    if (signal?.aborted === true) throw new AbortError()
    return scoreThreshold(dataset, bits, matchAllAgainstAll(videos, references, bits))
  })
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
