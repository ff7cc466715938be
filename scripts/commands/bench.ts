import { type ConsoleBenchReport, runConsoleBench } from '../bench/console.ts'
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { dirname, resolve } from 'node:path'
import { FrameAggregation } from '../../peer/jobs/vertex/aggregator.ts'
import { decideFrame } from '../../peer/jobs/vertex/outcome.ts'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'
import { loadMiddlebury, type MultiViewDataset } from '../../peer/datasets/middlebury.ts'
import { runLocalJob } from '../../peer/jobs/vertex/run-job.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { samplingDefaults } from '../../peer/jobs/vertex/defaults.ts'
import { InvalidOptionError } from '../../peer/protocol/errors.ts'
import type { BlockResult, VertexJob } from '../../peer/jobs/vertex/block.ts'
import { alphaForCoverage } from '../../peer/jobs/vertex/sampling.ts'
import { targetSpace } from '../../peer/jobs/vertex/target-space.ts'
import { builtInProfiles } from '../../peer/simulator/profile.ts'
import { type SimulationReport, simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'
import { dataChannelMBps, type RealMeshReport, runRealMesh } from '../bench/mesh.ts'
import { runBrowserBench } from '../bench/browser.ts'
import { frameKeyCost } from '../bench/frame-keys.ts'
import { publishPercentiles, runRecordingBench } from '../bench/recording.ts'
import { runJobsBench } from '../bench/jobs.ts'
import { defaultVideoMatchingDir, matchingTargets, runMatchingBench } from '../bench/matching.ts'
import {
  browserFingerprintFigures,
  browserFingerprintTable,
  runBrowserFingerprintBench,
} from '../bench/browser-fingerprint.ts'
import { poolFigures, poolTable, poolTargets, runPoolBench } from '../bench/pool-figures.ts'
import { runMatchRunsBench, runsFigures, runsTable } from '../bench/match-runs.ts'
import { matchingTable } from '../bench/matching-table.ts'
import { runTrustBench, trustTable } from '../bench/trust.ts'
import { matchTrustTable, runMatchTrustBench } from '../bench/trust-match.ts'
import { schedulerOpsPerSec } from '../bench/scheduler.ts'
import { defaultDataset, parseCommand, positiveInt, stringOption, UsageError } from '../options.ts'
import { type ProgressBar, progressBar } from '../progress.ts'

const help = `Usage: crowdmesh bench [options]

Measures, on templeSparseRing (16 photographs, 640×480):
  cpuWorker.vertexViewsPerSecPerCore  data threads one CPU core colours per second   (target ≥ 5 M)
  aggregator.resultsPerSec            thread results the aggregator takes per second  (target ≥ 20 M)
  job.temple128.seconds               the whole job, 128³ grid × 16 views, all cores   (target ≤ 10 s)
  job.temple128.sweepRatio            its time over the same job without the depth sweep and the
                                      surface refinement, run just before it (≤ 1.5)
  job.temple128.loopHeldMs            the longest the coordinator's event loop was held at once in that
                                      job, ms (≤ 250: the frame is decided in a thread), beside the
                                      same job deciding on the loop (decidingOnLoop.loopHeldMs)
and the scheduler and the simulator:
  scheduler.opsPerSec.participants1000 / .participants10000
                                      lease grants + accepted results per second, one core (≥ 100 k)
  simulate.seed1000x10min             1,000 participants × 10 minutes (seed profile): wall seconds
                                      (≤ 30 s) and participant-seconds per wall second
  simulate.failures                   the same event with churn 20 %/min and 5 %/min crashes: lost and
                                      double-counted threads (0) and p99 latency against the calm run (≤ 2×)
and the mesh, with real Node participant processes over WebRTC on loopback:
  mesh.joinToFirstLeaseMs             join link opened to first lease, 20 participants (p50/p95)
  mesh.outcomeGossipMs                frame complete to every participant holding its outcome
  mesh.resultThroughputMBps           framed block results over one WebRTC data channel
  mesh.maxParticipants                participants one coordinator serves before frame latency doubles
and two jobs in one event over the real mesh (a live vertex job at 1 fps and a batch image-filter
job, Node participant processes; about a minute and a half):
  jobs.liveLatencyRatio               the live job's frame latency p50 beside the batch job, over
                                      the same without it (≤ 1.2)
  jobs.batchShareOfLeftover           of the crowd's time the live job leaves, the share the batch
                                      job used, from each kind's throughput alone (≥ 0.8)
and the browser participant, in headless Chromium on the same blocks:
  browser.webglVertexViewsPerSec      data threads the WebGL 2 backend colours per second (readback
                                      included), beside browser.webgl1… and browser.cpuVertexViewsPerSec
  browser.frameTimeMs                 the page's frame time while computing at the default duty cycle
  browser.fingerprintFramesPerSec     video frames fingerprinted per second in the page: an MP4
                                      through WebCodecs with the WebGL 2 transform and with the CPU's,
                                      an MKV, and the MP4 through the <video> element (needs the
                                      shared videos)
and per-frame keys (AES-256-GCM through WebCrypto):
  frameKeys.overheadPercent           added time per default-size block: sealing its result and
                                      opening its frame, against colouring it on one core
and recordings, through the real upload protocol and server peer (ffmpeg):
  recording.publishToPlayableMs       publish pressed to the moov-first MP4 downloadable, for 1, 10
                                      and 60-minute recordings fed at 8× real time, p50/p95 over
                                      10, 5 and 2 recordings (≤ 1 s at p95)
  recording.baselineStopToPlayableMs  uploading the whole 10-minute file after recording, then
                                      processing it (the recordings should be ≥ 20× faster)
and video matching, one core (about two minutes; the shared TMK videos' fingerprints are cached in
out/bench-cache/matching):
  matching.fingerprintFramesPerSecPerCore
                                      sampled frames (16 a second) Node fingerprints per CPU-second,
                                      ffmpeg decoding included, and without decoding
  matching.bruteForcePairsPerSecPerCore
                                      800-bit fingerprint pairs brute force compares per second (≥ 20 M)
  matching.lsh.*                      1 M references, 10 k queries (planted near-duplicates at known
                                      distances, the real videos, unrelated ones), for each band layout:
                                      candidates per query, recall against brute force at the
                                      threshold (≥ 0.99), recall by distance, build and query time and
                                      the speed-up over brute force on the same queries (≥ 50×)
and the durable task pool of match runs (SQLite, one core, 1 M tasks; about a minute):
  pool.grantsAndCompletionsPerSec     grants plus completions per second, each its own commit, and
                                      with 64 writes a commit (≥ 20 k), and the process's memory
  locality.bytesSavedRatio            a simulated run (1,000 participants, 100 k user videos × 10 k
                                      references) leased through the pool with locality-aware grants
                                      and snapshot caches, against without: bytes copied (≥ 10×
                                      fewer) and time to finish; locality.tailSeconds, 95 % to 100 %
                                      done, with and without length grouping; locality.churn, the
                                      same run with 0.5 % of the crowd replaced a minute
  runs.killedAndResumed               the shared set plus its edits as a pooled match run over the
                                      real mesh, its coordinator SIGKILLed half-way and served again:
                                      the same matches as an uninterrupted run, none twice
and result validation against liars (a simulated live vertex job, 1,000 participants of the event
crowd for 2 minutes; about three minutes):
  trust.vertex                        for no adversaries, then 5 %, 20 % and 40 % of each adversary
                                      model and of their mix: wrong vertices published (≤ 0.1 % at
                                      20 %), work computed beyond one copy (≤ 15 % at 20 %, ≤ 5 % at
                                      0 %), the coordinator's checks (its cost per thread measured on
                                      the real checker), time to quarantine, false accusations (0),
                                      latency against no adversaries (≤ 1.3×); at 20 % of the mix,
                                      trusting nobody and validating without checks beside them
and result validation in a match run (simulated, 1,000 participants of the match-run crowd for 20
minutes, slices of 64 references; about twenty-five minutes):
  trust.match                         for no adversaries, then 5 %, 20 % and 40 % of each adversary
                                      model and of their mix: true matches kept (≥ 99 % at 20 %) and
                                      invented ones (0) in the slices standing at the end, work beyond
                                      one copy (≤ 15 % at 20 %, ≤ 5 % at 0 %), slices computed again
                                      once a liar answerable for them was caught, time to quarantine,
                                      false accusations (0), latency and run time against no
                                      adversaries (≤ 1.3×); at 20 % of the mix, trusting nobody
and prints them, and writes them as JSON. --skip-simulation leaves out the two long simulations,
--skip-mesh the mesh figures (about eight minutes), --skip-jobs the two-job figures,
--skip-browser the browser figures, --skip-matching the matching figures, --skip-pool the pool's,
--skip-runs the real match run killed and resumed (about five minutes), --skip-trust the
vertex job's validation figures, --skip-trust-match the match run's,
--skip-recording the recording figures (about twenty-five minutes).

Options:
  --dataset DIR   the data set (default: templeSparseRing from the shared data folder)
  --grid N        grid for the job figure                                    [default: 128]
  --out FILE      where the JSON goes                           [default: out/bench.json]
  --json          print the JSON object instead of the table
  --skip-simulation  leave out the 1,000-participant simulations (about a minute and a half)
  --skip-mesh     leave out the mesh figures
  --skip-jobs     leave out the two-job figures
  --skip-browser  leave out the browser figures
  --skip-matching leave out the matching figures
  --skip-pool     leave out the task pool figures
  --skip-runs     leave out the real match run, killed and resumed
  --skip-recording  leave out the recording figures
  --skip-trust    leave out the vertex job's validation figures
  --skip-trust-match  leave out the match run's validation figures
  --skip-console  leave out the operator console's figures (1,000 simulated participants)
  --only LIST     only these sections (and the core figures), comma-separated: simulation, mesh,
                  jobs, browser, matching, pool, runs, trust, trust-match, recording, console
  --recording-minutes 1,10,60
                  the recording lengths to measure              [default: 1,10,60]
  --chromium-flags "FLAGS"
                  Chromium's flags for the browser figures, replacing the SwiftShader defaults (on a
                  machine with a GPU, e.g. "--headless=new --no-sandbox --use-angle=vulkan
                  --enable-gpu --ignore-gpu-blocklist")
  -h, --help      show this help
`

/** The sections `--skip-NAME` leaves out and `--only` keeps (the core figures always run). */
const sections = [
  'simulation',
  'mesh',
  'jobs',
  'browser',
  'matching',
  'pool',
  'runs',
  'trust',
  'trust-match',
  'recording',
  'console',
] as const

/** `crowdmesh bench`. */
export async function benchCommand(args: string[]): Promise<void> {
  const values = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      grid: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      'skip-simulation': { type: 'boolean' },
      'skip-mesh': { type: 'boolean' },
      'skip-jobs': { type: 'boolean' },
      'skip-browser': { type: 'boolean' },
      'skip-matching': { type: 'boolean' },
      'skip-pool': { type: 'boolean' },
      'skip-runs': { type: 'boolean' },
      'skip-recording': { type: 'boolean' },
      'skip-trust': { type: 'boolean' },
      'skip-trust-match': { type: 'boolean' },
      'skip-console': { type: 'boolean' },
      only: { type: 'string' },
      'recording-minutes': { type: 'string' },
      'chromium-flags': { type: 'string' },
    },
    help,
  )
  if (values === undefined) return
  const only = stringOption(values, 'only')
    ?.split(',')
    .map((name) => name.trim())
  for (const name of only ?? [])
    if (!(sections as readonly string[]).includes(name))
      throw new UsageError(`--only: "${name}" is not a section (${sections.join(', ')})`)
  const skip = (name: (typeof sections)[number]) =>
    values[`skip-${name}`] === true || (only !== undefined && !only.includes(name))
  const dir = stringOption(values, 'dataset') ?? defaultDataset()
  if (dir === undefined) throw new InvalidOptionError('templeSparseRing not found: pass --dataset DIR')
  const grid = positiveInt(stringOption(values, 'grid'), 'grid', 128)
  const json = values.json === true
  const outFile = resolve(stringOption(values, 'out') ?? 'out/bench.json')
  const dataset = await loadMiddlebury(dir)
  const bar = progressBar('bench', { quiet: json && !process.stderr.isTTY })

  const space = targetSpace(dataset.box, grid)
  const job: VertexJob = {
    jobId: 'bench',
    space,
    cameras: dataset.cameras,
    maxAreaRadius: samplingDefaults.maxAreaRadius,
    backgroundSum: Math.round(samplingDefaults.backgroundBrightness * 765),
  }
  const total = grid ** 3

  // One core: colour every vertex in four frames, after their decode (cached, as a participant's is).
  const frames = frameSource()
  const benchFrames = dataset.frames.slice(0, 4)
  for (const frame of benchFrames) await frames.get(frame.imageUrl)
  const results: BlockResult[] = []
  let workerSeconds = 0
  for (const [i, frame] of benchFrames.entries()) {
    const image = await frames.get(frame.imageUrl)
    const started = performance.now()
    for (const block of partitionFrame(job.jobId, frame, total, 65_536))
      results.push(colourBlock(job, block, image))
    workerSeconds += (performance.now() - started) / 1000
    bar.update(i + 1, benchFrames.length * 3)
  }
  const vertexViewsPerSecPerCore = (total * benchFrames.length) / workerSeconds

  // Aggregator: the same results again for all 16 cameras (their bytes are what matters, not which camera).
  const aggregation = new FrameAggregation({
    jobId: job.jobId,
    frameIndex: 0,
    cameraIds: dataset.cameras.map((c) => c.id),
    totalVertices: total,
    minCoverageAlpha: alphaForCoverage(0.3),
  })
  const perCamera = results.length / benchFrames.length
  const aggregatorStarted = performance.now()
  for (const camera of dataset.cameras) {
    for (let k = 0; k < perCamera; k++) {
      const r = results[(camera.id % benchFrames.length) * perCamera + k]!
      aggregation.add({ ...r, cameraId: camera.id })
    }
  }
  const aggregatorSeconds = (performance.now() - aggregatorStarted) / 1000
  const resultsPerSec = (total * dataset.cameras.length) / aggregatorSeconds
  const decideStarted = performance.now()
  // Visibility and vote: the depth sweep's and the surface refinement's costs are measured on the
  // real job below (its results here are one camera's copied to others, no scene either could read).
  decideFrame(aggregation, space, dataset.cameras, { sweepPasses: 0, refineSurface: false })
  const decideSeconds = (performance.now() - decideStarted) / 1000
  bar.update(2, 3)

  // The same job without the depth sweep and the surface refinement (what issue 18 added to the
  // decision), run just before it: what they cost, side by side.
  const withoutSweep = await runLocalJob({
    dataset,
    grid,
    outcomeRule: { sweepPasses: 0, refineSurface: false },
    onProgress: (done, all) => bar.update(2 + done / all / 2, 3),
  })
  const run = await runLocalJob({
    dataset,
    grid,
    onProgress: (done, all) => bar.update(2.5 + done / all / 4, 3),
  })
  // The same job deciding on the event loop, as it did before DecideThread: what the loop is spared.
  const onLoop = await runLocalJob({
    dataset,
    grid,
    decideOn: 'loop',
    onProgress: (done, all) => bar.update(2.75 + done / all / 4, 3),
  })
  bar.done()

  const scheduler1000 = schedulerOpsPerSec(1000)
  const scheduler10000 = schedulerOpsPerSec(10_000)
  const simulation = skip('simulation') ? undefined : simulationFigures(json)
  const mesh = skip('mesh') ? undefined : await meshFigures(dataset, json)
  const jobsBar = progressBar('two jobs', { quiet: json })
  const jobs = skip('jobs')
    ? undefined
    : await runJobsBench({ dataset, onProgress: (d, t) => jobsBar.update(d, t) })
  jobsBar.done()
  const chromiumFlags = stringOption(values, 'chromium-flags')
    ?.split(/\s+/)
    .filter((f) => f !== '')
  const browserBar = progressBar('browser', { quiet: json })
  const browser = skip('browser')
    ? undefined
    : await runBrowserBench({
        dataset,
        ...(chromiumFlags !== undefined && { chromiumFlags }),
        onProgress: (d, t) => browserBar.update(d, t),
      })
  const videoDir = defaultVideoMatchingDir()
  const browserFingerprint =
    skip('browser') || videoDir === undefined
      ? undefined
      : await runBrowserFingerprintBench({
          dataDir: videoDir,
          ...(chromiumFlags !== undefined && { chromiumFlags }),
          onProgress: (d, t) => browserBar.update(d, t),
        })
  browserBar.done()
  const keys = await frameKeyCost(dataset, job)
  const matchingBar = stagedProgress('matching', json)
  const matching = skip('matching') ? undefined : await runMatchingBench({ onProgress: matchingBar.update })
  matchingBar.done()
  const poolBar = progressBar('task pool', { quiet: json })
  const pool = skip('pool') ? undefined : await runPoolBench((d, t) => poolBar.update(d, t))
  poolBar.done()
  const runsBar = progressBar('match runs', { quiet: json })
  const runs = skip('runs')
    ? undefined
    : await runMatchRunsBench({ onProgress: (d, t) => runsBar.update(d, t) })
  runsBar.done()
  const trustBar = progressBar('trust', { quiet: json })
  const trust = skip('trust')
    ? undefined
    : await runTrustBench({ dataset, onProgress: (d, t) => trustBar.update(d, t) })
  trustBar.done()
  const trustMatchBar = progressBar('trust in a match run', { quiet: json })
  const trustMatch = skip('trust-match')
    ? undefined
    : runMatchTrustBench({ onProgress: (d, t) => trustMatchBar.update(d, t) })
  trustMatchBar.done()
  const consoleBar = progressBar('console', { quiet: json })
  const consoleFigures = skip('console')
    ? undefined
    : await runConsoleBench({
        ...(chromiumFlags !== undefined && { chromiumFlags }),
        onProgress: (d, t) => consoleBar.update(d, t),
      })
  consoleBar.done()
  const recordingBar = progressBar('recordings', { quiet: json })
  const recording = skip('recording')
    ? undefined
    : await runRecordingBench({
        minutes: recordingMinutes(stringOption(values, 'recording-minutes')),
        onProgress: (d, t) => recordingBar.update(d, t),
      })
  recordingBar.done()
  const publish = recording === undefined ? {} : publishPercentiles(recording.runs)
  // Targets are at p95.
  const publishMs = (m: number) => publish[`${m}min`]?.p95 ?? Number.NaN
  const baseline10 = recording?.baseline.find((b) => b.minutes === 10)

  const figures = {
    machine: { cores: availableParallelism(), node: process.version },
    dataset: dataset.name,
    grid,
    'cpuWorker.vertexViewsPerSecPerCore': Math.round(vertexViewsPerSecPerCore),
    'aggregator.resultsPerSec': Math.round(resultsPerSec),
    'aggregator.decideSeconds': round(decideSeconds),
    [`job.temple${grid}.seconds`]: round(run.seconds),
    [`job.temple${grid}.participants`]: run.participants,
    [`job.temple${grid}.colouredVertices`]: run.outcome.coloured,
    [`job.temple${grid}.withoutSweepSeconds`]: round(withoutSweep.seconds),
    [`job.temple${grid}.sweepRatio`]: round(run.seconds / withoutSweep.seconds),
    [`job.temple${grid}.loopHeldMs`]: run.loopHeldMs,
    [`job.temple${grid}.decidingOnLoop.loopHeldMs`]: onLoop.loopHeldMs,
    [`job.temple${grid}.decidingOnLoop.seconds`]: round(onLoop.seconds),
    'scheduler.opsPerSec.participants1000': Math.round(scheduler1000),
    'scheduler.opsPerSec.participants10000': Math.round(scheduler10000),
    ...(simulation !== undefined && {
      'simulate.participantSecondsPerWallSecond': simulation.calm.participantSecondsPerWallSecond,
      'simulate.seed1000x10min.wallSeconds': simulation.calm.wallSeconds,
      'simulate.seed1000x10min.latencyMs': simulation.calm.latencyMs,
      'simulate.failures.lostThreads': simulation.failing.lostThreads,
      'simulate.failures.doubleCountedThreads': simulation.failing.doubleCountedThreads,
      'simulate.failures.latencyMs': simulation.failing.latencyMs,
      'simulate.failures.p99Ratio':
        Math.round((simulation.failing.latencyMs.p99 / simulation.calm.latencyMs.p99) * 100) / 100,
      'simulate.failures.duplicateWorkShare': simulation.failing.duplicateWorkShare,
      'simulate.failures.crashes': simulation.failing.crashes,
      'simulate.failures.leaves': simulation.failing.leaves,
    }),
    ...(mesh !== undefined && {
      'mesh.joinToFirstLeaseMs': mesh.twenty.joinToFirstLeaseMs,
      'mesh.spawnToFirstLeaseMs': mesh.twenty.spawnToFirstLeaseMs,
      'mesh.participants': mesh.twenty.participants,
      'mesh.frameLatencyMs': mesh.twenty.frameLatencyMs,
      'mesh.outcomeGossipMs': mesh.twenty.outcomeGossipMs,
      'mesh.resultThroughputMBps': Math.round(mesh.channelMBps * 10) / 10,
      'mesh.maxParticipants': mesh.maxParticipants,
      'mesh.latencyByParticipants': mesh.sweep,
    }),
    ...(jobs !== undefined && {
      'jobs.liveLatencyRatio': jobs.liveLatencyRatio,
      'jobs.batchShareOfLeftover': jobs.batchShareOfLeftover,
      'jobs.liveAloneMs': jobs.liveAloneMs,
      'jobs.liveWithBatchMs': jobs.liveWithBatchMs,
      'jobs.liveUnitsPerSec': jobs.liveUnitsPerSec,
      'jobs.batchUnitsPerSec': jobs.batchUnitsPerSec,
      'jobs.setup': {
        participants: jobs.participants,
        grid: jobs.grid,
        fps: jobs.fps,
        seconds: jobs.seconds,
      },
    }),
    ...(browser !== undefined && {
      'browser.renderer': browser.renderer,
      'browser.webglVertexViewsPerSec': Math.round(browser.webglVertexViewsPerSec),
      'browser.webgl1VertexViewsPerSec': Math.round(browser.webgl1VertexViewsPerSec),
      'browser.cpuVertexViewsPerSec': Math.round(browser.cpuVertexViewsPerSec),
      'browser.flaggedShare': browser.flaggedShare,
      'browser.frameTimeMs': browser.frameTimeMs,
      'browser.idleFrameTimeMs': browser.idleFrameTimeMs,
      'browser.dutyCycle': browser.dutyCycle,
    }),
    ...(browserFingerprint !== undefined && browserFingerprintFigures(browserFingerprint)),
    'frameKeys.sealMBps': keys.sealMBps,
    'frameKeys.openMBps': keys.openMBps,
    'frameKeys.frameOpenMs': keys.frameOpenMs,
    'frameKeys.resultSealMs': keys.resultSealMs,
    'frameKeys.blockComputeMs': keys.blockComputeMs,
    'frameKeys.overheadPercent': keys.overheadPercent,
    ...(recording !== undefined && {
      'recording.publishToPlayableMs': publish,
      'recording.runs': recording.runs.map((r) => ({
        minutes: r.minutes,
        publishToPlayableMs: Math.round(r.publishToPlayableMs),
        feedSeconds: round(r.feedSeconds),
      })),
      'recording.bytes': Object.fromEntries(recording.runs.map((r) => [`${r.minutes}min`, r.bytes])),
      ...(baseline10 !== undefined && {
        'recording.baselineStopToPlayableMs.10min': Math.round(baseline10.stopToPlayableMs),
        'recording.baselineUploadMs.10min': Math.round(baseline10.uploadMs),
        'recording.baselineProcessMs.10min': Math.round(baseline10.processMs),
        'recording.speedupAt10min': Math.round(baseline10.stopToPlayableMs / publishMs(10)),
      }),
      'recording.longOverShortRatio': round(publishMs(60) / publishMs(1)),
    }),
    ...(matching !== undefined && {
      ...(matching.fingerprint !== undefined && {
        'matching.fingerprintFramesPerSecPerCore':
          matching.fingerprint.framesPerCpuSecond ?? matching.fingerprint.framesPerWallSecond,
        'matching.fingerprintFramesPerSecPerCoreExcludingDecode':
          matching.fingerprint.framesPerSecExcludingDecode,
        'matching.fingerprint': matching.fingerprint,
      }),
      'matching.bruteForcePairsPerSecPerCore': matching.bruteForce.pairsPerSecPerCore,
      'matching.bruteForceFullDistancePairsPerSecPerCore': matching.bruteForce.fullDistancePairsPerSecPerCore,
      'matching.bruteForce': matching.bruteForce,
      'matching.lsh.corpus': matching.corpus,
      'matching.lsh.layouts': Object.fromEntries(matching.layouts.map((l) => [l.name, l])),
      'matching.lsh.chosen': matching.chosen,
    }),
    ...(pool !== undefined && poolFigures(pool)),
    ...(runs !== undefined && runsFigures(runs)),
    ...(trust !== undefined && { 'trust.vertex': trust }),
    ...(trustMatch !== undefined && { 'trust.match': trustMatch }),
    ...(consoleFigures !== undefined && { console: consoleFigures }),
    targets: {
      'cpuWorker.vertexViewsPerSecPerCore': 5_000_000,
      'aggregator.resultsPerSec': 20_000_000,
      'job.temple128.seconds': 10,
      'job.temple128.sweepRatio': 1.5,
      'job.temple128.loopHeldMs': 250,
      'scheduler.opsPerSec': 100_000,
      'simulate.seed1000x10min.wallSeconds': 30,
      'simulate.failures.p99Ratio': 2,
      'jobs.liveLatencyRatio': 1.2,
      'jobs.batchShareOfLeftover': 0.8,
      'matching.bruteForcePairsPerSecPerCore': matchingTargets.bruteForcePairsPerSecPerCore,
      'matching.lsh.recall': matchingTargets.recall,
      'matching.lsh.speedup': matchingTargets.speedup,
      ...poolTargets,
    },
  }
  await mkdir(dirname(outFile), { recursive: true })
  await writeFile(outFile, `${JSON.stringify(figures, null, 2)}\n`)
  if (json) {
    process.stdout.write(`${JSON.stringify(figures)}\n`)
    return
  }
  const mark = (ok: boolean) => (ok ? 'meets' : 'MISSES')
  process.stdout.write(
    `crowdmesh bench on ${figures.machine.cores} cores, ${dataset.name}, ${grid}³ grid\n` +
      `  cpuWorker.vertexViewsPerSecPerCore  ${(vertexViewsPerSecPerCore / 1e6).toFixed(2)} M/s  (${mark(vertexViewsPerSecPerCore >= 5e6)} ≥ 5 M)\n` +
      `  aggregator.resultsPerSec            ${(resultsPerSec / 1e6).toFixed(1)} M/s  (${mark(resultsPerSec >= 20e6)} ≥ 20 M)\n` +
      `  aggregator.decideSeconds            ${decideSeconds.toFixed(2)} s\n` +
      `  job.temple${grid}.seconds              ${run.seconds.toFixed(2)} s  (${mark(run.seconds <= 10)} ≤ 10 s)\n` +
      `  … without the depth sweep             ${withoutSweep.seconds.toFixed(2)} s: ` +
      `${(run.seconds / withoutSweep.seconds).toFixed(2)}× (${mark(run.seconds <= 1.5 * withoutSweep.seconds)} ≤ 1.5×)\n` +
      `  … event loop held at most            ${run.loopHeldMs} ms (${mark(run.loopHeldMs <= 250)} ≤ 250 ms; ` +
      `${onLoop.loopHeldMs} ms deciding on the loop, job ${onLoop.seconds.toFixed(2)} s)\n` +
      `  scheduler.opsPerSec (1,000 / 10,000)  ${(scheduler1000 / 1000).toFixed(0)} k / ${(scheduler10000 / 1000).toFixed(0)} k ops/s  ` +
      `(${mark(Math.min(scheduler1000, scheduler10000) >= 100_000)} ≥ 100 k)\n` +
      (simulation === undefined
        ? ''
        : `  simulate 1,000 × 10 min (seed)       ${simulation.calm.wallSeconds} s wall, ` +
          `${simulation.calm.participantSecondsPerWallSecond} participant-s per s  (${mark(simulation.calm.wallSeconds <= 30)} ≤ 30 s)\n` +
          `  … with churn 20 %/min, crashes 5 %/min  ${simulation.failing.lostThreads} lost, ${simulation.failing.doubleCountedThreads} double-counted, ` +
          `p99 ${simulation.failing.latencyMs.p99} ms vs ${simulation.calm.latencyMs.p99} ms ` +
          `(${mark(simulation.failing.latencyMs.p99 <= 2 * simulation.calm.latencyMs.p99)} ≤ 2×)\n`) +
      (jobs === undefined
        ? ''
        : `  jobs.liveLatencyRatio               ${jobs.liveLatencyRatio} (live p50 ${jobs.liveWithBatchMs.p50} ms beside batch, ${jobs.liveAloneMs.p50} ms alone; ${mark(jobs.liveLatencyRatio <= 1.2)} ≤ 1.2)\n` +
          `  jobs.batchShareOfLeftover           ${jobs.batchShareOfLeftover} (${mark(jobs.batchShareOfLeftover >= 0.8)} ≥ 0.8)\n`) +
      (mesh === undefined
        ? ''
        : `  mesh.joinToFirstLeaseMs (20 Node)   p50 ${mesh.twenty.joinToFirstLeaseMs.p50} / p95 ${mesh.twenty.joinToFirstLeaseMs.p95} ms ` +
          `(from process start: ${mesh.twenty.spawnToFirstLeaseMs.p50} / ${mesh.twenty.spawnToFirstLeaseMs.p95} ms)\n` +
          `  mesh.outcomeGossipMs                p50 ${mesh.twenty.outcomeGossipMs.p50} / p95 ${mesh.twenty.outcomeGossipMs.p95} ms\n` +
          `  mesh.resultThroughputMBps           ${mesh.channelMBps.toFixed(1)} MB/s over one WebRTC data channel\n` +
          `  mesh.maxParticipants                ${mesh.maxParticipants} (frame latency p50 by participants: ${Object.entries(
            mesh.sweep,
          )
            .map(([n, ms]) => `${n}: ${ms} ms`)
            .join(', ')})\n`) +
      (browser === undefined
        ? ''
        : `  browser.webglVertexViewsPerSec      ${(browser.webglVertexViewsPerSec / 1e6).toFixed(2)} M/s WebGL 2, ` +
          `${(browser.webgl1VertexViewsPerSec / 1e6).toFixed(2)} M/s WebGL 1, ` +
          `vs browser.cpuVertexViewsPerSec ${(browser.cpuVertexViewsPerSec / 1e6).toFixed(2)} M/s (${browser.renderer}; ` +
          `${(browser.flaggedShare * 100).toFixed(2)} % of views left to the CPU)\n` +
          `  browser.frameTimeMs                 p50 ${browser.frameTimeMs.p50} / p95 ${browser.frameTimeMs.p95} / max ${browser.frameTimeMs.max} ms ` +
          `computing at duty cycle ${browser.dutyCycle} (idle: p95 ${browser.idleFrameTimeMs.p95} ms)\n`) +
      (browserFingerprint === undefined ? '' : browserFingerprintTable(browserFingerprint)) +
      `  frameKeys.overheadPercent           ${keys.overheadPercent.perBlockOnly} % per block (result sealed), ` +
      `${keys.overheadPercent.perFrameWorstCase} % with a frame opened per block; AES-GCM ${keys.sealMBps} MB/s seal, ${keys.openMBps} MB/s open\n` +
      (matching === undefined ? '' : matchingTable(matching)) +
      (pool === undefined ? '' : poolTable(pool)) +
      (runs === undefined ? '' : runsTable(runs)) +
      (trust === undefined ? '' : `${trustTable(trust).join('\n')}\n`) +
      (trustMatch === undefined ? '' : `${matchTrustTable(trustMatch).join('\n')}\n`) +
      (consoleFigures === undefined ? '' : consoleTable(consoleFigures)) +
      (recording === undefined
        ? ''
        : `  recording.publishToPlayableMs       ${Object.entries(publish)
            .map(([length, p]) => `${length}: p50 ${p.p50} / p95 ${p.p95} ms (n=${p.n})`)
            .join(', ')} ` +
          `(${mark(Object.values(publish).every((p) => p.p95 <= 1000))} ≤ 1 s at p95; 60 min / 1 min = ${round(publishMs(60) / publishMs(1))}, ${mark(publishMs(60) <= 1.5 * publishMs(1))} ≤ 1.5)\n` +
          (baseline10 === undefined
            ? ''
            : `  recording.baselineStopToPlayableMs  10 min: ${Math.round(baseline10.stopToPlayableMs)} ms (upload ${Math.round(baseline10.uploadMs)} ms on loopback + processing ${Math.round(baseline10.processMs)} ms): ` +
              `${Math.round(baseline10.stopToPlayableMs / publishMs(10))}× slower (${mark(baseline10.stopToPlayableMs >= 20 * publishMs(10))} ≥ 20×)\n`)) +
      `  written to ${outFile}\n`,
  )
}

