import { createFile, DataStream, Endianness, MP4BoxBuffer, type Movie, type Sample } from 'mp4box'
import { readLimited } from '../../participant/read-limited.ts'
import { AbortError, FrameFetchError } from '../../protocol/errors.ts'
import type { VideoFingerprinter } from '../kind.ts'
import { matchDefaults, VideoInputError } from './defaults.ts'
import { decodeSpan, type Fingerprint, SegmentFingerprinter } from './fingerprint.ts'
import { fingerprintFormat } from './format.ts'
import { boxLuma, type LumaMatrix, lumaMatrixOf, lumaOfRgba } from './luma-box.ts'
import { type DemuxedSample, type DemuxedTrack, demuxMatroska, isMatroska } from './matroska.ts'
import type { WebglLuma } from './webgl-luma.ts'

/*
 * A browser participant's video decoder for fingerprinting (Node's is ffmpeg: `ffmpeg-frames.ts`).
 * An MP4 or MOV (mp4box.js) or a Matroska or WebM file (`matroska.ts`) is demuxed in the page and
 * decoded with WebCodecs, every frame with its timestamp; any other container, or a codec not
 * handed to WebCodecs here, plays in a <video> element, seeked to each instant.
 * Either way the frame kept for each instant is the one ffmpeg's `fps` filter keeps (the last
 * presented before the instant's half-period ends), and it is reduced to the fingerprint's square of
 * luminance on the GPU (`webgl-luma.ts`) or the CPU (`boxLuma`: WebCodecs' own Y plane, as ffmpeg's
 * `format=gray`). The fingerprints then come from the same code as Node's.
 */

/** The per-frame transform: a decoded frame as `decodeSize`² luminance. */
export interface LumaTransform {
  readonly backend: 'cpu' | 'webgl2'
  luma(source: VideoFrame | HTMLVideoElement, matrix: LumaMatrix | undefined): Promise<Uint8Array>
  dispose(): void
}

/** 8-bit formats whose first plane is Y. */
const yuvFormats = new Set<string>(['I420', 'I420A', 'I422', 'I444', 'NV12'])

/** The CPU transform (the reference): the Y plane where the frame has one, else RGB back to luminance. */
export function cpuLuma(): LumaTransform {
  let canvas: OffscreenCanvas | undefined
  const viaCanvas = (
    source: VideoFrame | HTMLVideoElement,
    width: number,
    height: number,
    matrix: LumaMatrix,
  ) => {
    if (canvas === undefined || canvas.width !== width || canvas.height !== height)
      canvas = new OffscreenCanvas(width, height)
    const context = canvas.getContext('2d', { willReadFrequently: true })
    if (context === null) throw new VideoInputError('this browser offers no 2D canvas to read frames with')
    context.drawImage(source, 0, 0, width, height)
    return boxLuma(lumaOfRgba(context.getImageData(0, 0, width, height).data, width, height, matrix))
  }
  return {
    backend: 'cpu',
    async luma(source, matrix) {
      if (source instanceof HTMLVideoElement) {
        const { videoWidth: width, videoHeight: height } = source
        return viaCanvas(source, width, height, matrix ?? lumaMatrixOf(undefined, height))
      }
      const width = source.visibleRect?.width ?? source.displayWidth
      const height = source.visibleRect?.height ?? source.displayHeight
      // Planar and semi-planar YUV start with the Y plane: the video's own luminance, as ffmpeg's.
      if (source.format !== null && yuvFormats.has(source.format)) {
        const buffer = new Uint8Array(source.allocationSize())
        const layout = await source.copyTo(buffer)
        const y = layout[0]!
        // ffmpeg's gray is full range: a limited-range (TV) Y plane is stretched to 0..255.
        return boxLuma(
          { data: buffer, width, height, stride: y.stride, offset: y.offset },
          fingerprintFormat.decodeSize,
          source.colorSpace.fullRange !== true,
        )
      }
      return viaCanvas(source, width, height, matrix ?? lumaMatrixOf(source.colorSpace.matrix, height))
    },
    dispose() {
      canvas = undefined
    },
  }
}

