import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FrameReport } from '../../coordinator/coordinator.ts'
import type { RunningEvent } from '../../mesh/event.ts'
import { AbortError, CrowdmeshError } from '../../protocol/errors.ts'
import type { AnyJobKind, JobSpec } from '../kind.ts'
import { probeVideo } from './ffmpeg-frames.ts'
import { encodeFingerprints } from './fingerprint-file.ts'
import {
  type FingerprintJob,
  fingerprintKind,
  type VideoFingerprintOutcome,
  type VideoInput,
} from './fingerprint-kind.ts'
import { fingerprintFormat } from './format.ts'
import { defaultLayout, type LshLayout } from './lsh-index.ts'
import {
  type MatchJob,
  matchKind,
  type QueryInput,
  type QueryMatches,
  type ReferenceList,
} from './match-kind.ts'
import { defaultMatchRule, type Match, type MatchRule } from './matcher.ts'

/*
 * A match run on an event (the operator's side): every video is probed, fingerprinted by the crowd
 * (a `video-fingerprint` job: references at phase 0, queries at every phase), and each query is
 * matched against the references by the crowd (a `video-match` job, added once every reference
 * has its fingerprints; each query's round opens when its own are in). A video that cannot be read
 * is reported with its error, and the run goes on with the others.
 */

/** A video of a match run: its id (a path relative to its folder) and where it is. */
export interface RunVideo {
  id: string
  path: string
}

/** Progress of a run. */
export interface MatchRunProgress {
  videos: number
  fingerprinted: number
  queries: number
  matched: number
  failed: number
}

/** Options of a match run. */
export interface MatchRunInit {
  /** The videos to search (UGC). */
  queries: readonly RunVideo[]
  /** The reference videos. */
  references: readonly RunVideo[]
  /** Where fingerprint files and the reference list are written (served to participants). */
  folder: string
  rule?: Partial<MatchRule>
  layout?: LshLayout
  /** Job ids are `<name>-fingerprints` and `<name>-matches` (default `match`). */
  name?: string
  /**
   * Leave out a reference from a query's matches when they are the same file (a set matched against
   * itself). A file both queried and referenced is fingerprinted once either way.
   */
  skipSelf?: boolean
  signal?: AbortSignal
  onProgress?: (progress: MatchRunProgress) => void
}

/** A file of the run: its ids as a query and as a reference. */
interface RunEntry {
  path: string
  queryId?: string
  refId?: string
}

/** A video the run could not use, and why. */
export interface FailedVideo {
  id: string
  role: 'query' | 'reference'
  error: string
}

/** What a run found. */
export interface MatchRunResult {
  matches: Match[]
  failed: FailedVideo[]
  /** Fingerprints computed, per role. */
  fingerprints: { queries: number; references: number }
  seconds: number
}

/** The fingerprint job of a run, as the event's first job (`startEvent({ coordinator: { jobs: [it] } })`). */
export function fingerprintJobInit(name = 'match'): {
  spec: JobSpec<FingerprintJob>
  kind: AnyJobKind
  class: 'batch'
  weight: number
} {
  return {
    spec: {
      jobId: `${name}-fingerprints`,
      kind: fingerprintKind.name,
      version: fingerprintKind.version,
      description: { format: fingerprintFormat.version },
    },
    kind: fingerprintKind as AnyJobKind,
    class: 'batch',
    // The seed runs the shared pre-computation ahead of matching: fingerprints get the larger share.
    weight: 4,
  }
}

