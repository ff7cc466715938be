import { join } from 'node:path'
import { probeVideo } from '../../peer/jobs/match/ffmpeg-frames.ts'
import { allPhases } from '../../peer/jobs/match/fingerprint.ts'
import { segmentsOf } from '../../peer/jobs/match/fingerprint-kind.ts'
import type { VideoFingerprintReport } from '../../peer/jobs/match/test-page.ts'
import { openBundledPage } from '../bundled-page.ts'
import { repoRoot } from '../options.ts'

/*
 * How fast a browser participant fingerprints video (`browser.fingerprint…` in `crowdmesh bench`):
 * the page decodes an MP4 with WebCodecs and reduces each sampled frame on the GPU (WebGL 2) or the
 * CPU, in the same Chromium, on the same video, through the same code as a participant's task; an
 * MKV (demuxed in the page too); and the same MP4 through the <video> element, the path of other
 * containers and of pages without WebCodecs.
 */

/** One way of fingerprinting in the page. */
export interface BrowserFingerprintFigure {
  video: string
  /** The transform as the page named it (`webgl2`, `cpu`). */
  backend: string
  frames: number
  /** Sampled frames per second of wall time, fetching, demuxing and decoding included. */
  framesPerSec: number
}

/** The browser's fingerprinting figures. */
export interface BrowserFingerprintBench {
  webgl: BrowserFingerprintFigure
  cpu: BrowserFingerprintFigure
  matroska: BrowserFingerprintFigure
  videoElement: BrowserFingerprintFigure
}

/** Runs it on the shared samples in `dataDir`: a warm-up, then at least `minSeconds` a way. */
export async function runBrowserFingerprintBench(init: {
  dataDir: string
  chromiumFlags?: readonly string[]
  minSeconds?: number
  onProgress?: (done: number, total: number) => void
}): Promise<BrowserFingerprintBench> {
  const page = await openBundledPage({
    pageDir: join(repoRoot, 'peer', 'jobs', 'match'),
    html: 'test-page.html',
    // A secure context, as an event served over https is: WebCodecs is offered only there.
    origin: 'http://localhost',
    dataDir: init.dataDir,
    ready: (p) =>
      p.waitForFunction(() => window.videoFingerprintTest !== undefined, undefined, { timeout: 30_000 }),
    ...(init.chromiumFlags !== undefined && { chromiumFlags: init.chromiumFlags }),
  })
  try {
    const chair = 'tmk/chair-orig-22-sd-bar.mp4'
    const ways = [
      ['webgl', chair, 'webgl', 'auto'],
      ['cpu', chair, 'cpu', 'auto'],
      ['matroska', 'distractors/asl-again.mkv', 'cpu', 'auto'],
      ['videoElement', chair, 'cpu', 'element'],
    ] as const
    const out: Partial<BrowserFingerprintBench> = {}
    let step = 0
    for (const [name, video, backend, decoder] of ways) {
      const { duration } = await probeVideo(join(init.dataDir, video))
      const request = {
        url: page.dataUrl(video),
        backend,
        decoder,
        first: 0,
        count: segmentsOf(duration),
        phases: [...allPhases],
        duration,
      }
      const once = async (): Promise<VideoFingerprintReport> => {
        const report = await page.page.evaluate((r) => window.videoFingerprintTest!.fingerprint(r), request)
        if (report.error !== undefined) throw new Error(`${video} (${backend}): ${report.error.message}`)
        return report
      }
      await once()
      let frames = 0
      let ms = 0
      let last: VideoFingerprintReport | undefined
      while (ms < (init.minSeconds ?? 3) * 1000 || last === undefined) {
        last = await once()
        frames += last.frames
        ms += last.ms
      }
      out[name] = {
        video,
        backend: last.backend,
        frames: last.frames,
        framesPerSec: Math.round((frames / ms) * 1000),
      }
      init.onProgress?.(++step, ways.length)
    }
    return out as BrowserFingerprintBench
  } finally {
    await page.close()
  }
}

/** The figures, as `bench.json` holds them. */
export function browserFingerprintFigures(bench: BrowserFingerprintBench): Record<string, unknown> {
  return {
    'browser.fingerprintWebglFramesPerSec': bench.webgl.framesPerSec,
    'browser.fingerprintCpuFramesPerSec': bench.cpu.framesPerSec,
    'browser.fingerprintMatroskaFramesPerSec': bench.matroska.framesPerSec,
    'browser.fingerprintVideoElementFramesPerSec': bench.videoElement.framesPerSec,
    'browser.fingerprint': bench,
  }
}

/** The line of the printed table. */
export function browserFingerprintTable(bench: BrowserFingerprintBench): string {
  return (
    `  browser.fingerprintFramesPerSec     ${bench.webgl.framesPerSec} WebGL 2 vs ${bench.cpu.framesPerSec} CPU ` +
    `(WebCodecs, ${bench.cpu.video}); ${bench.matroska.framesPerSec} CPU (WebCodecs, ${bench.matroska.video}); ` +
    `${bench.videoElement.framesPerSec} through the <video> element (CPU, ${bench.videoElement.video})\n`
  )
}
