import { vertexJobInit } from '../../peer/jobs/vertex/coordinator.ts'
import { DecideThread } from '../../peer/jobs/vertex/decide-thread.ts'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  type FilteredImage,
  type ImageFilterJob,
  imageFilterKind,
} from '../../peer/jobs/image-filter/index.ts'
import type { JobSpec } from '../../peer/jobs/kind.ts'
import { type FrameOutcome, modelVertices } from '../../peer/jobs/vertex/outcome.ts'
import { parseMessage } from '../../peer/protocol/schemas.ts'
import type { FrameReport } from '../../peer/coordinator/coordinator.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { fingerprintJobInit, runMatchRun } from '../../peer/jobs/match/match-run.ts'
import { startEvent } from '../../peer/mesh/event.ts'
import { videosIn } from './match.ts'
import { buildWebApp, webAppBuilt } from '../../signaling/web-app.ts'
import { terminalQr } from '../../peer/console/qr.ts'
import { consoleRecordings } from '../../peer/console/console-recordings.ts'
import { commandLauncher } from '../../peer/mesh/dedicated-devices.ts'
import { configureLogs } from '../../peer/protocol/logger.ts'
import { ParticipantProcess } from '../../peer/mesh/participant-process.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { sideBySide } from '../../peer/quality/evaluate.ts'
import { defaultSplatStyle, renderSplats } from '../../peer/quality/splat-render.ts'
import { vertexCount } from '../../peer/jobs/vertex/target-space.ts'
import { parseCommand, positiveInt, resolveDataset, stringOption, UsageError } from '../options.ts'
import { writeImage, writeOutcomePly } from '../outputs.ts'
import { startRecordingServer } from '../../peer/server/recording-server.ts'
import { type ProcessEnding, processEnding } from '../process-ending.ts'
import { progressBar } from '../progress.ts'

const help = `Usage: crowdmesh start [options]

Runs an event on this machine: the signaling server, the TURN relay (coturn, when installed), the
libp2p circuit relay, the coordinator and the frame store, on 127.0.0.1 (or --host). It builds the
participant web app when it is missing, prints the join link (as a QR code too) and the operator's
console link (a live page of devices, jobs and alerts, to act from; keep it private),
starts local Node participants so that something happens with no browser, and colours the target
space from every camera frame of the data set with whoever joins: open the link in a browser (the
participant web app computes with WebGL and shows the 3D result), or run "crowdmesh join LINK" from
another terminal for a Node participant. Each frame's outcome is written
as a coloured point cloud (outcome.ply) and a rendering beside the first camera's photograph.

With no --dataset it uses templeSparseRing from the shared data folder (../shared/data beside the
repository, or $CROWDMESH_DATA), and a generated synthetic scene when that is not there.

Options:
  --dataset DIR           a Middlebury-format data set, or "synthetic" for the generated scene
  --bbox x0,y0,z0,x1,y1,z1
                          the target space's box (default: from the data set's README.txt)
  --grid N                vertices per axis, N³ in all                             [default: 128]
  --local-participants N  Node participants started as processes on this machine (0: only
                          those who join by the link)                                [default: 2]
  --host ADDR             address every part listens on and join links name: this machine's
                          address on the venue network for phones and laptops to reach it
                                                                             [default: 127.0.0.1]
  --turn auto|required|off
                          coturn for TURN: when installed, always, or never        [default: auto]
  --frame-keys            seal each frame's images and results with a key of that frame alone,
                          handed out in its leases (AES-GCM; off by default)
  --recordings DIR        the event's server peer for recordings keeps them here; the recorder
                          link records screen and camera to it         [default: recordings]
  --no-recordings         run no server peer for recordings
  --filter-images DIR     also filter every PNG in DIR as a second job of the event: a batch
                          image-filter job beside the live 3D job, computed by the same
                          participants with the capacity the 3D job leaves; each filtered image
                          is written to OUT/filtered/
  --filter SPEC           the filter: gaussian:RADIUS:SIGMA, box:RADIUS or
                          bilateral:RADIUS:SIGMA_SPACE:SIGMA_RANGE (radius 1–8)
                                                                       [default: gaussian:2:1]
  --match-ugc DIR         also run a video match run beside the live 3D job: the user videos
  --match-refs DIR        … and the reference videos (see crowdmesh match); the crowd fingerprints
                          and matches them with the capacity the 3D job leaves, browsers included;
                          the matches are written to OUT/matches.json
  --dedicated N           dedicated devices: start up to N dedicated participants while the
                          crowd computes less than the live job's floor, stop them again when
                          it has enough (with hysteresis); shown as such on the console [default: 0]
  --dedicated-command CMD how a dedicated participant starts: a shell command, given the join link
                          in $CROWDMESH_LINK (e.g. ssh box crowdmesh join "$CROWDMESH_LINK")
                                                       [default: a local Node participant process]
  --floor UNITS           the live job's floor, reference units per second [default: its own,
                          from the rate its frames arrive and their size]
  --log-format text|json  logs on stderr as text, or as one JSON object per line [default: text]
  --stay                  keep the event open after the last frame (Ctrl-C ends it)
  --out DIR               where the outcome goes                        [default: out/start-<name>]
  --json                  print one JSON object per line: ready (with joinLink and consoleLink),
                          participant, dedicated,
                          progress, frameOutcome, imageOutcome (with --filter-images),
                          matchOutcome (with --match-ugc), done
  -h, --help              show this help
`