/** The console's figures against their targets (≤ 1 s to show a change, ≤ 16 ms a frame). */
function consoleTable(c: ConsoleBenchReport): string {
  const mark = (ok: boolean) => (ok ? 'meets' : 'MISSES')
  const ms = (s: { p50: number; p95: number; max: number }) => `p50 ${s.p50} / p95 ${s.p95} / max ${s.max} ms`
  return (
    `  console.joinDelayMs                 ${ms(c.joinDelayMs)} with ${c.participants} participants (${mark(c.joinDelayMs.max <= 1000)} ≤ 1 s)\n` +
    `  console.leaveDelayMs                ${ms(c.leaveDelayMs)} (${mark(c.leaveDelayMs.max <= 1000)} ≤ 1 s)\n` +
    `  console.renderMs                    ${ms(c.renderMs)} per snapshot of ${c.participants} rows (${mark(c.renderMs.p95 <= 16)} ≤ 16 ms at p95)\n` +
    `  console.scrollFrameMs               ${ms(c.scrollFrameMs)}, ${c.scrollFrameMs.over17ms} of ${c.scrollFrameMs.n} frames over 17 ms (${mark(c.scrollFrameMs.p95 <= 17)} 60 Hz at p95; not scrolling: p50 ${c.stillFrameMs.p50} / p95 ${c.stillFrameMs.p95} ms)\n` +
    `  console.scrollDrawMs                ${ms(c.scrollDrawMs)} of script per scroll frame (${mark(c.scrollDrawMs.p95 <= 16)} ≤ 16 ms at p95); sort ${c.sortMs} ms\n` +
    `  console.snapshot                    ${Math.round(c.snapshotBytes / 1024)} KiB, built in p50 ${c.snapshotBuildMs.p50} / p95 ${c.snapshotBuildMs.p95} ms, beside ${c.resultsPerSec} results/s\n`
  )
}

