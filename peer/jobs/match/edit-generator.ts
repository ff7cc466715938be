import { spawn } from 'node:child_process'
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
import { probeVideo } from './ffmpeg-frames.ts'
import { loadMatchingDataset, type MatchingDataset } from './ground-truth.ts'

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

/** How strongly an edit is applied. */
export type EditStrength = 'mild' | 'strong'

/** Both strengths, mild first. */
export const editStrengths: readonly EditStrength[] = ['mild', 'strong']

/** The edits of issue 14 (`clip`: a 5–15 s piece cut at a random offset). */
export const editNames = [
  'reencode',
  'scale-down',
  'scale-up',
  'letterbox',
  'pillarbox',
  'crop',
  'greyscale',
  'sepia',
  'brightness',
  'contrast',
  'logo',
  'captions',
  'framerate',
  'clip',
] as const

/** One edit's name. */
export type EditName = (typeof editNames)[number]

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

/** A source video, as ffmpeg shows it (after rotation). */
interface SourceVideo {
  width: number
  height: number
  duration: number
  /** Frames per second (its average). */
  fps: number
}

/** How one copy is made. */
interface Recipe {
  detail: string
  /** Input options (before `-i`): where a clip starts and how long it is. */
  inputArgs: string[]
  /** A filter graph from `[0:v]` to `[v]`. */
  graph: string
  crf: number
  /** x264's preset: `ultrafast` where the encoding is not the edit (copies are made 2–3× sooner). */
  preset: string
  offset: number
}

interface CopyPlan extends Recipe {
  input: string
  original: string
  edit: EditName
  strength: EditStrength
  video: string
}

/** An even number near x (yuv420p wants even sides), at least 2. */
const even = (x: number) => Math.max(2, 2 * Math.round(x / 2))
const round = (x: number) => Math.round(x * 1000) / 1000
/** The quality copies are made at, where the edit is not the encoding itself: near-lossless, fast. */
const plainCrf = 20
const plainPreset = 'ultrafast'

/** The recipe of one edit at one strength (every edit but `clip`). */
function editRecipe(
  edit: Exclude<EditName, 'clip'>,
  strength: EditStrength,
  video: SourceVideo,
  font: string | undefined,
  rng: () => number,
): Recipe {
  const mild = strength === 'mild'
  const { width: w, height: h } = video
  const plain = (detail: string, chain: string, crf = plainCrf, preset = plainPreset): Recipe => ({
    detail,
    inputArgs: [],
    graph: `[0:v]${chain},format=yuv420p[v]`,
    crf,
    preset,
    offset: 0,
  })
  switch (edit) {
    case 'reencode': {
      // What a site's encoder does: a real preset, a high CRF.
      const crf = mild ? 35 : 45
      return plain(`x264 veryfast crf ${crf}`, 'null', crf, 'veryfast')
    }
    case 'scale-down':
    case 'scale-up': {
      const factor = edit === 'scale-down' ? (mild ? 0.5 : 0.25) : mild ? 1.5 : 2
      const sw = even(w * factor)
      const sh = even(h * factor)
      return plain(`scaled to ${sw}×${sh}`, `scale=${sw}:${sh}:flags=bicubic`)
    }
    case 'letterbox':
    case 'pillarbox': {
      // Each bar is this share of the padded frame's side.
      const bar = mild ? 0.1 : 0.2
      const tall = edit === 'letterbox'
      const side = even((tall ? h : w) / (1 - 2 * bar))
      const at = even((side - (tall ? h : w)) / 2)
      const pad = tall ? `pad=${w}:${side}:0:${at}:color=black` : `pad=${side}:${h}:${at}:0:color=black`
      return plain(`black bars of ${bar * 100} % each ${tall ? 'above and below' : 'left and right'}`, pad)
    }
    case 'crop': {
      // Off centre: a third of what is cut is cut from the left (top), two thirds from the right (bottom).
      const share = mild ? 0.03 : 0.08
      const cw = even(w * (1 - share))
      const ch = even(h * (1 - share))
      return plain(
        `${share * 100} % cropped`,
        `crop=${cw}:${ch}:${Math.round((w - cw) / 3)}:${Math.round((h - ch) / 3)}`,
      )
    }
    case 'greyscale':
      return plain(mild ? 'saturation 35 %' : 'grey', `hue=s=${mild ? 0.35 : 0}`)
    case 'sepia': {
      // The usual sepia matrix; mild is half sepia, half the original colours.
      const sepia = [0.393, 0.769, 0.189, 0.349, 0.686, 0.168, 0.272, 0.534, 0.131]
      const mix = mild ? 0.5 : 1
      const m = sepia.map((v, i) => round(mix * v + (1 - mix) * (i % 4 === 0 ? 1 : 0)))
      const [rr, rg, rb, gr, gg, gb, br, bg, bb] = m
      return plain(
        mild ? 'half sepia' : 'sepia',
        `colorchannelmixer=rr=${rr}:rg=${rg}:rb=${rb}:gr=${gr}:gg=${gg}:gb=${gb}:br=${br}:bg=${bg}:bb=${bb}`,
      )
    }
    case 'brightness':
      // Mild brightens; strong darkens, which also tests that dark scenes are not taken for bars.
      return plain(mild ? 'brightness +0.1' : 'brightness −0.2', `eq=brightness=${mild ? 0.1 : -0.2}`)
    case 'contrast':
      return plain(mild ? 'contrast ×1.3' : 'contrast ×0.6', `eq=contrast=${mild ? 1.3 : 0.6}`)
    case 'logo':
      return logoRecipe(mild, video, font)
    case 'captions':
      return captionsRecipe(mild, video, font, rng)
    case 'framerate': {
      const fps = mild ? 24 : 15
      return plain(`${fps} fps`, `fps=${fps}`)
    }
  }
}

