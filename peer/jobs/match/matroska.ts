import { VideoInputError } from './defaults.ts'

/*
 * A small Matroska/WebM demuxer for the browser's video decoder: the first video track's codec,
 * size and private data, and its frames (SimpleBlocks and Blocks) with their presentation times, so
 * WebCodecs decodes MKV and WebM as it does MP4. Only what that needs is read; elements of unknown
 * size (a live WebM such as MediaRecorder's) end where their parent's next sibling begins. Laced
 * blocks (audio's habit, never seen in video) and codecs WebCodecs is not given here are left to the
 * <video> element: `undefined`.
 */

/** A demuxed video track, as WebCodecs wants it. */
export interface DemuxedTrack {
  /** WebCodecs codec string. */
  codec: string
  codedWidth: number
  codedHeight: number
  description?: Uint8Array
  /** Frames in decode (file) order. */
  samples: DemuxedSample[]
}

/** One coded frame. */
export interface DemuxedSample {
  /** Presentation time, s. */
  time: number
  key: boolean
  data: Uint8Array
}

const ids = {
  ebml: 0x1a45dfa3,
  segment: 0x18538067,
  info: 0x1549a966,
  timecodeScale: 0x2ad7b1,
  tracks: 0x1654ae6b,
  trackEntry: 0xae,
  trackNumber: 0xd7,
  trackType: 0x83,
  codecId: 0x86,
  codecPrivate: 0x63a2,
  video: 0xe0,
  pixelWidth: 0xb0,
  pixelHeight: 0xba,
  cluster: 0x1f43b675,
  timecode: 0xe7,
  simpleBlock: 0xa3,
  blockGroup: 0xa0,
  block: 0xa1,
  referenceBlock: 0xfb,
} as const

/** Elements read into; everything else is skipped. */
const masters = new Set<number>([
  ids.segment,
  ids.info,
  ids.tracks,
  ids.trackEntry,
  ids.video,
  ids.cluster,
  ids.blockGroup,
])
/** Top-level elements of a segment: one of them ends an unknown-size cluster. */
const segmentChildren = new Set<number>([
  ids.info,
  ids.tracks,
  ids.cluster,
  0x114d9b74, // SeekHead
  0x1c53bb6b, // Cues
  0x1941a469, // Attachments
  0x1043a770, // Chapters
  0x1254c367, // Tags
])

/** Deepest nesting read (a real file nests 4 deep); a hostile one nesting more is not followed. */
const maxDepth = 6

/** Whether the bytes begin as an EBML document (Matroska, WebM). */
export function isMatroska(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3
}

/** A variable-length integer at `at`: its value (marker removed unless `keepMarker`) and length; undefined past the end. */
function vint(
  bytes: Uint8Array,
  at: number,
  keepMarker: boolean,
): { value: number; length: number; unknown: boolean } | undefined {
  const first = bytes[at]
  if (first === undefined || first === 0) return undefined
  const length = Math.clz32(first) - 23
  if (at + length > bytes.length) return undefined
  let value = keepMarker ? first : first & (0xff >> length)
  let allOnes = value === 0xff >> length
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[at + i]!
    allOnes &&= bytes[at + i] === 0xff
  }
  return { value, length, unknown: !keepMarker && allOnes }
}

function uint(bytes: Uint8Array, from: number, to: number): number {
  let value = 0
  for (let i = from; i < to; i++) value = value * 256 + bytes[i]!
  return value
}

interface Track {
  number: number
  type: number
  codecId: string
  codecPrivate?: Uint8Array
  width: number
  height: number
}

/**
 * The first video track of a Matroska or WebM file; undefined when its codec or its blocks are not
 * ones this demuxer hands to WebCodecs. Throws `VideoInputError` for a file with no video track.
 */
