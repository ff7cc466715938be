import { existsSync } from 'node:fs'
import {
  copyFile,
  lstat,
  mkdir,
  readFile,
  readdir,
  readlink,
  realpath,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises'
import { basename, dirname, extname, join, relative, sep } from 'node:path'
import { AbortError, CrowdmeshError, DatasetError } from '../../protocol/errors.ts'
import { runTool as runAnyTool } from '../../protocol/run-tool.ts'
import { probeVideo } from './ffmpeg-frames.ts'
import {
  clipRecipe,
  type EditName,
  editNames,
  editRecipe,
  type EditStrength,
  editStrengths,
  findFont,
  type Recipe,
  round,
  seededRandom,
  type SourceVideo,
} from './edit-recipes.ts'
import { loadMatchingDataset, type MatchingDataset } from './ground-truth.ts'

export { type EditName, editNames, type EditStrength, editStrengths } from './edit-recipes.ts'

/*
 * Edited copies of a data set's originals, made with ffmpeg, with their ground truth: what an upload
 * does to a video (issue 14) at two strengths, and clips cut at seeded random offsets. The output is a
 * self-contained data set that `loadMatchingDataset` reads: the source's videos (linked), the copies
 * under `edited/`, and a `ground-truth.json` in the source's schema that keeps the source's groups and
 * adds the copies. Each copy is made once: a copy whose parameters (source file, filters, encoder)
 * have not changed is kept.
 */

/** Generating a copy failed (ffmpeg missing, or it refused the source or the filters). */
export class EditGenerationError extends CrowdmeshError {}

/** The output folder holds something else than a generated data set: it is not overwritten. */
export class EditFolderError extends CrowdmeshError {}

/** Options of `generateEditedDataset` (defaults in brackets). */
export interface EditGeneratorInit {
  /** The source data set's folder (a `ground-truth.json` and its videos). */
  source: string
  /** The folder to write the edited data set into; created, or one this generator wrote before. */
  out: string
  /** Videos to edit, relative to `source` [`defaultOriginals`: each group's original and the long unrelated videos]. */
  originals?: readonly string[]
  /** Edits to make [all of `editNames`]. */
  edits?: readonly EditName[]
  /** Strengths to make [both]. */
  strengths?: readonly EditStrength[]
  /** Clips cut per original and strength [2]. */
  clipsPerStrength?: number
  /** Seed of the clips' offsets and lengths and of the captions' words [14]. */
  seed?: number
  signal?: AbortSignal
  /** Called after each copy, made or kept: copies done, copies in all, the copy. */
  onProgress?: (done: number, total: number, video: string) => void
}

/** One copy in the generated data set. */
export interface GeneratedCopy {
  /** Path relative to the generated data set's root. */
  video: string
  /** The original it was made from, relative to the root. */
  original: string
  edit: EditName
  strength: EditStrength
  /** The parameters in words (`crf 45`, `8 % crop`). */
  detail: string
  /** Seconds into the group's original where the copy's time 0 is. */
  offset: number
}

/** What `generateEditedDataset` did. */
export interface GeneratedDataset {
  root: string
  copies: GeneratedCopy[]
  /** Copies made by this call, and copies kept from an earlier one. */
  made: number
  kept: number
}

/** Unrelated videos at least this long (s) are edited by default: long enough for clips of 15 s. */
export const minOriginalSeconds = 20

/** Changing how copies are made changes this, so that every copy is made again. */
const generatorVersion = 1
/** Where the copies go, under the generated root. */
const editedFolder = 'edited'
/** The file that marks a folder as written by this generator (so stale copies may be removed). */
const markerFile = '.crowdmesh-edits'
const videoExtensions = /\.(mp4|webm|mkv|mov|gif|avi|m4v)$/i

/** The videos edited by default: each group's original, and the unrelated videos of at least `minOriginalSeconds`. */
export async function defaultOriginals(dataset: MatchingDataset, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = []
  for (const video of dataset.videos) {
    const member = dataset.members.get(video)
    if (member !== undefined) {
      if (member.edit === 'original') out.push(video)
      continue
    }
    const probe = await probeVideo(join(dataset.root, video), signal)
    if (probe.duration >= minOriginalSeconds) out.push(video)
  }
  return out
}

/**
 * Writes the edited data set: links the source's videos, makes each copy of each original (one
 * ffmpeg at a time: x264 takes every core itself), removes copies no longer planned, and writes
 * `ground-truth.json`. Throws `DatasetError` for a source that does not load or an original it
 * lacks, `EditFolderError` for an output folder it did not write, `EditGenerationError` when ffmpeg
 * fails, `AbortError` when aborted.
 */
export async function generateEditedDataset(init: EditGeneratorInit): Promise<GeneratedDataset> {
  const { signal } = init
  const source = await loadMatchingDataset(init.source)
  const rawTruth = JSON.parse(await readFile(join(init.source, 'ground-truth.json'), 'utf8')) as SourceTruth
  const originals = [...new Set(init.originals ?? (await defaultOriginals(source, signal)))]
  for (const original of originals)
    if (!source.videos.includes(original))
      throw new DatasetError(
        `${init.source}: no video ${original} to edit (give it relative to the data set)`,
      )
  if (source.videos.some((v) => v.split(sep)[0] === editedFolder))
    throw new DatasetError(`${init.source}: has its own ${editedFolder}/ folder; edit a data set without one`)
  const root = init.out
  await claimFolder(root)
  const font = findFont()
  const edits = init.edits ?? editNames
  const strengths = init.strengths ?? editStrengths
  const seed = init.seed ?? 14

  // Plan every copy first (probing each original once), then make them.
  const plans: CopyPlan[] = []
  for (const original of originals) {
    const input = join(init.source, original)
    const video = await probeSource(input, signal)
    const folder = join(editedFolder, flatten(original))
    const member = source.members.get(original)
    for (const edit of edits)
      for (const strength of strengths) {
        if (edit === 'clip') {
          const rng = seededRandom(`${seed}:${original}:${strength}`)
          for (let i = 1; i <= (init.clipsPerStrength ?? 2); i++) {
            const recipe = clipRecipe(video, strength, rng)
            plans.push({
              ...recipe,
              input,
              original,
              edit,
              strength,
              video: join(folder, `clip-${strength}-${i}.mp4`),
            })
          }
        } else {
          const recipe = editRecipe(edit, strength, video, font, seededRandom(`${seed}:${original}:${edit}`))
          plans.push({
            ...recipe,
            input,
            original,
            edit,
            strength,
            video: join(folder, `${edit}-${strength}.mp4`),
          })
        }
      }
    // A copy of a copy is a copy of the group's original, offset by where its own source starts.
    if (member !== undefined)
      for (const plan of plans) if (plan.original === original) plan.offset += member.offset
  }

  const linked = await linkSources(source, root)
  await removeUnplanned(root, new Set([...linked, ...plans.map((p) => p.video)]))
  let made = 0
  let kept = 0
  for (const [i, plan] of plans.entries()) {
    if (signal?.aborted === true) throw new AbortError()
    if (await makeCopy(plan, root, signal)) made++
    else kept++
    init.onProgress?.(i + 1, plans.length, plan.video)
  }
  const copies = plans.map((p): GeneratedCopy => ({
    video: p.video,
    original: p.original,
    edit: p.edit,
    strength: p.strength,
    detail: p.detail,
    offset: round(p.offset),
  }))
  await writeGroundTruth(root, init.source, rawTruth, source, copies, seed)
  return { root, copies, made, kept }
}

/** The source's ground truth as written (already checked by `loadMatchingDataset`). */
interface SourceTruth {
  groups: {
    name: string
    original: string
    copies: { video: string; edit: string; offset: number; strength?: string }[]
  }[]
}

interface CopyPlan extends Recipe {
  input: string
  original: string
  edit: EditName
  strength: EditStrength
  video: string
}

/** A path as one folder name: `tmk/chair.mp4` → `tmk-chair`. */
const flatten = (video: string) => video.slice(0, -extname(video).length).split(sep).join('-')

/** Width, height (as displayed), duration and frame rate of a source video. */
async function probeSource(path: string, signal: AbortSignal | undefined): Promise<SourceVideo> {
  const { duration } = await probeVideo(path, signal)
  const { stdout, code, stderr } = await runTool(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      'v:0',
      '-show_entries',
      'stream=width,height,avg_frame_rate,r_frame_rate:stream_side_data=rotation',
      '-of',
      'json',
      path,
    ],
    signal,
  )
  if (code !== 0) throw new EditGenerationError(`${path}: ffprobe failed (${firstLine(stderr)})`)
  const stream = (
    JSON.parse(stdout) as {
      streams: {
        width: number
        height: number
        avg_frame_rate?: string
        r_frame_rate?: string
        side_data_list?: { rotation?: number }[]
      }[]
    }
  ).streams[0]!
  const rate = (text: string | undefined) => {
    const [n, d] = (text ?? '0/0').split('/').map(Number)
    return n! > 0 && d! > 0 ? n! / d! : undefined
  }
  const fps = rate(stream.avg_frame_rate) ?? rate(stream.r_frame_rate) ?? 25
  // ffmpeg turns a rotated phone video upright before the filters see it.
  const quarter =
    Math.abs(stream.side_data_list?.find((s) => s.rotation !== undefined)?.rotation ?? 0) % 180 === 90
  return {
    width: quarter ? stream.height : stream.width,
    height: quarter ? stream.width : stream.height,
    duration,
    fps,
  }
}

