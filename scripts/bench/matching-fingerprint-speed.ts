import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { fingerprintFile } from '../../peer/jobs/match/ffmpeg-frames.ts'
import { fingerprintVideo } from '../../peer/jobs/match/fingerprint.ts'
import { fingerprintFormat } from '../../peer/jobs/match/format.ts'

/* How fast Node fingerprints a video, with ffmpeg's decoding and without (`matching.ts`). */

/** Node's fingerprinting speed on one video. */
export interface FingerprintSpeed {
  video: string
  /** Sampled frames per video (16 a second). */
  frames: number
  /** Frames per CPU-second, Node's and its children's (ffprobe, ffmpeg) together (undefined without /proc to read theirs). */
  framesPerCpuSecond: number | undefined
  /** Share of that CPU time the children took (probing, decoding, sampling, scaling). */
  decodeCpuShare: number | undefined
  /** Frames per second of wall time (ffmpeg decodes beside Node, on another core). */
  framesPerWallSecond: number
  /** Frames per CPU-second of the fingerprinting alone (frames decoded beforehand): one thread. */
  framesPerSecExcludingDecode: number
}

/**
 * This process's CPU time, ms: the clock of the per-core figures. On a shared machine other
 * processes stretch wall time; they do not add to this (the memory and caches they share still count).
 */
export function cpuMs(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

/** CPU seconds of this process's finished children (ffmpeg), from /proc; undefined elsewhere. */
function childCpuSeconds(): number | undefined {
  try {
    const text = readFileSync('/proc/self/stat', 'utf8')
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // cutime and cstime (fields 16 and 17), in USER_HZ ticks: 100 a second on every Linux ABI.
    return (Number(fields[13]) + Number(fields[14])) / 100
  } catch {
    return undefined
  }
}

/**
 * Fingerprints `video` through `fingerprintFile` (ffmpeg decoding, every phase, as a query) until at
 * least `minSeconds` have passed, after a warm-up run; then the fingerprinting alone on frames decoded
 * beforehand.
 */
export async function fingerprintSpeed(
  video: string,
  progress: (stage: string, done: number, total: number) => void,
  minSeconds = 2,
): Promise<FingerprintSpeed> {
  const stage = 'fingerprinting speed'
  progress(stage, 0, 3)
  await fingerprintFile(video)
  progress(stage, 1, 3)
  let frames = 0
  let runs = 0
  const cpuBefore = process.cpuUsage()
  const childBefore = childCpuSeconds()
  const started = performance.now()
  while (runs < 2 || performance.now() - started < minSeconds * 1000) {
    const file = await fingerprintFile(video)
    frames += Math.round(file.duration * fingerprintFormat.sampleFps)
    runs++
  }
  const wall = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const childAfter = childCpuSeconds()
  const nodeCpu = (cpu.user + cpu.system) / 1e6
  const childCpu =
    childBefore === undefined || childAfter === undefined ? undefined : childAfter - childBefore
  progress(stage, 2, 3)

  const decoded = await decodeLuma(video)
  fingerprintVideo(decoded)
  let alone = 0
  let aloneRuns = 0
  const aloneStarted = cpuMs()
  while (aloneRuns < 2 || alone < minSeconds) {
    fingerprintVideo(decoded)
    aloneRuns++
    alone = (cpuMs() - aloneStarted) / 1000
  }
  progress(stage, 3, 3)
  return {
    video: basename(video),
    frames: frames / runs,
    framesPerCpuSecond: childCpu === undefined ? undefined : Math.round(frames / (nodeCpu + childCpu)),
    decodeCpuShare:
      childCpu === undefined ? undefined : Math.round((childCpu / (nodeCpu + childCpu)) * 1000) / 1000,
    framesPerWallSecond: Math.round(frames / wall),
    framesPerSecExcludingDecode: Math.round((decoded.frames.length * aloneRuns) / alone),
  }
}

/** The luminance frames `fingerprintFile` decodes (the same ffmpeg filter), held in memory. */
async function decodeLuma(video: string): Promise<{ size: number; frames: Uint8Array[] }> {
  const { decodeSize, sampleFps } = fingerprintFormat
  const child = spawn(
    'ffmpeg',
    [
      ...['-v', 'error', '-nostdin', '-i', video, '-map', '0:v:0', '-an', '-sn'],
      ...['-vf', `fps=${sampleFps},scale=${decodeSize}:${decodeSize}:flags=area,format=gray`],
      ...['-f', 'rawvideo', 'pipe:1'],
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const chunks: Buffer[] = []
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) chunks.push(chunk)
  const bytes = Buffer.concat(chunks)
  const frameBytes = decodeSize * decodeSize
  const frames: Uint8Array[] = []
  for (let at = 0; at + frameBytes <= bytes.length; at += frameBytes)
    frames.push(new Uint8Array(bytes.subarray(at, at + frameBytes)))
  return { size: decodeSize, frames }
}

// ---------------------------------------------------------------------------------------------
// The synthetic corpus
