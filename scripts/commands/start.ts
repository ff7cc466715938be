import { join, resolve } from 'node:path'
import { colouredVertices } from '../../peer/coordinator/outcome.ts'
import { runLocalJob } from '../../peer/local/run-job.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { sideBySide } from '../../peer/quality/evaluate.ts'
import { renderSplats } from '../../peer/quality/splat-render.ts'
import { parseCommand, positiveInt, resolveDataset, stringOption } from '../options.ts'
import { writeImage, writeOutcomePly } from '../outputs.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh start [options]

Runs the vertex-colouring job on this machine: a coordinator and CPU participant threads colour the
target space from every camera frame of a data set, and the frame outcome is written as a coloured
point cloud (outcome.ply) and a rendering beside the first camera's photograph (rendering.png).

With no --dataset it uses templeSparseRing from the shared data folder (../shared/data beside the
repository, or $CROWDMESH_DATA), and a generated synthetic scene when that is not there.

Options:
  --dataset DIR          a Middlebury-format data set (<name>_par.txt, images, README.txt), or
                         "synthetic" for the generated scene
  --bbox x0,y0,z0,x1,y1,z1
                         the target space's box (default: from the data set's README.txt)
  --grid N               vertices per axis, N³ in all                            [default: 128]
  --local-participants N participant threads                         [default: one per core]
  --out DIR              where the outcome goes                        [default: out/start-<name>]
  --json                 print one JSON object per line: ready, progress, frameOutcome
  -h, --help             show this help
`

/** `crowdmesh start` (and `npm start`). */
export async function startCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      bbox: { type: 'string' },
      grid: { type: 'string' },
      'local-participants': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    help,
  )
  if (values === undefined) return
  const json = values.json === true
  const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`)
  }
  const grid = positiveInt(stringOption(values, 'grid'), 'grid', 128)
  const participantsText = stringOption(values, 'local-participants')
  const participants =
    participantsText === undefined ? undefined : positiveInt(participantsText, 'local-participants', 1)
  const dataset = await resolveDataset(stringOption(values, 'dataset'), stringOption(values, 'bbox'), say)
  const out = resolve(stringOption(values, 'out') ?? join('out', `start-${dataset.name}`))

  say(`crowdmesh: colouring ${dataset.name} (${dataset.cameras.length} cameras) on a ${grid}³ grid`)
  if (json) emit({ type: 'ready', dataset: dataset.name, cameras: dataset.cameras.length, grid, out })
  const bar = progressBar('colouring', { quiet: json })
  let lastTenth = -1
  const run = await runLocalJob({
    dataset,
    grid,
    ...(participants !== undefined && { participants }),
    onProgress: (done, total) => {
      bar.update(done, total)
      const tenth = Math.floor((done / total) * 10)
      if (json && tenth !== lastTenth) {
        lastTenth = tenth
        emit({ type: 'progress', threadsDone: done, threadsTotal: total })
      }
    },
  })
  bar.done(`${run.outcome.coloured} of ${run.outcome.totalVertices} vertices coloured`)

  const ply = await writeOutcomePly(out, run.job.space, run.outcome)
  const camera = dataset.cameras[0]!
  const { ids, rgb } = colouredVertices(run.outcome)
  const rendering = renderSplats(run.job.space, camera, ids, rgb)
  const photo = await frameSource({ maxFrames: 1 }).get(dataset.frames[0]!.imageUrl)
  const png = await writeImage(
    out,
    'rendering.png',
    sideBySide(camera.width, camera.height, rendering.rgba, photo.rgba),
  )
  if (json) {
    emit({
      type: 'frameOutcome',
      frameIndex: run.outcome.frameIndex,
      colouredVertices: run.outcome.coloured,
      totalVertices: run.outcome.totalVertices,
      seconds: Math.round(run.seconds * 100) / 100,
      participants: run.participants,
      ply,
      rendering: png,
    })
  } else {
    say(`  ${run.participants} participant threads, ${run.seconds.toFixed(1)}s`)
    say(`  outcome:   ${ply}`)
    say(`  rendering: ${png} (left: the coloured vertices seen from ${camera.name}; right: its photograph)`)
  }
}
