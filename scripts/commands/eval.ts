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
(object = mean brightness > 0.19) and PSNR where both show the object. Every method is rendered the
same two ways: with 1-pixel splats (psnr, iou: the contract figures) and with blended voxel
footprints (footprint.psnr, footprint.iou), so methods compare on one harness.

Options:
  --dataset DIR        a Middlebury-format data set (<name>_par.txt, images, README.txt), or a
                       generated one: "arches" or "pots" (photoreal textured scenes, 16 views on
                       one ring, like templeSparseRing), or "synthetic" (flat-coloured solids, also
                       scored against their ground truth: groundTruth.surfaceAccuracy within ±16,
                       groundTruth.freeSpaceColoured)                                         [required]
  --bbox x0,y0,z0,x1,y1,z1
                       the target space's box (default: the "(x y z)" lines of README.txt)
  --grid N             vertices per axis, N³ in all                            [default: 128]
  --holdout V[,V…]     the views left out, one at a time: image names or 0-based indices in
                       _par.txt order (default: every view in turn), and the means over them
  --out DIR            where outcome.ply and the renderings go     [default: out/eval-<name>-<N>]
  --participants N     participant threads                          [default: one per core]
  --method M           "occlusion" (crowdmesh's rule), "naive" (the reference method: visual
                       hull, mean over all views), or "both", in the same run [default: occlusion]
  --json               print one JSON object (psnr, iou, footprint, coloredVertices, modelVertices,
                       totalVertices, seconds, views, and with --method both each method's under
                       methods)
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
  if (method !== 'occlusion' && method !== 'naive' && method !== 'both')
    throw new UsageError(`--method must be occlusion, naive or both, got "${method}"`)
  const methods: ('occlusion' | 'naive')[] = method === 'both' ? ['occlusion', 'naive'] : [method]
  const views =
    holdout === undefined
      ? dataset.cameras
      : holdout.split(',').map((one) => resolveHoldout(dataset, one.trim()))

  const started = performance.now()
  const bar = progressBar(`eval ${dataset.name} ${grid}³`, { quiet: json && !process.stderr.isTTY })
  const steps = views.length * methods.length
  const reports = []
  for (const [m, name] of methods.entries()) {
    const scores: HoldoutScore[] = []
    for (const [i, view] of views.entries()) {
      const score = await evaluateHoldout(dataset, view, {
        grid,
        ...(participants !== undefined && { participants }),
        ...(name === 'naive' && naiveMethod),
        onProgress: (done, total) => bar.update(m * views.length + i + done / total, steps),
      })
      const prefix = methods.length === 1 ? view.name : `${view.name}-${name}`
      await writeImage(out, `${prefix}-rendering.png`, score.sideBySide)
      if (views.length === 1 && m === 0) await writeOutcomePly(out, score.job.space, score.outcome)
      scores.push(score)
      if (!json) {
        process.stderr.write(
          `${process.stderr.isTTY ? '\r\x1b[K' : ''}  ${view.name}${methods.length === 1 ? '' : ` (${name})`}: PSNR ${score.psnr.toFixed(2)} dB, IoU ${score.iou.toFixed(3)} ` +
            `(footprint: ${score.footprint.psnr.toFixed(2)} dB, ${score.footprint.iou.toFixed(3)}), ` +
            `${score.colouredVertices} coloured vertices, ${score.seconds.toFixed(1)}s\n`,
        )
      }
    }
    reports.push(methodReport(name, scores))
  }
  bar.done()
  const report = {
    dataset: dataset.name,
    grid,
    holdout: views.length === 1 ? views[0]!.name : 'each',
    // The first method's figures at the top (what scripts read), every method's with `both`.
    ...reports[0]!,
    method,
    ...(methods.length > 1 && { methods: reports }),
    totalVertices: grid ** 3,
    seconds: round((performance.now() - started) / 1000, 2),
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
      ...(methods[0] === 'naive' && {
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
        reports
          .map(
            (r) =>
              `  ${r.method}: mean PSNR ${r.psnr.toFixed(2)} dB, mean IoU ${r.iou.toFixed(3)} (1-pixel splats); ` +
              `footprint splats ${r.footprint.psnr.toFixed(2)} dB, ${r.footprint.iou.toFixed(3)}; ` +
              `${r.coloredVertices} of ${grid ** 3} vertices coloured\n`,
          )
          .join('') +
        `  ${report.seconds}s\n` +
        (groundTruth === undefined
          ? ''
          : `  ground truth (all views): ${(groundTruth.surfaceAccuracy * 100).toFixed(1)} % of surface vertices within ` +
            `±${groundTruth.colourTolerance}, ${(groundTruth.freeSpaceColoured * 100).toFixed(2)} % of free space coloured\n`) +
        `  outcome and renderings in ${out}\n`,
    )
  }
}

/** One method's figures over the views: means, and each view's. */
function methodReport(method: 'occlusion' | 'naive', scores: HoldoutScore[]) {
  const mean = (f: (s: HoldoutScore) => number) => scores.reduce((a, s) => a + f(s), 0) / scores.length
  return {
    method,
    psnr: round(
      mean((s) => s.psnr),
      3,
    ),
    iou: round(
      mean((s) => s.iou),
      4,
    ),
    footprint: {
      psnr: round(
        mean((s) => s.footprint.psnr),
        3,
      ),
      iou: round(
        mean((s) => s.footprint.iou),
        4,
      ),
    },
    coloredVertices: Math.round(mean((s) => s.colouredVertices)),
    modelVertices: Math.round(mean((s) => s.modelVertices)),
    views: scores.map((s) => ({
      view: s.view,
      index: s.index,
      psnr: round(s.psnr, 3),
      iou: round(s.iou, 4),
      footprint: { psnr: round(s.footprint.psnr, 3), iou: round(s.footprint.iou, 4) },
      coloredVertices: s.colouredVertices,
      modelVertices: s.modelVertices,
      seconds: round(s.seconds, 2),
    })),
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
