import { open } from 'node:fs/promises'
import { ascii, children, concat, find, i32, Mp4LayoutError, u32, u32s } from './mp4-boxes.ts'

/*
 * A moov-first MP4 at publish, at a cost that does not grow with the bytes of the recording.
 *
 * During recording ffmpeg writes a fragmented MP4: an empty moov (codec configuration only), then a
 * moof (sample sizes, durations, flags) and an mdat per fragment. Players seek such files poorly
 * and many tools want a classic MP4: one moov with every sample's table, before the media. Moving
 * the media behind a new moov would copy the whole file. Instead the published MP4 is served as two
 * parts: a header written at publish (ftyp, a moov with complete sample tables, and the header of
 * one mdat box) and then the fragmented file's own bytes after its moov, untouched. The old moof
 * boxes sit inside the new mdat as opaque bytes; the new moov's chunk offsets point at each sample
 * where it already is. Publishing reads only the moof boxes (a few hundred bytes a second of video)
 * and writes the header (about 12 bytes a sample), never the media.
 */

export { Mp4LayoutError }

/** What serving the moov-first MP4 needs: the header, and where the body starts in the fragmented file. */
export interface FaststartLayout {
  header: Uint8Array
  /** Offset in the fragmented file where the body (its first moof) starts. */
  bodyOffset: number
  /** Bytes of body (to the end of the fragmented file as it was read). */
  bodyLength: number
  /** Duration of the longest track, seconds. */
  durationSeconds: number
  samples: number
}

/**
 * A box's table as it will be written (big-endian 32-bit words), grown as fragments arrive: at
 * publish it is copied as it is, so the moov costs a memory copy, not a rebuild.
 */
class WordTable {
  private bytes = new Uint8Array(4096)
  private view = new DataView(this.bytes.buffer)
  /** Words written. */
  length = 0

  push(value: number): void {
    if (4 * (this.length + 1) > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2)
      grown.set(this.bytes)
      this.bytes = grown
      this.view = new DataView(grown.buffer)
    }
    this.view.setUint32(4 * this.length++, value >>> 0)
  }

  get(index: number): number {
    return this.view.getUint32(4 * index)
  }

  set(index: number, value: number): void {
    this.view.setUint32(4 * index, value >>> 0)
  }

  /** The words written, as bytes (a view: copy before the table grows again). */
  words(): Uint8Array {
    return this.bytes.subarray(0, 4 * this.length)
  }
}

/** A run-length table (count, value pairs), as stts and ctts are. */
class RunTable {
  readonly table = new WordTable()
  private last: number | undefined
  /** Values that are not zero (a ctts of zeros is left out). */
  nonZero = 0

  push(value: number): void {
    if (value !== 0) this.nonZero++
    if (value === this.last) {
      const at = this.table.length - 2
      this.table.set(at, this.table.get(at) + 1)
      return
    }
    this.table.push(1)
    this.table.push(value)
    this.last = value
  }

  get runs(): number {
    return this.table.length / 2
  }
}

interface Track {
  id: number
  trak: Uint8Array
  timescale: number
  defaults: { duration: number; size: number; flags: number }
  samples: number
  /** Sum of the sample durations, in the track's timescale. */
  duration: number
  durations: RunTable
  ctos: RunTable
  sizes: WordTable
  /** Each sample's offset in the fragmented file, as 64-bit halves (high, low). */
  offsets: WordTable
  /** 1-based numbers of the sync samples. */
  syncs: WordTable
}

/**
 * An index of a fragmented MP4 kept up to date while ffmpeg writes it: `update` reads only what was
 * added since the last call (box headers, and the moof boxes whole; the media is skipped), so the
 * work at publish is the last fragment or two, whatever the recording's length.
 */
export class FragmentIndex {
  private readonly path: string
  private position = 0
  private ftyp: Uint8Array | undefined
  private moov: Uint8Array | undefined
  private bodyOffset = -1
  private bodyEnd = 0
  private readonly tracks = new Map<number, Track>()
  private movieTimescale = 1000

  constructor(path: string) {
    this.path = path
  }