/** The GPU transform over an open `WebglLuma`. */
export function webglLumaTransform(gl: WebglLuma): LumaTransform {
  return {
    backend: 'webgl2',
    luma(source, matrix) {
      if (source instanceof HTMLVideoElement) {
        const { videoWidth: width, videoHeight: height } = source
        return Promise.resolve(gl.luma(source, width, height, matrix ?? lumaMatrixOf(undefined, height)))
      }
      const height = source.displayHeight
      return Promise.resolve(
        gl.luma(
          source,
          source.displayWidth,
          height,
          matrix ?? lumaMatrixOf(source.colorSpace.matrix, height),
        ),
      )
    },
    dispose: () => gl.dispose(),
  }
}

/** Options of the browser's video fingerprinter. */
export interface BrowserVideosInit {
  transform: LumaTransform
  /** Largest video fetched (default `matchDefaults.maxBrowserVideoBytes`). */
  maxBytes?: number
  /**
   * `element` plays every video in a <video> element, as a browser without WebCodecs (or outside a
   * secure context) does: for measuring that path (default `auto`).
   */
  decoder?: 'auto' | 'element'
  /** Called with the frames decoded so far (progress, benchmarks). */
  onFrames?: (frames: number) => void
  /** Called with each sampled frame's luminance (tests compare them with ffmpeg's). */
  onLuma?: (luma: Uint8Array) => void
}

/** Fingerprints videos by URL in the page. */
export function browserVideos(init: BrowserVideosInit): VideoFingerprinter {
  const maxBytes = init.maxBytes ?? matchDefaults.maxBrowserVideoBytes
  return {
    async fingerprint(url, range) {
      const { sampleFps, decodeSize } = fingerprintFormat
      const bytes = await fetchVideo(url, maxBytes, range.signal)
      if (bytes.length === 0) throw new VideoInputError(`${url}: the file is empty`)
      const span = decodeSpan({ first: range.first, count: range.count })
      const firstFrame = Math.round(span.from * sampleFps)
      const endFrame = Math.ceil(span.to * sampleFps)
      const fingerprinter = new SegmentFingerprinter(decodeSize, range, {
        firstFrame,
        duration: range.duration,
      })
      const out: Fingerprint[] = []
      let frames = 0
      const onFrame = (luma: Uint8Array) => {
        init.onLuma?.(luma)
        out.push(...fingerprinter.push(luma))
        frames++
        init.onFrames?.(frames)
      }
      const slots = { first: firstFrame, end: endFrame }
      // MP4 and Matroska are demuxed here for WebCodecs; anything else (or a codec the decoder
      // lacks) plays in a <video> element.
      const track =
        typeof VideoDecoder === 'undefined' || init.decoder === 'element'
          ? undefined
          : isMp4(bytes)
            ? demuxMp4(bytes)
            : isMatroska(bytes)
              ? demuxMatroska(bytes)
              : undefined
      const decoded =
        track !== undefined && (await decodeTrack(track, slots, init.transform, onFrame, range.signal))
      if (!decoded) await seekVideo(bytes, slots, init.transform, onFrame, range.signal)
      range.signal?.throwIfAborted()
      if (frames === 0) throw new VideoInputError(`${url}: no frame could be decoded`)
      const decodedTo = (firstFrame + frames) / sampleFps
      const expectedTo = Math.min(range.duration, span.to)
      if (decodedTo < expectedTo - matchDefaults.maxMissingSeconds)
        throw new VideoInputError(
          `${url}: truncated or damaged: it decodes to ${decodedTo.toFixed(1)} s of the ${range.duration.toFixed(1)} s asked`,
        )
      out.push(...fingerprinter.end())
      return { duration: range.duration, fingerprints: out }
    },
  }
}

async function fetchVideo(
  url: string,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  let response: Response
  try {
    response = await fetch(url, signal ? { signal } : {})
  } catch (error) {
    if (signal?.aborted) throw new AbortError()
    throw new FrameFetchError(`cannot fetch the video ${url}: ${(error as Error).message}`)
  }
  if (!response.ok) throw new FrameFetchError(`cannot fetch the video ${url}: HTTP ${response.status}`)
  return readLimited(response, `the video ${url}`, maxBytes)
}

/** An ISO BMFF file (MP4, MOV, 3GP): its first box is `ftyp` (or a MOV's `moov`/`mdat`/`wide`/`free`). */
function isMp4(bytes: Uint8Array): boolean {
  if (bytes.length < 12) return false
  const type = String.fromCharCode(...bytes.subarray(4, 8))
  return ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip'].includes(type)
}

/** Sampling instants wanted: slots [first, end) at `sampleFps`. */
interface Slots {
  first: number
  end: number
}