/** The 1,000-participant, 10-minute event, calm and with churn and crashes (batch mode: every frame completes). */
function simulationFigures(quiet: boolean): { calm: SimulationReport; failing: SimulationReport } {
  const init = { ...simulationDefaults, profile: builtInProfiles.seed!, peers: 1000, durationMs: 600_000 }
  const calmBar = progressBar('simulate 1,000 × 10 min', { quiet })
  const calm = simulate({ ...init, onProgress: (d, t) => calmBar.update(d, t) })
  calmBar.done()
  const failingBar = progressBar('… with churn and crashes', { quiet })
  const failing = simulate({
    ...init,
    churnPerMinute: 0.2,
    failRate: 0.05,
    onProgress: (d, t) => failingBar.update(d, t),
  })
  failingBar.done()
  return { calm, failing }
}

/**
 * The mesh figures, with real Node participant processes over WebRTC on loopback: 20 participants
 * joining; outcome gossip; one data channel's throughput; and frame latency as participants are
 * added, until it doubles (the coordinator, or on this machine the shared cores, saturating).
 */
async function meshFigures(
  dataset: MultiViewDataset,
  quiet: boolean,
): Promise<{
  twenty: RealMeshReport
  channelMBps: number
  maxParticipants: number
  sweep: Record<string, number>
}> {
  const bar = progressBar('mesh', { quiet })
  const channelMBps = await dataChannelMBps(128)
  bar.update(1, 8)
  const twenty = await runRealMesh({ dataset, participants: 20, grid: 32, frames: 5 })
  bar.update(2, 8)
  const sweep: Record<string, number> = {}
  let best = Number.POSITIVE_INFINITY
  let maxParticipants = 0
  for (const [i, participants] of [1, 2, 4, 8, 16, 24].entries()) {
    const report = await runRealMesh({ dataset, participants, grid: 32, frames: 3 })
    sweep[participants] = report.frameLatencyMs.p50
    best = Math.min(best, report.frameLatencyMs.p50)
    if (report.frameLatencyMs.p50 <= 2 * best) maxParticipants = participants
    bar.update(3 + i, 8)
  }
  bar.done()
  return { twenty, channelMBps, maxParticipants, sweep }
}

/** A progress bar per stage of a section (each stage's line says how long it took). */
function stagedProgress(
  label: string,
  quiet: boolean,
): { update: (stage: string, done: number, total: number) => void; done: () => void } {
  let current: { stage: string; bar: ProgressBar } | undefined
  return {
    update(stage, done, total) {
      if (current?.stage !== stage) {
        current?.bar.done()
        current = { stage, bar: progressBar(`${label}: ${stage}`, { quiet }) }
      }
      current.bar.update(done, total)
    },
    done() {
      current?.bar.done()
      current = undefined
    },
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}

/** `--recording-minutes 1,10,60`: positive whole minutes. */
function recordingMinutes(text: string | undefined): number[] {
  if (text === undefined) return [1, 10, 60]
  const minutes = text.split(',').map((m) => Number(m.trim()))
  if (minutes.length === 0 || minutes.some((m) => !Number.isInteger(m) || m < 1 || m > 240))
    throw new UsageError(
      `--recording-minutes takes whole minutes from 1 to 240, separated by commas: "${text}"`,
    )
  return minutes
}