  /** Reads the boxes completed since the last update (a box still being written waits for the next). */
  async update(): Promise<void> {
    const file = await open(this.path, 'r').catch(() => undefined)
    if (file === undefined) return
    try {
      const { size } = await file.stat()
      // Reads in large windows: one system call covers many small boxes.
      const windowBytes = 1024 * 1024
      let window = new Uint8Array(0)
      let windowStart = 0
      const read = async (position: number, length: number) => {
        if (position < windowStart || position + length > windowStart + window.length) {
          const buffer = new Uint8Array(Math.max(length, Math.min(windowBytes, size - position)))
          const { bytesRead } = await file.read(buffer, 0, buffer.length, position)
          window = buffer.subarray(0, bytesRead)
          windowStart = position
        }
        return window.subarray(position - windowStart, position - windowStart + length)
      }
      while (this.position + 8 <= size) {
        const position = this.position
        const head = await read(position, Math.min(16, size - position))
        const view = new DataView(head.buffer, head.byteOffset, head.byteLength)
        let boxSize = view.getUint32(0)
        const type = ascii(head, 4)
        if (boxSize === 1) {
          if (head.length < 16) break
          boxSize = Number(view.getBigUint64(8))
        } else if (boxSize === 0) break // to the end of the file: only a finished file says so
        if (boxSize < 8 || position + boxSize > size) break // still being written
        if (type === 'ftyp') this.ftyp = (await read(position, boxSize)).slice()
        else if (type === 'moov') {
          this.moov = (await read(position, boxSize)).slice()
          this.movieTimescale = readMoov(this.moov, this.tracks)
        } else if (type === 'moof') {
          if (this.bodyOffset < 0) this.bodyOffset = position
          readMoof(await read(position, boxSize), position, this.tracks)
        }
        this.position = position + boxSize
        // The body ends after the last complete mdat.
        if (type === 'mdat' && this.bodyOffset >= 0) this.bodyEnd = this.position
      }
    } finally {
      await file.close()
    }
  }

  /** The moov-first layout of what is indexed now. */
  layout(): FaststartLayout {
    const { ftyp, moov, tracks, bodyOffset } = this
    if (ftyp === undefined || moov === undefined)
      throw new Mp4LayoutError('no ftyp and moov at the start of the MP4')
    if (bodyOffset < 0) throw new Mp4LayoutError('the MP4 has no fragments')
    const bodyLength = this.bodyEnd - bodyOffset
    // The tables are already encoded: the moov is copied together once, with the fragmented file's
    // offsets; then, its size known, each chunk offset is moved by where the body now starts.
    const chunkOffsets: number[] = []
    const built = buildMoov(moov, tracks, this.movieTimescale, chunkOffsets)
    const header = concat(ftyp, built, mdatHeader(bodyLength))
    const shift = header.length - bodyOffset
    const view = new DataView(header.buffer)
    for (const at of chunkOffsets) {
      const p = ftyp.length + at
      const count = view.getUint32(p)
      for (let i = 0, q = p + 4; i < count; i++, q += 8) {
        const offset = view.getUint32(q) * 2 ** 32 + view.getUint32(q + 4) + shift
        view.setUint32(q, Math.floor(offset / 2 ** 32))
        view.setUint32(q + 4, offset >>> 0)
      }
    }
    let samples = 0
    let duration = 0
    for (const t of tracks.values()) {
      samples += t.samples
      duration = Math.max(duration, t.duration / t.timescale)
    }
    return { header, bodyOffset, bodyLength, durationSeconds: duration, samples }
  }
}

/** Builds the moov-first layout of a whole fragmented MP4 file at once (tests, the baseline). */
export async function faststartLayout(path: string): Promise<FaststartLayout> {
  const index = new FragmentIndex(path)
  await index.update()
  return index.layout()
}

function readMoov(moov: Uint8Array, tracks: Map<number, Track>): number {
  let movieTimescale = 1000
  for (const child of children(moov, 8)) {
    if (child.type === 'mvhd') {
      const version = child.data[0]!
      movieTimescale = u32(child.data, version === 1 ? 20 : 12)
    } else if (child.type === 'trak') {
      const trak = child.box
      const tkhd = find(trak, ['tkhd'])!
      const id = u32(tkhd, tkhd[0] === 1 ? 20 : 12)
      const mdhd = find(trak, ['mdia', 'mdhd'])!
      const timescale = u32(mdhd, mdhd[0] === 1 ? 20 : 12)
      tracks.set(id, {
        id,
        trak,
        timescale,
        defaults: { duration: 0, size: 0, flags: 0 },
        samples: 0,
        duration: 0,
        durations: new RunTable(),
        ctos: new RunTable(),
        sizes: new WordTable(),
        offsets: new WordTable(),
        syncs: new WordTable(),
      })
    } else if (child.type === 'mvex') {
      for (const trex of children(child.box, 8)) {
        if (trex.type !== 'trex') continue
        const track = tracks.get(u32(trex.data, 4))
        if (track !== undefined)
          track.defaults = {
            duration: u32(trex.data, 12),
            size: u32(trex.data, 16),
            flags: u32(trex.data, 20),
          }
      }
    }
  }
  return movieTimescale
}