/**
 * A logo drawn by ffmpeg itself (a framed coloured badge with letters) and laid over the video: small
 * in the top-right corner, or large (45 % of the width) right of the centre, as the TMK samples'.
 */
function logoRecipe(mild: boolean, video: SourceVideo, font: string | undefined): Recipe {
  const { width: w, height: h } = video
  const lw = even(w * (mild ? 0.15 : 0.45))
  const lh = even(lw * 0.55)
  const border = Math.max(2, Math.round(lh / 12))
  const x = mild ? even(w - lw - w * 0.04) : even(w * 0.5)
  const y = mild ? even(h * 0.04) : even((h - lh) / 2)
  const letters =
    font === undefined
      ? // Without a font, two blocks stand for letters.
        `,drawbox=x=${even(lw * 0.2)}:y=${even(lh * 0.3)}:w=${even(lw * 0.25)}:h=${even(lh * 0.4)}:color=white:t=fill` +
        `,drawbox=x=${even(lw * 0.55)}:y=${even(lh * 0.3)}:w=${even(lw * 0.25)}:h=${even(lh * 0.4)}:color=white:t=fill`
      : `,drawtext=fontfile='${font}':text=CM:fontcolor=white:fontsize=${even(lh * 0.55)}:x=(w-text_w)/2:y=(h-text_h)/2`
  const badge =
    `color=c=0xD81B60:s=${lw}x${lh}:r=${Math.max(1, Math.round(video.fps))}` +
    `,drawbox=x=0:y=0:w=iw:h=ih:color=0xFFC107:t=${border}${letters},format=yuv420p[logo]`
  return {
    detail: `${mild ? 'small' : 'large'} logo, ${lw}×${lh}`,
    inputArgs: [],
    graph: `${badge};[0:v][logo]overlay=x=${x}:y=${y}:shortest=1,format=yuv420p[v]`,
    crf: plainCrf,
    preset: plainPreset,
    offset: 0,
  }
}

const captionWords = (
  'the and we were going to see it again tonight after dinner with my brother when she said ' +
  'nobody knew where the car was parked so everyone walked home slowly through rain'
).split(' ')

/**
 * Captions that change every 2.5 s (what subtitles do, so they do not cancel out over time): mild, one
 * line of outlined text near the bottom; strong, a dark band across the bottom with two lines and a
 * headline band at the top.
 */