export function demuxMatroska(bytes: Uint8Array): DemuxedTrack | undefined {
  let timecodeScale = 1_000_000
  const tracks: Track[] = []
  let track: Track | undefined
  const samples: DemuxedSample[] = []
  let clusterTime = 0
  let laced = false
  // Blocks of a BlockGroup are key frames unless a ReferenceBlock says otherwise.
  const group: { block: { at: number; end: number } | undefined; references: boolean } = {
    block: undefined,
    references: false,
  }

  const block = (from: number, end: number, key: boolean | undefined) => {
    const number = vint(bytes, from, false)
    if (number === undefined || from + number.length + 3 > end) return
    const chosen = video()
    if (chosen === undefined || number.value !== chosen.number) return
    const head = from + number.length
    const relative = (((bytes[head]! << 8) | bytes[head + 1]!) << 16) >> 16
    const flags = bytes[head + 2]!
    if ((flags & 0x06) !== 0) laced = true
    samples.push({
      time: ((clusterTime + relative) * timecodeScale) / 1e9,
      key: key ?? (flags & 0x80) !== 0,
      data: bytes.subarray(head + 3, end),
    })
  }
  const video = () => (track ??= tracks.find((t) => t.type === 1))

  /** Reads the elements in [from, end); returns where it stopped (an unknown-size parent's end). */
  const read = (from: number, end: number, parent: number, depth: number): number => {
    let at = from
    while (at < end) {
      const id = vint(bytes, at, true)
      if (id === undefined) return end
      const size = vint(bytes, at + id.length, false)
      if (size === undefined) return end
      // An unknown-size cluster ends where the next top-level element begins.
      if (parent === ids.cluster && segmentChildren.has(id.value)) return at
      const body = at + id.length + size.length
      const bodyEnd = size.unknown ? end : Math.min(end, body + size.value)
      const tracksEntry = tracks.at(-1)
      switch (id.value) {
        case ids.timecodeScale:
          timecodeScale = uint(bytes, body, bodyEnd) || timecodeScale
          break
        case ids.trackEntry:
          tracks.push({ number: 0, type: 0, codecId: '', width: 0, height: 0 })
          break
        case ids.trackNumber:
          if (tracksEntry !== undefined) tracksEntry.number = uint(bytes, body, bodyEnd)
          break
        case ids.trackType:
          if (tracksEntry !== undefined) tracksEntry.type = uint(bytes, body, bodyEnd)
          break
        case ids.codecId:
          if (tracksEntry !== undefined)
            tracksEntry.codecId = String.fromCharCode(...bytes.subarray(body, bodyEnd))
          break
        case ids.codecPrivate:
          if (tracksEntry !== undefined) tracksEntry.codecPrivate = bytes.slice(body, bodyEnd)
          break
        case ids.pixelWidth:
          if (tracksEntry !== undefined) tracksEntry.width = uint(bytes, body, bodyEnd)
          break
        case ids.pixelHeight:
          if (tracksEntry !== undefined) tracksEntry.height = uint(bytes, body, bodyEnd)
          break
        case ids.timecode:
          if (parent === ids.cluster) clusterTime = uint(bytes, body, bodyEnd)
          break
        case ids.simpleBlock:
          block(body, bodyEnd, undefined)
          break
        case ids.block:
          group.block = { at: body, end: bodyEnd }
          break
        case ids.referenceBlock:
          group.references = true
          break
      }
      if (id.value === ids.blockGroup) {
        group.block = undefined
        group.references = false
        if (depth < maxDepth) read(body, bodyEnd, id.value, depth + 1)
        // (read() set them: TypeScript cannot see through the call.)
        const found = group.block as { at: number; end: number } | undefined
        if (found !== undefined) block(found.at, found.end, !group.references)
        at = bodyEnd
      } else if (masters.has(id.value) && depth < maxDepth) {
        at = read(body, bodyEnd, id.value, depth + 1)
        if (!size.unknown) at = bodyEnd
      } else at = bodyEnd
    }
    return end
  }

  const header = vint(bytes, 0, true)
  if (header?.value !== ids.ebml) throw new VideoInputError('it is not a Matroska or WebM file')
  read(0, bytes.length, 0, 0)
  const chosen = video()
  if (chosen === undefined) throw new VideoInputError('it has no video stream')
  if (laced || samples.length === 0) return undefined
  const codec = codecOf(chosen)
  if (codec === undefined) return undefined
  return {
    codec,
    codedWidth: chosen.width,
    codedHeight: chosen.height,
    ...(chosen.codecId === 'V_MPEG4/ISO/AVC' &&
      chosen.codecPrivate !== undefined && { description: chosen.codecPrivate }),
    samples,
  }
}

/** The WebCodecs codec string of a Matroska codec id; undefined for one not handled here. */
function codecOf(track: Track): string | undefined {
  const hex = (n: number) => n.toString(16).padStart(2, '0')
  switch (track.codecId) {
    case 'V_VP8':
      return 'vp8'
    case 'V_VP9':
      // Profile 0, level 1, 8 bits: the decoder reads the real ones from the stream.
      return 'vp09.00.10.08'
    case 'V_MPEG4/ISO/AVC': {
      const avcC = track.codecPrivate
      if (avcC === undefined || avcC.length < 4) return undefined
      return `avc1.${hex(avcC[1]!)}${hex(avcC[2]!)}${hex(avcC[3]!)}`
    }
    default:
      return undefined
  }
}
