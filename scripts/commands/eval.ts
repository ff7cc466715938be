import { join, resolve } from 'node:path'
import { defaultScene } from '../../peer/datasets/synthetic.ts'
import { runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { scoreSynthetic, type SyntheticScore } from '../../peer/quality/synthetic-score.ts'
import {
  evaluateHoldout,
  type HoldoutScore,
  naiveMethod,
  resolveHoldout,
} from '../../peer/quality/evaluate.ts'
import { parseCommand, positiveInt, resolveDataset, stringOption, UsageError } from '../options.ts'
import { writeImage, writeOutcomePly } from '../outputs.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh eval --dataset DIR [options]

Colours the target space from every view but one, renders the coloured vertices into the held-out
camera (z-buffered splats) and compares the rendering with the real photograph: silhouette IoU
(object = mean brightness > 0.19) and PSNR where both show the object.

Options:
  --dataset DIR        a Middlebury-format data set (<name>_par.txt, images, README.txt), or
                       "synthetic": the generated scene, also scored against its ground truth
                       (groundTruth.surfaceAccuracy within ±16, groundTruth.freeSpaceColoured)   [required]
  --bbox x0,y0,z0,x1,y1,z1
                       the target space's box (default: the "(x y z)" lines of README.txt)
  --grid N             vertices per axis, N³ in all                            [default: 128]
  --holdout V          the view left out: image name or 0-based index in _par.txt order
                       (default: every view in turn, and the means over them)
  --out DIR            where outcome.ply and the renderings go     [default: out/eval-<name>-<N>]
  --participants N     participant threads                          [default: one per core]
  --method M           "occlusion" (crowdmesh's rule) or "naive" (the reference method: visual
                       hull, mean over all views, 1-pixel splats)           [default: occlusion]
  --json               print one JSON object (psnr, iou, coloredVertices, totalVertices, seconds, …)
  -h, --help           show this help
`

/** `crowdmesh eval`. */
export async function evalCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      bbox: { type: 'string' },
      grid: { type: 'string' },
      holdout: { type: 'string' },
      out: { type: 'string' },
      participants: { type: 'string' },
      method: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const datasetDir = stringOption(values, 'dataset')
  if (datasetDir === undefined) throw new UsageError('--dataset DIR is required')
  const grid = positiveInt(stringOption(values, 'grid'), 'grid', 128)
  const participantsText = stringOption(values, 'participants')
  const participants =
    participantsText === undefined ? undefined : positiveInt(participantsText, 'participants', 1)
  const json = values.json === true
  const bbox = stringOption(values, 'bbox')
  const say = (line: string) => {
    if (!json) process.stderr.write(`${line}\n`)
  }
  const synthetic = datasetDir === 'synthetic'
  const dataset = await resolveDataset(datasetDir, bbox, say)
  const out = resolve(stringOption(values, 'out') ?? join('out', `eval-${dataset.name}-${grid}`))
  const holdout = stringOption(values, 'holdout')
  const method = stringOption(values, 'method') ?? 'occlusion'
  if (method !== 'occlusion' && method !== 'naive')
    throw new UsageError(`--method must be occlusion or naive, got "${method}"`)
  const views = holdout === undefined ? dataset.cameras : [resolveHoldout(dataset, holdout)]

  const started = performance.now()
  const scores: HoldoutScore[] = []
  const bar = progressBar(`eval ${dataset.name} ${grid}³`, { quiet: json && !process.stderr.isTTY })
  for (const [i, view] of views.entries()) {
    const score = await evaluateHoldout(dataset, view, {
      grid,
      ...(participants !== undefined && { participants }),
      ...(method === 'naive' && naiveMethod),
      onProgress: (done, total) => bar.update(i + done / total, views.length),
    })
    await writeImage(out, `${view.name}-rendering.png`, score.sideBySide)
    if (views.length === 1) await writeOutcomePly(out, score.job.space, score.outcome)
    scores.push(score)
    if (!json) {
      process.stderr.write(
        `${process.stderr.isTTY ? '\r\x1b[K' : ''}  ${view.name}: PSNR ${score.psnr.toFixed(2)} dB, IoU ${score.iou.toFixed(3)}, ` +
          `${score.colouredVertices} coloured vertices, ${score.seconds.toFixed(1)}s\n`,
      )
    }
  }
  bar.done()
  const mean = (f: (s: HoldoutScore) => number) => scores.reduce((a, s) => a + f(s), 0) / scores.length
  const report = {
    dataset: dataset.name,
    grid,
    holdout: views.length === 1 ? views[0]!.name : 'each',
    method,
    psnr: round(
      mean((s) => s.psnr),
      3,
    ),
    iou: round(
      mean((s) => s.iou),
      4,
    ),
    coloredVertices: Math.round(mean((s) => s.colouredVertices)),
    totalVertices: scores[0]!.totalVertices,
    seconds: round((performance.now() - started) / 1000, 2),
    views: scores.map((s) => ({
      view: s.view,
      index: s.index,
      psnr: round(s.psnr, 3),
      iou: round(s.iou, 4),
      coloredVertices: s.colouredVertices,
      seconds: round(s.seconds, 2),
    })),
    out,
  }
  let groundTruth: SyntheticScore | undefined
  if (views.length > 1 || synthetic) {
    // The PLY is the outcome of all views together; on the synthetic scene it is also scored
    // against the ground truth.
    const full = await runLocalJob({
      dataset,
      grid,
      ...(participants !== undefined && { participants }),
      ...(method === 'naive' && {
        outcomeRule: naiveMethod.outcomeRule!,
        minCoverage: naiveMethod.minCoverage!,
        backgroundBrightness: naiveMethod.backgroundBrightness!,
      }),
    })
    await writeOutcomePly(out, full.job.space, full.outcome)
    if (synthetic) groundTruth = scoreSynthetic(defaultScene(), full.job.space, full.outcome)
  }
  const full = { ...report, ...(groundTruth !== undefined && { groundTruth }) }
  if (json) {
    process.stdout.write(`${JSON.stringify(full)}\n`)
  } else {
    process.stdout.write(
      `${dataset.name} at ${grid}³, ${views.length === 1 ? `holding out ${views[0]!.name}` : `each of ${views.length} views held out`}:\n` +
        `  mean PSNR ${report.psnr.toFixed(2)} dB, mean IoU ${report.iou.toFixed(3)}, ` +
        `${report.coloredVertices} of ${report.totalVertices} vertices coloured, ${report.seconds}s\n` +
        (groundTruth === undefined
          ? ''
          : `  ground truth (all views): ${(groundTruth.surfaceAccuracy * 100).toFixed(1)} % of surface vertices within ` +
            `±${groundTruth.colourTolerance}, ${(groundTruth.freeSpaceColoured * 100).toFixed(2)} % of free space coloured\n`) +
        `  outcome and renderings in ${out}\n`,
    )
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