/** Runs a match run on `event`; resolves when every query is matched or has failed. */
export async function runMatchRun(event: RunningEvent, init: MatchRunInit): Promise<MatchRunResult> {
  const started = performance.now()
  const name = init.name ?? 'match'
  const rule: MatchRule = { ...defaultMatchRule, ...init.rule }
  const layout = init.layout ?? defaultLayout
  const { coordinator } = event
  const fingerprintJob = fingerprintJobInit(name)
  const matchJobId = `${name}-matches`
  if (coordinator.kindOf(fingerprintJob.spec.jobId) === undefined) coordinator.addJob(fingerprintJob)
  await mkdir(join(init.folder, 'fingerprints'), { recursive: true })

  // Rounds of the fingerprint job, one per file (references first): a file that is both a query
  // and a reference is fingerprinted once, at every phase, and serves as both.
  const byPath = new Map<string, RunEntry>()
  for (const v of init.references) byPath.set(v.path, { path: v.path, refId: v.id })
  for (const v of init.queries) {
    const known = byPath.get(v.path)
    if (known !== undefined) known.queryId = v.id
    else byPath.set(v.path, { path: v.path, queryId: v.id })
  }
  const entries = [...byPath.values()]
  const failed: FailedVideo[] = []
  const progress: MatchRunProgress = {
    videos: entries.length,
    fingerprinted: 0,
    queries: init.queries.length,
    matched: 0,
    failed: 0,
  }
  const report = () => init.onProgress?.({ ...progress })
  const fail = (index: number, error: string, roles: ('query' | 'reference')[] = ['reference', 'query']) => {
    const entry = entries[index]!
    for (const role of roles) {
      const id = role === 'query' ? entry.queryId : entry.refId
      if (id !== undefined) failed.push({ id, role, error })
    }
    progress.failed++
    report()
  }

  // Each finished fingerprint file, by round, as the URL participants fetch it by.
  const fingerprintUrls = new Map<number, { url: string; duration: number }>()
  const referenceRounds = entries.flatMap((e, i) => (e.refId !== undefined ? [i] : []))
  const referencesOpen = new Set(referenceRounds)
  const waitingQueries: number[] = []
  /** The match job's reference list, as rounds of the fingerprint job. */
  let listedRounds: number[] = []
  let matchJobAdded = false
  const queriesOpen = new Set(entries.flatMap((e, i) => (e.queryId !== undefined ? [i] : [])))
  const matches: Match[] = []
  let fingerprintCounts = { queries: 0, references: 0 }

  const { promise: finished, resolve, reject } = Promise.withResolvers<void>()
  const checkFinished = () => {
    if (queriesOpen.size === 0) resolve()
  }
  const queryDone = (index: number) => {
    queriesOpen.delete(index)
    checkFinished()
  }

  const addQuery = (index: number) => {
    const file = fingerprintUrls.get(index)!
    const input: QueryInput = {
      index,
      videoId: entries[index]!.queryId!,
      fingerprintsUrl: file.url,
      duration: file.duration,
    }
    event.addInput(matchJobId, index, input)
  }

  const referencesReady = async () => {
    const listed = referenceRounds.filter((i) => fingerprintUrls.has(i))
    if (listed.length === 0) {
      // Nothing to match against: every query ends with no match.
      for (const index of [...queriesOpen]) queryDone(index)
      return
    }
    listedRounds = listed
    const list: ReferenceList = {
      references: listed.map((i) => ({
        id: entries[i]!.refId!,
        url: fingerprintUrls.get(i)!.url,
        duration: fingerprintUrls.get(i)!.duration,
      })),
    }
    const path = join(init.folder, 'references.json')
    await writeFile(path, JSON.stringify(list))
    const description: MatchJob = {
      format: fingerprintFormat.version,
      referencesUrl: event.frames.publishFile(pathToFileURL(path).href),
      references: listed.length,
      rule,
      layout: { bandBits: layout.bandBits, probeRadius: layout.probeRadius === 0 ? 0 : 1 },
    }
    coordinator.addJob({
      spec: { jobId: matchJobId, kind: matchKind.name, version: matchKind.version, description },
      kind: matchKind as AnyJobKind,
      class: 'batch',
      weight: 1,
    })
    matchJobAdded = true
    for (const index of waitingQueries.splice(0)) addQuery(index)
  }

  const onFingerprints = async (outcome: VideoFingerprintOutcome) => {
    const index = outcome.frameIndex
    const path = join(init.folder, 'fingerprints', `${index}.cmfp`)
    await writeFile(path, encodeFingerprints(outcome.file))
    fingerprintUrls.set(index, {
      url: event.frames.publishFile(pathToFileURL(path).href),
      duration: outcome.file.duration,
    })
    progress.fingerprinted++
    if (outcome.role === 'query') fingerprintCounts.queries += outcome.file.fingerprints.length
    else fingerprintCounts.references += outcome.file.fingerprints.length
    report()
    const entry = entries[index]!
    if (entry.queryId !== undefined) {
      if (matchJobAdded) addQuery(index)
      else waitingQueries.push(index)
    }
    if (entry.refId !== undefined) {
      referencesOpen.delete(index)
      if (referencesOpen.size === 0) await referencesReady()
    }
  }

  const onMatches = (outcome: QueryMatches) => {
    const query = entries[outcome.frameIndex]!
    for (const m of outcome.matches) {
      const round = listedRounds[m.ref]
      if (round === undefined) continue
      if (init.skipSelf === true && round === outcome.frameIndex) continue
      matches.push({ ugcId: query.queryId!, refId: entries[round]!.refId!, ...pick(m) })
    }
    progress.matched++
    report()
    queryDone(outcome.frameIndex)
  }

  const onComplete = (outcome: unknown, frame: FrameReport) => {
    const handle =
      frame.jobId === fingerprintJob.spec.jobId
        ? onFingerprints(outcome as VideoFingerprintOutcome)
        : frame.jobId === matchJobId
          ? Promise.resolve(onMatches(outcome as QueryMatches))
          : undefined
    handle?.catch((error: unknown) =>
      reject(error instanceof Error ? error : new CrowdmeshError(String(error))),
    )
  }
  const onDropped = (frame: FrameReport) => {
    if (frame.jobId === fingerprintJob.spec.jobId) {
      fail(frame.frameIndex, frame.error ?? 'its fingerprinting was dropped')
      const entry = entries[frame.frameIndex]!
      if (entry.queryId !== undefined) queryDone(frame.frameIndex)
      if (entry.refId !== undefined) {
        referencesOpen.delete(frame.frameIndex)
        if (referencesOpen.size === 0) void referencesReady().catch(reject)
      }
    } else if (frame.jobId === matchJobId) {
      fail(frame.frameIndex, frame.error ?? 'its matching was dropped', ['query'])
      queryDone(frame.frameIndex)
    }
  }
  const onAbort = () => reject(new AbortError())
  coordinator.on('frameComplete', onComplete)
  coordinator.on('frameDropped', onDropped)
  init.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    // Probe every video first: a file that is not a video fails here, with its reason, and never
    // reaches a participant.
    for (const [index, entry] of entries.entries()) {
      init.signal?.throwIfAborted()
      let duration: number
      try {
        duration = (await probeVideo(entry.path, init.signal)).duration
        if (!(duration > 0)) throw new CrowdmeshError(`${entry.path}: its duration is unknown`)
      } catch (error) {
        if (error instanceof AbortError || init.signal?.aborted === true) throw error
        fail(index, (error as Error).message)
        referencesOpen.delete(index)
        queriesOpen.delete(index)
        continue
      }
      const input: VideoInput = {
        index,
        videoId: entry.queryId ?? entry.refId!,
        videoUrl: pathToFileURL(entry.path).href,
        duration,
        role: entry.queryId !== undefined ? 'query' : 'reference',
      }
      event.addInput(fingerprintJob.spec.jobId, index, input)
    }
    if (referencesOpen.size === 0 && !matchJobAdded) await referencesReady()
    checkFinished()
    await finished
  } finally {
    coordinator.off('frameComplete', onComplete)
    coordinator.off('frameDropped', onDropped)
    init.signal?.removeEventListener('abort', onAbort)
    for (const jobId of [matchJobId, fingerprintJob.spec.jobId])
      if (coordinator.kindOf(jobId) !== undefined && coordinator.jobs.length > 1) coordinator.endJob(jobId)
  }
  fingerprintCounts = { ...fingerprintCounts }
  matches.sort(
    (a, b) => a.ugcId.localeCompare(b.ugcId) || a.refId.localeCompare(b.refId) || a.ugcStart - b.ugcStart,
  )
  return { matches, failed, fingerprints: fingerprintCounts, seconds: (performance.now() - started) / 1000 }
}

const pick = (m: QueryMatches['matches'][number]) => ({
  ugcStart: m.ugcStart,
  ugcEnd: m.ugcEnd,
  refStart: m.refStart,
  refEnd: m.refEnd,
  score: m.score,
})