/** The last presented frame before slot k's half-period ends is slot k's (ffmpeg's `fps`, round=near). */
const slotEnd = (k: number) => (k + 0.5) / fingerprintFormat.sampleFps

/** Frames decoded ahead of the fingerprinter, at most (each holds a decoded frame until transformed). */
const maxPending = 6

/**
 * Decodes a demuxed video track with WebCodecs over the span. False when this browser cannot decode
 * its codec (the <video> element is tried instead); `VideoInputError` for a broken file.
 */
async function decodeTrack(
  track: DemuxedTrack,
  slots: Slots,
  transform: LumaTransform,
  onFrame: (luma: Uint8Array) => void,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  const { samples } = track
  const config: VideoDecoderConfig = {
    codec: track.codec,
    codedWidth: track.codedWidth,
    codedHeight: track.codedHeight,
    ...(track.description !== undefined && { description: track.description }),
  }
  if ((await VideoDecoder.isConfigSupported(config)).supported !== true) return false
  if (samples.length === 0) throw new VideoInputError('its video track has no frames')
  // ffmpeg starts a file's timeline at its first timestamp (without -copyts); so does this.
  let origin = Number.POSITIVE_INFINITY
  for (const sample of samples) origin = Math.min(origin, sample.time)

  const timeOf = (s: DemuxedSample) => s.time - origin
  // A frame's duration: the median gap between presentation times (the last frame's counts at the end).
  const sorted = samples.map((s) => s.time).sort((a, b) => a - b)
  const gaps = sorted
    .slice(1)
    .map((t, i) => t - sorted[i]!)
    .sort((a, b) => a - b)
  const frameDuration = gaps[gaps.length >> 1] ?? 0
  // Decoding starts at the last key frame well before the first slot's frame, and feeds samples
  // (in decode order) until their presentation is past the last slot, with room for reordering.
  const startAt = slots.first / fingerprintFormat.sampleFps - 0.5
  let start = 0
  samples.forEach((s, i) => {
    if (s.key && timeOf(s) <= startAt) start = i
  })
  while (start > 0 && !samples[start]!.key) start--
  const stopAt = slotEnd(slots.end) + 1

  let k = slots.first
  let failure: Error | undefined
  interface Held {
    frame: VideoFrame
    luma?: Promise<Uint8Array>
  }
  let held: Held | undefined
  let lastTime = -1
  const pending: Promise<Uint8Array>[] = []
  const emit = (entry: Held) => {
    entry.luma ??= transform.luma(entry.frame, undefined)
    pending.push(entry.luma)
  }
  const release = (entry: Held) => {
    if (entry.luma === undefined) entry.frame.close()
    else void entry.luma.finally(() => entry.frame.close()).catch(() => {})
  }
  const decoder = new VideoDecoder({
    output(frame) {
      const t = frame.timestamp / 1e6
      if (k >= slots.end || failure !== undefined) return frame.close()
      lastTime = Math.max(lastTime, t)
      const current: Held = { frame }
      while (k < slots.end && t >= slotEnd(k)) {
        emit(held ?? current)
        k++
      }
      if (held !== undefined && held !== current) release(held)
      held = current
    },
    error(error) {
      failure = new VideoInputError(`the browser could not decode it (${error.message})`)
    },
  })
  let dequeued = Promise.withResolvers<void>()
  decoder.addEventListener('dequeue', () => dequeued.resolve())
  const drain = async (leave: number) => {
    while (pending.length > leave) onFrame(await pending.shift()!)
  }
  try {
    decoder.configure(config)
    for (let i = start; i < samples.length; i++) {
      const sample = samples[i]!
      if (signal?.aborted) throw new AbortError()
      if (failure !== undefined) throw failure
      if (timeOf(sample) > stopAt && sample.key) break
      decoder.decode(
        new EncodedVideoChunk({
          type: sample.key ? 'key' : 'delta',
          timestamp: Math.round(timeOf(sample) * 1e6),
          data: sample.data,
        }),
      )
      await drain(maxPending)
      while (decoder.decodeQueueSize > maxPending && failure === undefined) {
        dequeued = Promise.withResolvers<void>()
        await dequeued.promise
      }
    }
    await decoder.flush().catch((error: unknown) => {
      failure ??= new VideoInputError(`the browser could not decode it (${(error as Error).message})`)
    })
    if (failure !== undefined) throw failure
    // At the end ffmpeg fills the slots whose half-period ends before the last frame does.
    while (held !== undefined && k < slots.end && slotEnd(k) <= lastTime + frameDuration + 1e-6) {
      emit(held)
      k++
    }
    await drain(0)
  } finally {
    if (held !== undefined) release(held)
    if (decoder.state !== 'closed') decoder.close()
  }
  return true
}