/** Makes the output folder ours: new, empty, or marked by an earlier run. */
async function claimFolder(root: string): Promise<void> {
  await mkdir(root, { recursive: true })
  const entries = await readdir(root)
  if (entries.length > 0 && !entries.includes(markerFile))
    throw new EditFolderError(
      `${root}: not empty and not written by the edit generator; choose another folder`,
    )
  await writeFile(
    join(root, markerFile),
    'Written by crowdmesh (peer/jobs/match/edit-generator.ts); its videos are regenerated.\n',
  )
}

/** Links each source video into the root at its own path (a copy where links are refused); returns their paths. */
async function linkSources(source: MatchingDataset, root: string): Promise<string[]> {
  for (const video of source.videos) {
    const target = await realpath(join(source.root, video))
    const at = join(root, video)
    await mkdir(dirname(at), { recursive: true })
    const existing = await lstat(at).catch(() => undefined)
    if (existing?.isSymbolicLink() === true && (await readlink(at)) === target) continue
    if (existing !== undefined) await rm(at, { force: true })
    await symlink(target, at).catch(() => copyFile(target, at))
  }
  return source.videos
}

/** Removes videos (and their parameter files) under the root that no plan names: stale copies would count as unrelated videos. */
async function removeUnplanned(root: string, planned: ReadonlySet<string>): Promise<void> {
  for (const entry of await readdir(root, { recursive: true })) {
    const path = relative(root, join(root, entry))
    const stale =
      (videoExtensions.test(path) && !planned.has(path)) ||
      (path.endsWith('.key') && !planned.has(path.slice(0, -'.key'.length))) ||
      path.endsWith('.partial')
    if (stale) await rm(join(root, path), { force: true })
  }
}

