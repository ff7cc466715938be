import { existsSync } from 'node:fs'
import { DatasetError } from '../../protocol/errors.ts'

/*
 * How each edit of issue 14 is made with ffmpeg, at each strength: the filter graph, the encoder's
 * settings and, for a clip, where it starts. `edit-generator.ts` runs them.
 */

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

/** A source video, as ffmpeg shows it (after rotation). */
export interface SourceVideo {
  width: number
  height: number
  duration: number
  /** Frames per second (its average). */
  fps: number
}

/** How one copy is made. */
export interface Recipe {
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

/** An even number near x (yuv420p wants even sides), at least 2. */
export const even = (x: number) => Math.max(2, 2 * Math.round(x / 2))
export const round = (x: number) => Math.round(x * 1000) / 1000
/** The quality copies are made at, where the edit is not the encoding itself: near-lossless, fast. */
const plainCrf = 20
const plainPreset = 'ultrafast'

/** The recipe of one edit at one strength (every edit but `clip`). */
export function editRecipe(
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
export function clipRecipe(video: SourceVideo, strength: EditStrength, rng: () => number): Recipe {
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
export function seededRandom(key: string): () => number {
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
export function findFont(): string | undefined {
  return [
    '/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf',
    '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf',
    '/usr/share/fonts/TTF/DejaVuSans-Bold.ttf',
    '/System/Library/Fonts/Supplemental/Arial Bold.ttf',
  ].find((path) => existsSync(path))
}