function captionsRecipe(
  mild: boolean,
  video: SourceVideo,
  font: string | undefined,
  rng: () => number,
): Recipe {
  const { width: w, height: h } = video
  const every = 2.5
  const lines = mild ? 1 : 2
  const size = even(Math.min(w, h) / (mild ? 18 : 13))
  const phrase = () =>
    Array.from({ length: 4 }, () => captionWords[Math.floor(rng() * captionWords.length)]!).join(' ')
  const filters: string[] = []
  if (!mild) {
    filters.push(`drawbox=x=0:y=${even(h * 0.74)}:w=iw:h=${even(h * 0.2)}:color=black@0.6:t=fill`)
    filters.push(`drawbox=x=0:y=${even(h * 0.05)}:w=iw:h=${even(size * 1.6)}:color=0x1565C0@0.85:t=fill`)
    filters.push(
      text(font, 'BREAKING NEWS TONIGHT', size, even(w * 0.04), even(h * 0.05 + size * 0.3), 0, 1e9),
    )
  }
  for (let from = 0; from < video.duration; from += every)
    for (let line = 0; line < lines; line++) {
      const y = even(h * (mild ? 0.86 : 0.76) + line * size * 1.4)
      filters.push(text(font, phrase(), size, even(w * 0.06), y, from, from + every))
    }
  return {
    detail: mild ? 'one caption line' : 'caption band of two lines and a headline',
    inputArgs: [],
    graph: `[0:v]${filters.join(',')},format=yuv420p[v]`,
    crf: plainCrf,
    preset: plainPreset,
    offset: 0,
  }
}

/** One caption, shown in [from, to) s; without a font, a white block as long as its text. */
function text(
  font: string | undefined,
  words: string,
  size: number,
  x: number,
  y: number,
  from: number,
  to: number,
) {
  const enable = `enable='gte(t,${round(from)})*lt(t,${round(to)})'`
  if (font === undefined)
    return `drawbox=x=${x}:y=${y}:w=${even(words.length * size * 0.5)}:h=${size}:color=white:t=fill:${enable}`
  return `drawtext=fontfile='${font}':text='${words}':fontsize=${size}:fontcolor=white:borderw=${Math.max(1, Math.round(size / 12))}:bordercolor=black:x=${x}:y=${y}:${enable}`
}

/** A clip: mild 10–15 s, strong 5–10 s (shorter where the original is), from a random offset. */
function clipRecipe(video: SourceVideo, strength: EditStrength, rng: () => number): Recipe {
  const [shortest, longest] = strength === 'mild' ? [10, 15] : [5, 10]
  const length = Math.min(video.duration - 1, shortest + rng() * (longest - shortest))
  if (!(length >= 3))
    throw new DatasetError(`a ${round(video.duration)} s video is too short to cut clips from`)
  // On the source's frame grid: the clip's first frame is then exactly at its offset.
  const frame = 1 / video.fps
  const offset = Math.floor((rng() * (video.duration - length)) / frame) * frame
  return {
    detail: `${round(length)} s from ${round(offset)} s`,
    inputArgs: ['-ss', round(offset).toFixed(3), '-t', round(length).toFixed(3)],
    graph: '[0:v]null,format=yuv420p[v]',
    crf: plainCrf,
    preset: plainPreset,
    offset,
  }
}

/** mulberry32, seeded by a string's FNV-1a hash: the same copies from the same seed on any machine. */
function seededRandom(key: string): () => number {
  let state = 0x811c9dc5
  for (let i = 0; i < key.length; i++) state = Math.imul(state ^ key.charCodeAt(i), 0x01000193) >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A TrueType font for drawtext, or undefined (logos and captions are then drawn as blocks). */
function findFont(): string | undefined {
  return [
    '/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf',
    '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
    '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
    '/System/Library/Fonts/Supplemental/Arial Bold.ttf',
  ].find((path) => existsSync(path))
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

/** Runs a tool to its end; rejects with `AbortError` when aborted (the child is killed). */
function runTool(
  command: string,
  args: string[],
  signal: AbortSignal | undefined,
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  if (signal?.aborted === true) return Promise.reject(new AbortError())
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      if (stdout.length < 1 << 20) stdout += text
    })
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 8192) stderr += text
    })
    child.once('error', (error) =>
      reject(
        signal?.aborted === true
          ? new AbortError()
          : new EditGenerationError(`cannot run ${command} (${error.message})`),
      ),
    )
    child.once('close', (code) =>
      signal?.aborted === true ? reject(new AbortError()) : resolve({ stdout, stderr, code }),
    )
  })
}