/** `crowdmesh start` (and `npm start`). */
export async function startCommand(args: string[]): Promise<void> {
  // SIGINT, SIGTERM and uncaught errors stop the event in order (coturn included), then end the
  // process by that signal, or with the error (exit code 1).
  const ending = processEnding()
  try {
    await runStart(args, ending)
  } catch (error) {
    if (!ending.signal.aborted) throw error
    // The stop went on regardless; say what else went wrong before ending for the first cause.
    if (error !== ending.signal.reason) process.stderr.write(`crowdmesh start: ${String(error)}\n`)
  } finally {
    ending.dispose()
  }
  ending.settle()
}

async function runStart(args: string[], ending: ProcessEnding): Promise<void> {
  const values = parseCommand(
    args,
    {
      dataset: { type: 'string' },
      bbox: { type: 'string' },
      grid: { type: 'string' },
      'local-participants': { type: 'string' },
      turn: { type: 'string' },
      host: { type: 'string' },
      stay: { type: 'boolean' },
      recordings: { type: 'string' },
      'no-recordings': { type: 'boolean' },
      'frame-keys': { type: 'boolean' },
      'filter-images': { type: 'string' },
      'match-ugc': { type: 'string' },
      'match-refs': { type: 'string' },
      filter: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      dedicated: { type: 'string' },
      'dedicated-command': { type: 'string' },
      floor: { type: 'string' },
      'log-format': { type: 'string' },
    },
    help,
  )
  if (values === undefined) return
  const json = values.json === true
  const emit = (event: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(event)}\n`)
  const say = (line: string) => {
    if (!json) process.stdout.write(`${line}\n`)
  }
  const logFormat = stringOption(values, 'log-format') ?? 'text'
  if (logFormat !== 'text' && logFormat !== 'json')
    throw new UsageError(`--log-format must be text or json, got "${logFormat}"`)
  configureLogs({ format: logFormat })
  const grid = positiveInt(stringOption(values, 'grid'), 'grid', 128)
  const dedicatedText = stringOption(values, 'dedicated')
  const dedicatedMax =
    dedicatedText === undefined || dedicatedText === '0' ? 0 : positiveInt(dedicatedText, 'dedicated', 0)
  const floorText = stringOption(values, 'floor')
  const floor = floorText === undefined ? undefined : Number(floorText)
  if (floor !== undefined && !(floor >= 0 && Number.isFinite(floor)))
    throw new UsageError(`--floor must be a number of units per second, got "${floorText}"`)
  const dedicatedCommand = stringOption(values, 'dedicated-command')
  const localText = stringOption(values, 'local-participants')
  const localCount = localText === '0' ? 0 : positiveInt(localText, 'local-participants', 2)
  const turn = stringOption(values, 'turn') ?? 'auto'
  if (turn !== 'auto' && turn !== 'required' && turn !== 'off')
    throw new UsageError(`--turn must be auto, required or off, got "${turn}"`)
  const dataset = await resolveDataset(stringOption(values, 'dataset'), stringOption(values, 'bbox'), say)
  const out = resolve(stringOption(values, 'out') ?? join('out', `start-${dataset.name}`))
  const job = datasetJob(dataset, grid)
  const imagesDir = stringOption(values, 'filter-images')
  const images =
    imagesDir === undefined
      ? undefined
      : await imagesToFilter(resolve(imagesDir), stringOption(values, 'filter'))
  const ugcDir = stringOption(values, 'match-ugc')
  const refsDir = stringOption(values, 'match-refs')
  if ((ugcDir === undefined) !== (refsDir === undefined))
    throw new UsageError('--match-ugc DIR and --match-refs DIR go together')
  const match =
    ugcDir === undefined || refsDir === undefined
      ? undefined
      : {
          queries: await videosIn(resolve(ugcDir), 'match-ugc'),
          references: await videosIn(resolve(refsDir), 'match-refs'),
          skipSelf: resolve(ugcDir) === resolve(refsDir),
        }

  ending.signal.throwIfAborted()
  // Phones and laptops open the join link: the web app must be there (a fresh clone has none).
  if (!webAppBuilt()) {
    say('  building the participant web app (once; npm run build:web rebuilds it)…')
    await buildWebApp().catch((error: unknown) =>
      say(`  the web app could not be built (${(error as Error).message}); join links show a plain page`),
    )
  }
  // With images to filter or videos to match, the 3D job is the live one and those batch jobs beside it.
  // Frames are decided in a thread of their own (the event loop serves the crowd meanwhile), and
  // their depth sweep spreads over this machine's cores.
  const decider = new DecideThread()
  const vertexJob = vertexJobInit(job, {
    decider,
    ...(images === undefined && match === undefined ? {} : { class: 'live' as const }),
  })
  const event = await startEvent({
    coordinator: {
      jobs: [
        vertexJob,
        ...(images === undefined ? [] : [{ spec: images.spec, kind: imageFilterKind }]),
        ...(match === undefined ? [] : [fingerprintJobInit('match')]),
      ],
    },
    name: dataset.name,
    turn,
    host: stringOption(values, 'host') ?? '127.0.0.1',
    frameKeys: values['frame-keys'] === true,
    ...(dedicatedMax > 0 && {
      dedicated: {
        max: dedicatedMax,
        ...(dedicatedCommand !== undefined && { launch: commandLauncher(dedicatedCommand) }),
        ...(floor !== undefined && { floors: { [vertexJob.spec.jobId]: floor } }),
      },
    }),
  })
  // The event's server peer for recordings, registered with its signaling server: recorder links
  // find it there and upload over WebRTC, or over its WebSocket.
  const recordingsRoot = resolve(stringOption(values, 'recordings') ?? 'recordings')
  const recordings =
    values['no-recordings'] === true
      ? undefined
      : await startRecordingServer({
          root: recordingsRoot,
          host: stringOption(values, 'host') ?? '127.0.0.1',
          eventLink: event.joinLinks.operator!,
          // The coordinator's WebRTC lives in this process too.
          sharesWebRTC: true,
        }).catch(async (error: unknown) => {
          await event.stop()
          throw error
        })
  if (recordings !== undefined) event.console.attachRecordings(consoleRecordings(recordings))
  const participants: ParticipantProcess[] = []
  try {
    // A signal while the event was starting: stop it at once.
    ending.signal.throwIfAborted()
    if (json)
      emit({
        type: 'ready',
        joinLink: event.joinLink,
        consoleLink: event.consoleLink,
        recorderLink: recordings === undefined ? null : event.joinLinks.recorder,
        recordings: recordings === undefined ? null : { url: recordings.url, root: recordingsRoot },
        event: event.event,
        signaling: event.signaling.url,
        turn: event.turn !== undefined,
        frameKeys: values['frame-keys'] === true,
        webApp: webAppBuilt(),
        ...(event.turnNote !== undefined && { turnNote: event.turnNote }),
        dataset: dataset.name,
        cameras: dataset.cameras.length,
        grid,
        out,
      })
    say(
      `crowdmesh: event ${event.event} colouring ${dataset.name} (${dataset.cameras.length} cameras) on a ${grid}³ grid`,
    )
    say(`  join link:  ${event.joinLink}`)
    say(
      webAppBuilt()
        ? '              (open it in a browser to take part with WebGL and watch the 3D result)'
        : '              (the web app is not built: npm run build:web, then open the link in a browser)',
    )
    if (!json) say(terminalQr(event.joinLink))
    if (recordings !== undefined)
      say(
        `  record:     ${event.joinLinks.recorder}\n              (screen and camera, shared at ${recordings.url}/v/…; kept in ${recordingsRoot})`,
      )
    say(`  console:    ${event.consoleLink}`)
    say("              (the operator's live page: devices, jobs, alerts, join links; keep it private)")
    say(
      `  metrics:    ${event.signaling.url}/metrics${recordings === undefined ? '' : `  ${recordings.url}/metrics`}`,
    )
    say(`  signaling:  ${event.signaling.url}   relay: ${event.relay.getMultiaddrs()[0]?.toString() ?? ''}`)
    say(
      `  TURN:       ${event.turn !== undefined ? `coturn on ${event.turn.options.listeningIp}:${event.turn.options.port}` : (event.turnNote ?? 'off')}`,
    )
    say(`  add a participant from another terminal: npx crowdmesh join '${event.joinLink}'`)

    event.host.on('participantJoined', ({ participantId, agent }) => {
      if (json)
        emit({
          type: 'participant',
          joined: true,
          participantId,
          agent,
          participants: event.host.participants,
        })
      else say(`  + participant …${participantId.slice(-8)} (${agent}); ${event.host.participants} connected`)
    })
    event.host.on('participantLeft', ({ participantId }) => {
      if (json)
        emit({ type: 'participant', joined: false, participantId, participants: event.host.participants })
      else say(`  - participant …${participantId.slice(-8)} left; ${event.host.participants} connected`)
    })
    event.dedicated?.on('started', ({ count, reason }) => {
      if (json) emit({ type: 'dedicated', started: true, count, reason })
      else say(`  + dedicated participant started (${count} running): ${reason}`)
    })
    event.dedicated?.on('stopped', ({ count, reason }) => {
      if (json) emit({ type: 'dedicated', started: false, count, reason })
      else say(`  - dedicated participant stopped (${count} running): ${reason}`)
    })
    for (let i = 0; i < localCount; i++)
      participants.push(new ParticipantProcess(event.joinLink, { dutyCycle: 1, cores: 1 }))

    const frameIndices = [...new Set(dataset.frames.map((f) => f.index))]
    const threadsPerFrame = vertexCount(job.space) * job.cameras.length
    const imageUnits = images?.files.reduce((sum, f) => sum + f.width * f.height, 0) ?? 0
    const total = threadsPerFrame * frameIndices.length + imageUnits
    const bar = progressBar('colouring', { quiet: json })
    let done = 0
    let lastTenth = -1
    event.coordinator.on('blockDone', ({ threads }) => {
      done += threads
      bar.update(done, total)
      const tenth = Math.floor((done / total) * 10)
      if (json && tenth !== lastTenth) {
        lastTenth = tenth
        emit({
          type: 'progress',
          threadsDone: done,
          threadsTotal: total,
          participants: event.host.participants,
        })
      }
    })
    const outcomes: Promise<void>[] = []
    const photos = frameSource({ maxFrames: 1 })
    const allDone = new Promise<void>((resolveAll, reject) => {
      let remaining = frameIndices.length + (images?.files.length ?? 0)
      // The match run follows its own jobs' rounds (runMatchRun).
      const mine = (report: FrameReport) =>
        report.jobId === vertexJob.spec.jobId || report.jobId === images?.spec.jobId
      event.coordinator.on('frameComplete', (outcome: unknown, report: FrameReport) => {
        if (!mine(report)) return
        outcomes.push(
          report.jobId === images?.spec.jobId
            ? writeFiltered(outcome as FilteredImage, report)
            : writeFrame(outcome as FrameOutcome, report),
        )
        if (--remaining === 0) resolveAll()
      })
      event.coordinator.on('frameDropped', (report: FrameReport) => {
        if (!mine(report)) return
        reject(
          new Error(
            `round ${report.frameIndex} of job ${report.jobId} was dropped: ${report.error ?? 'late'}`,
          ),
        )
      })
      ending.signal.addEventListener('abort', () => reject(ending.signal.reason as Error), { once: true })
    })
    const writeFrame = async (outcome: FrameOutcome, report: FrameReport) => {
      const folder = frameIndices.length > 1 ? join(out, `frame-${outcome.frameIndex}`) : out
      const model = modelVertices(outcome)
      const ply = await writeOutcomePly(folder, job.space, outcome, model)
      const camera = dataset.cameras[0]!
      const { ids, rgb, offset } = model
      const rendering = renderSplats(job.space, camera, ids, rgb, defaultSplatStyle, offset)
      const first = dataset.frames.find((f) => f.index === outcome.frameIndex && f.cameraId === camera.id)
      const photo = first === undefined ? undefined : await photos.get(first.imageUrl)
      const png = await writeImage(
        folder,
        'rendering.png',
        photo === undefined
          ? { width: camera.width, height: camera.height, rgba: rendering.rgba }
          : sideBySide(camera.width, camera.height, rendering.rgba, photo.rgba),
      )
      const stats = event.coordinator.statistics()
      if (json)
        emit({
          type: 'frameOutcome',
          frameIndex: outcome.frameIndex,
          colouredVertices: outcome.coloured,
          modelVertices: ids.length,
          totalVertices: outcome.totalVertices,
          latencyMs: Math.round(report.latencyMs),
          reassignments: report.reassignments,
          participants: stats.participants.filter((p) => p.threadsProcessed > 0).length,
          ply,
          rendering: png,
        })
      else {
        bar.done(
          `frame ${outcome.frameIndex}: ${outcome.coloured} of ${outcome.totalVertices} vertices coloured in ${(report.latencyMs / 1000).toFixed(1)} s`,
        )
        say(`  outcome:   ${ply}`)
        say(
          `  rendering: ${png} (left: the coloured vertices seen from ${camera.name}; right: its photograph)`,
        )
      }
    }
    const writeFiltered = async (outcome: FilteredImage, report: FrameReport) => {
      const source = images!.files[outcome.frameIndex]!
      const png = await writeImage(join(out, 'filtered'), basename(source.path), outcome)
      if (json)
        emit({
          type: 'imageOutcome',
          index: outcome.frameIndex,
          source: source.path,
          filtered: png,
          width: outcome.width,
          height: outcome.height,
          latencyMs: Math.round(report.latencyMs),
        })
      else
        say(
          `  filtered:  ${png} (${outcome.width}×${outcome.height}, ${(report.latencyMs / 1000).toFixed(1)} s)`,
        )
    }
    // The local participants join first (a few seconds), so the job starts with the whole local
    // crowd rather than with whoever was quickest; after 30 s it starts with those who made it.
    const joined = new Promise<void>((resolveJoined) => {
      const check = () => {
        if (event.host.participants < localCount) return
        event.host.off('participantJoined', check)
        resolveJoined()
      }
      event.host.on('participantJoined', check)
      check()
      setTimeout(() => {
        event.host.off('participantJoined', check)
        resolveJoined()
      }, 30_000).unref()
    })
    await Promise.race([joined, allDone])
    for (const frame of dataset.frames) event.addFrame(frame)
    for (const [index, file] of (images?.files ?? []).entries())
      event.addInput(images!.spec.jobId, index, {
        imageUrl: pathToFileURL(file.path).href,
        width: file.width,
        height: file.height,
      })
    const matched =
      match === undefined
        ? undefined
        : runMatchRun(event, {
            name: 'match',
            ...match,
            folder: join(out, 'match-work'),
            signal: ending.signal,
          }).then(async (result) => {
            const report = {
              matches: result.matches,
              failed: result.failed,
              seconds: Math.round(result.seconds * 1000) / 1000,
            }
            const file = join(out, 'matches.json')
            await mkdir(out, { recursive: true })
            await writeFile(file, `${JSON.stringify(report, null, 2)}\n`)
            if (json) emit({ type: 'matchOutcome', ...report, file })
            else
              say(
                `  matched:   ${report.matches.length} matches, ${report.failed.length} videos failed, in ${report.seconds} s; written to ${file}`,
              )
          })
    await allDone
    await matched
    await Promise.all(outcomes)
    const stats = event.coordinator.statistics()
    if (json)
      emit({
        type: 'done',
        framesCompleted: stats.framesCompleted,
        participants: stats.participants.map((p) => ({
          id: p.id,
          threadsProcessed: p.threadsProcessed,
          threadsPerSec: Math.round(p.threadsPerSec),
        })),
      })
    else
      say(
        `  ${stats.participants.filter((p) => p.threadsProcessed > 0).length} participants computed: ${stats.participants
          .filter((p) => p.threadsProcessed > 0)
          .map((p) => `…${p.id.slice(-6)} ${p.threadsProcessed} threads`)
          .join(', ')}`,
      )
    if (values.stay === true && !ending.signal.aborted) {
      say('  the event stays open; Ctrl-C ends it')
      await new Promise<void>((r) => ending.signal.addEventListener('abort', () => r(), { once: true }))
    }
  } finally {
    await recordings?.close()
    await event.stop()
    await decider.close()
    await Promise.all(participants.map((p) => p.stop()))
  }
}

/** The images of `--filter-images`: every PNG of the folder, in name order, with its size. */
async function imagesToFilter(
  dir: string,
  filterText: string | undefined,
): Promise<{ spec: JobSpec<ImageFilterJob>; files: { path: string; width: number; height: number }[] }> {
  const names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.png')).sort()
  if (names.length === 0) throw new UsageError(`--filter-images: no PNG in ${dir}`)
  const files = await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name)
      // The size is in the PNG's IHDR chunk: bytes 16–23, read without decoding the image.
      const head = (await readFile(path)).subarray(0, 24)
      return { path, width: head.readUInt32BE(16), height: head.readUInt32BE(20) }
    }),
  )
  const [type, ...numbers] = (filterText ?? 'gaussian:2:1').split(':')
  const n = numbers.map(Number)
  const filter =
    type === 'gaussian'
      ? { type, radius: n[0], sigma: n[1] }
      : type === 'box'
        ? { type, radius: n[0] }
        : type === 'bilateral'
          ? { type, radius: n[0], sigmaSpace: n[1], sigmaRange: n[2] }
          : undefined
  if (filter === undefined)
    throw new UsageError(`--filter must be gaussian:R:SIGMA, box:R or bilateral:R:SS:SR, got "${filterText}"`)
  let description: ImageFilterJob
  try {
    description = parseMessage(imageFilterKind.schemas.job, { filter, tile: 256 })
  } catch (error) {
    throw new UsageError(`--filter ${filterText}: ${(error as Error).message}`)
  }
  return {
    spec: { jobId: 'filter', kind: imageFilterKind.name, version: imageFilterKind.version, description },
    files,
  }
}