/** Makes one copy unless it exists with the same parameters; returns whether it was made. */
async function makeCopy(plan: CopyPlan, root: string, signal: AbortSignal | undefined): Promise<boolean> {
  const output = join(root, plan.video)
  const keyFile = `${output}.key`
  const info = await stat(plan.input)
  const args = [
    '-hide_banner',
    '-v',
    'error',
    '-nostdin',
    '-y',
    ...plan.inputArgs,
    '-i',
    plan.input,
    '-filter_complex',
    plan.graph,
    '-map',
    '[v]',
    '-an',
    '-sn',
    '-dn',
    '-map_metadata',
    '-1',
    '-c:v',
    'libx264',
    '-preset',
    plan.preset,
    '-crf',
    String(plan.crf),
    '-pix_fmt',
    'yuv420p',
    '-movflags',
    '+faststart',
    '-f',
    'mp4',
  ]
  const key = JSON.stringify({
    generatorVersion,
    source: { path: await realpath(plan.input), size: info.size, mtimeMs: info.mtimeMs },
    args,
  })
  if (existsSync(output) && (await readFile(keyFile, 'utf8').catch(() => '')) === key) return false
  await mkdir(dirname(output), { recursive: true })
  // Written beside, then renamed: a copy cut short by an abort or a crash never looks made.
  const partial = `${output}.partial`
  try {
    const { code, stderr } = await runTool('ffmpeg', [...args, partial], signal)
    if (code !== 0) throw new EditGenerationError(`${plan.video}: ffmpeg failed (${firstLine(stderr)})`)
    await rename(partial, output)
  } finally {
    await rm(partial, { force: true })
  }
  await writeFile(keyFile, key)
  return true
}

/** Writes the ground truth: the source's groups with the copies added, new groups for the other originals, the rest unrelated. */
async function writeGroundTruth(
  root: string,
  sourceRoot: string,
  truth: SourceTruth,
  source: MatchingDataset,
  copies: readonly GeneratedCopy[],
  seed: number,
): Promise<void> {
  const groups = truth.groups.map((g) => ({ name: g.name, original: g.original, copies: [...g.copies] }))
  const names = new Set(groups.map((g) => g.name))
  for (const copy of copies) {
    const member = source.members.get(copy.original)
    let group = groups.find((g) =>
      member === undefined ? g.original === copy.original : g.name === member.group,
    )
    if (group === undefined) {
      let name = basename(copy.original, extname(copy.original))
      while (names.has(name)) name += '+'
      names.add(name)
      group = { name, original: copy.original, copies: [] }
      groups.push(group)
    }
    group.copies.push({ video: copy.video, edit: copy.edit, offset: copy.offset, strength: copy.strength })
  }
  const members = new Set(groups.flatMap((g) => [g.original, ...g.copies.map((c) => c.video)]))
  const document = {
    about:
      `Edited copies of ${sourceRoot} made by crowdmesh's edit generator (seed ${seed}), with its videos linked. ` +
      "Times in seconds; a copy's [start, end) maps onto the original's [start + offset, end + offset). " +
      'Videos not listed in any group are unrelated to every other video here.',
    groups,
    unrelated: source.videos.filter((v) => !members.has(v)),
  }
  const path = join(root, 'ground-truth.json')
  await writeFile(`${path}.partial`, `${JSON.stringify(document, null, 2)}\n`)
  await rename(`${path}.partial`, path)
}

const firstLine = (text: string) => text.trim().split('\n')[0]?.slice(0, 300) || 'no message'

/** Runs ffmpeg or ffprobe for the generator (a missing tool is an `EditGenerationError`). */
const runTool = (command: string, args: string[], signal: AbortSignal | undefined) =>
  runAnyTool(command, args, { signal, cannotRun: (message) => new EditGenerationError(message) })