function readMoof(moof: Uint8Array, moofOffset: number, tracks: Map<number, Track>): void {
  for (const traf of children(moof, 8)) {
    if (traf.type !== 'traf') continue
    let track: Track | undefined
    let base = moofOffset
    let duration = 0
    let size = 0
    let flags = 0
    for (const box of children(traf.box, 8)) {
      const d = box.data
      const boxFlags = u32(d, 0) & 0xffffff
      // Optional fields follow in order, each present when its flag is set.
      let p = 8
      const field = (flag: number, signed = false): number | undefined => {
        if ((boxFlags & flag) === 0) return undefined
        p += 4
        return signed ? i32(d, p - 4) : u32(d, p - 4)
      }
      if (box.type === 'tfhd') {
        track = tracks.get(u32(d, 4))
        if (track === undefined) throw new Mp4LayoutError(`a fragment names unknown track ${u32(d, 4)}`)
        ;({ duration, size, flags } = track.defaults)
        if (boxFlags & 0x1) {
          base = Number(new DataView(d.buffer, d.byteOffset).getBigUint64(p))
          p += 8
        }
        field(0x2) // sample description index
        duration = field(0x8) ?? duration
        size = field(0x10) ?? size
        flags = field(0x20) ?? flags
      } else if (box.type === 'trun' && track !== undefined) {
        const signedCto = d[0] === 1
        const count = u32(d, 4)
        const dataOffset = field(0x1, true) ?? 0
        const firstFlags = field(0x4)
        let offset = base + dataOffset
        for (let i = 0; i < count; i++) {
          const sampleDuration = field(0x100) ?? duration
          const sampleSize = field(0x200) ?? size
          const sampleFlags = field(0x400) ?? (i === 0 && firstFlags !== undefined ? firstFlags : flags)
          track.samples++
          track.duration += sampleDuration
          track.durations.push(sampleDuration)
          track.sizes.push(sampleSize)
          // 64-bit offsets as two 32-bit halves: exact below 2^53 without BigInt.
          track.offsets.push(Math.floor(offset / 2 ** 32))
          track.offsets.push(offset >>> 0)
          track.ctos.push(field(0x800, signedCto) ?? 0)
          // sample_is_non_sync_sample is bit 16 of the sample flags.
          if ((sampleFlags & 0x10000) === 0) track.syncs.push(track.samples)
          offset += sampleSize
        }
      }
    }
  }
}

/**
 * The new moov: mvhd and each trak with complete sample tables and durations; no mvex. Where each
 * co64 table's entry count sits (from the moov's start) is added to `chunkOffsets`.
 */
function buildMoov(
  moov: Uint8Array,
  tracks: Map<number, Track>,
  movieTimescale: number,
  chunkOffsets: number[],
): Uint8Array {
  let movieDuration = 0
  for (const t of tracks.values())
    movieDuration = Math.max(movieDuration, (t.duration * movieTimescale) / t.timescale)
  const tree = node('moov')
  for (const child of children(moov, 8)) {
    if (child.type === 'mvex') continue
    if (child.type === 'mvhd') tree.parts.push(withDuration(child.box, Math.round(movieDuration), 'mvhd'))
    else if (child.type === 'trak') {
      const tkhd = find(child.box, ['tkhd'])!
      const track = tracks.get(u32(tkhd, tkhd[0] === 1 ? 20 : 12))!
      tree.parts.push(buildTrak(child.box, track, movieTimescale))
    } else tree.parts.push(child.box)
  }
  return write(tree, chunkOffsets)
}

/** A box to be written: its parts are bytes or boxes; a `co64` marks its table's place. */
interface BoxNode {
  type: string
  parts: (Uint8Array | BoxNode)[]
  co64?: boolean
}

const node = (type: string, ...parts: (Uint8Array | BoxNode)[]): BoxNode => ({ type, parts })