/** An MP4's first video track: its samples in decode order (with data) and its decoder description. */
function demuxMp4(bytes: Uint8Array): DemuxedTrack {
  const file = createFile()
  let info: Movie | undefined
  let problem: string | undefined
  const samples: Sample[] = []
  // Extraction is set up as soon as the movie header is read, before the file's buffers are
  // cleaned: the samples' data is handed over while it is still held.
  file.onReady = (movie) => {
    info = movie
    const track = movie.videoTracks[0]
    if (track === undefined) return
    file.onSamples = (_id, _user, some) => {
      for (const sample of some) if (sample.data !== undefined) samples.push(sample)
    }
    file.setExtractionOptions(track.id, undefined, { nbSamples: 1000 })
    file.start()
  }
  file.onError = (_module: string, message: string) => (problem ??= message)
  const buffer = MP4BoxBuffer.fromArrayBuffer(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    0,
  )
  try {
    file.appendBuffer(buffer, true)
    file.flush()
  } catch (error) {
    throw new VideoInputError(`it is not a readable MP4 (${(error as Error).message})`)
  }
  if (info === undefined)
    throw new VideoInputError(`it is not a readable MP4 (${problem ?? 'no movie header'})`)
  const track = info.videoTracks[0]
  if (track === undefined) throw new VideoInputError('it has no video stream')
  let description: Uint8Array | undefined
  const trak = file.getTrackById(track.id)
  for (const entry of trak.mdia.minf.stbl.stsd.entries) {
    const config = entry as unknown as Record<string, { write(stream: DataStream): void } | undefined>
    const box = config.avcC ?? config.hvcC ?? config.vpcC ?? config.av1C
    if (box !== undefined) {
      const stream = new DataStream(undefined, 0, Endianness.BIG_ENDIAN)
      box.write(stream)
      // The box's own 8-byte header is not part of the description.
      description = new Uint8Array(stream.buffer, 8)
      break
    }
  }
  return {
    codec: track.codec,
    codedWidth: track.video?.width ?? 0,
    codedHeight: track.video?.height ?? 0,
    ...(description !== undefined && { description }),
    samples: samples.map((sample) => ({
      time: sample.cts / sample.timescale,
      key: sample.is_sync,
      data: sample.data!,
    })),
  }
}

/** Plays the video in a <video> element, seeked to each slot's instant (any container the browser plays). */
async function seekVideo(
  bytes: Uint8Array,
  slots: Slots,
  transform: LumaTransform,
  onFrame: (luma: Uint8Array) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (typeof document === 'undefined')
    throw new VideoInputError('this page cannot play videos to fingerprint')
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]))
  const video = document.createElement('video')
  video.muted = true
  video.preload = 'auto'
  const event = (name: string) =>
    new Promise<void>((resolve, reject) => {
      const done = () => {
        video.removeEventListener(name, done)
        video.removeEventListener('error', failed)
        resolve()
      }
      const failed = () => {
        video.removeEventListener(name, done)
        video.removeEventListener('error', failed)
        reject(
          new VideoInputError(
            `the browser could not play it (${video.error?.message || 'unsupported or corrupt'})`,
          ),
        )
      }
      video.addEventListener(name, done)
      video.addEventListener('error', failed)
    })
  try {
    const loaded = event('loadeddata')
    video.src = url
    await loaded
    if (video.videoWidth === 0) throw new VideoInputError('it has no video stream')
    const period = 1 / fingerprintFormat.sampleFps
    for (let k = slots.first; k < slots.end; k++) {
      if (signal?.aborted) throw new AbortError()
      // The slot's frame is the last shown before its half-period ends (just before: the element
      // shows the frame whose time has come).
      const instant = slotEnd(k) - 0.001
      if (k * period > video.duration + period / 2) break
      const seeked = event('seeked')
      video.currentTime = Math.min(instant, video.duration)
      await seeked
      onFrame(await transform.luma(video, undefined))
    }
  } finally {
    video.removeAttribute('src')
    video.load()
    URL.revokeObjectURL(url)
  }
}