/** Writes a box tree in one allocation; notes where each co64 table's entry count lands. */
function write(tree: BoxNode, chunkOffsets: number[]): Uint8Array {
  const sizeOf = (n: BoxNode | Uint8Array): number =>
    n instanceof Uint8Array ? n.length : 8 + n.parts.reduce((total, p) => total + sizeOf(p), 0)
  const out = new Uint8Array(sizeOf(tree))
  const view = new DataView(out.buffer)
  const put = (n: BoxNode | Uint8Array, at: number): number => {
    if (n instanceof Uint8Array) {
      out.set(n, at)
      return at + n.length
    }
    const start = at
    for (let i = 0; i < 4; i++) out[at + 4 + i] = n.type.charCodeAt(i)
    // A co64's payload is its version/flags word, then the entry count.
    if (n.co64 === true) chunkOffsets.push(at + 12)
    at += 8
    for (const part of n.parts) at = put(part, at)
    view.setUint32(start, at - start)
    return at
  }
  put(tree, 0)
  return out
}

function buildTrak(trak: Uint8Array, t: Track, movieTimescale: number): BoxNode {
  const tree = node('trak')
  for (const child of children(trak, 8)) {
    if (child.type === 'edts') continue // an edit list written for an empty moov would cut the media
    if (child.type === 'tkhd')
      tree.parts.push(
        withDuration(child.box, Math.round((t.duration * movieTimescale) / t.timescale), 'tkhd'),
      )
    else if (child.type === 'mdia') tree.parts.push(rebuild(child.box, t))
    else tree.parts.push(child.box)
  }
  return tree
}

function rebuild(container: Uint8Array, t: Track): BoxNode {
  const tree = node(ascii(container, 4))
  for (const child of children(container, 8)) {
    if (child.type === 'mdhd') tree.parts.push(withDuration(child.box, t.duration, 'mdhd'))
    else if (child.type === 'minf') tree.parts.push(rebuild(child.box, t))
    else if (child.type === 'stbl') tree.parts.push(sampleTable(child.box, t))
    else tree.parts.push(child.box)
  }
  return tree
}

function sampleTable(stbl: Uint8Array, t: Track): BoxNode {
  const stsd = children(stbl, 8).find((c) => c.type === 'stsd')
  if (stsd === undefined) throw new Mp4LayoutError('a track has no sample description')
  const full = (type: string, version: number, ...parts: Uint8Array[]) =>
    node(type, u32s([(version & 0xff) << 24]), ...parts)
  const n = t.samples
  const tree = node('stbl', stsd.box, full('stts', 0, u32s([t.durations.runs]), t.durations.table.words()))
  if (t.ctos.nonZero > 0) tree.parts.push(full('ctts', 1, u32s([t.ctos.runs]), t.ctos.table.words()))
  if (t.syncs.length < n) tree.parts.push(full('stss', 0, u32s([t.syncs.length]), t.syncs.words()))
  // One sample a chunk: the samples of the two tracks interleave in the fragments anyway.
  tree.parts.push(full('stsc', 0, u32s([1, 1, 1, 1])))
  tree.parts.push(full('stsz', 0, u32s([0, n]), t.sizes.words()))
  const co64 = full('co64', 0, u32s([n]), t.offsets.words())
  co64.co64 = true
  tree.parts.push(co64)
  return tree
}

/** A copy of an mvhd, tkhd or mdhd with its duration set. */
function withDuration(full: Uint8Array, duration: number, type: 'mvhd' | 'tkhd' | 'mdhd'): Uint8Array {
  const copy = full.slice()
  const view = new DataView(copy.buffer)
  const version = copy[8]!
  // After size, type, version+flags, creation and modification times: timescale (mvhd, mdhd) or
  // track id + reserved (tkhd), then the duration.
  const at = version === 1 ? 8 + 4 + 16 + 4 : 8 + 4 + 8 + 4
  const durationAt = type === 'tkhd' ? at + 4 : at
  if (version === 1) view.setBigUint64(durationAt, BigInt(duration))
  else view.setUint32(durationAt, Math.min(duration, 0xffffffff))
  return copy
}

function mdatHeader(bodyLength: number): Uint8Array {
  const out = new Uint8Array(16)
  const view = new DataView(out.buffer)
  view.setUint32(0, 1)
  out.set([0x6d, 0x64, 0x61, 0x74], 4)
  view.setBigUint64(8, BigInt(bodyLength + 16))
  return out
}
