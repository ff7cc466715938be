import { randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { guardedServer } from '../../signaling/guard.ts'
import { HttpError, readJsonBody, sendJson } from '../../signaling/http.ts'
import { parseMessage } from '../protocol/schemas.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import type { MatchPool, RunProgress, RunWorker } from './match-pool.ts'

/*
 * The runs dashboard (issue 15; the seed's "central dashboard"): an operator's page, served by the
 * coordinator's process on loopback, showing every run live: slices done, leased and queued,
 * fingerprints, matches found, throughput and ETA, its priority (changeable), and the participants
 * working on it with their cache hit rates. The page polls `/api/runs` once a second. A random key,
 * in the URL printed at start, authorises every request: the page can reorder the operator's runs.
 */

const pageDir = join(dirname(fileURLToPath(import.meta.url)), 'dashboard')
const assets: Record<string, string> = {
  '/': 'dashboard.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
}
const types: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript',
  css: 'text/css',
}

/** A run as the page draws it. */
export interface DashboardRun extends RunProgress {
  /** Matches written to the results store for it. */
  found: number
  /** Slices done per minute over the last minute (the first minute: since the dashboard started). */
  slicesPerMinute: number
  /** Seconds to finish at that pace (Infinity when it has none yet). */
  etaSeconds: number | null
  workers: RunWorker[]
}

/** What `/api/runs` answers. */
export interface DashboardState {
  runs: DashboardRun[]
  participants: number
  written: number
  unwritten: number
}

/** Options of the dashboard. */
export interface DashboardInit {
  pool: MatchPool
  /** Participants connected now. */
  participants: () => number
  /** Matches and slices written, per run (the results store). */
  written: () => Map<string, { tasks: number; matches: number }>
  /** Results waiting in the outbox. */
  unwritten: () => number
  /** 0 (default): any free port. */
  port?: number
  logger?: Logger
}

/** The dashboard's defaults. */
export const dashboardDefaults = {
  /** How often each run's progress is sampled for its throughput, ms. */
  sampleMs: 2_000,
} as const

const prioritySchema = z.strictObject({ priority: z.number().int().min(-1000).max(1000) })

/** Starts the dashboard on 127.0.0.1; its URL carries the key. */
export async function startDashboard(init: DashboardInit): Promise<{ url: string; close(): Promise<void> }> {
  const log = init.logger ?? makeLogger('crowdmesh:dashboard')
  const key = randomBytes(18).toString('base64url')
  const files = new Map<string, string>()
  for (const [path, file] of Object.entries(assets))
    files.set(path, await readFile(join(pageDir, file), 'utf8'))
  /** Slices done per run, sampled each time the page asks (the pace over the last minute). */
  const samples = new Map<string, { at: number; done: number }[]>()

  // Sampled every few seconds from the start, whether a page is open or not.
  const sample = () => {
    const now = Date.now()
    for (const run of init.pool.progress()) {
      const history = samples.get(run.run) ?? []
      history.push({ at: now, done: run.matches.done + run.matches.failed })
      while (history.length > 2 && now - history[1]!.at >= 60_000) history.shift()
      samples.set(run.run, history)
    }
  }
  sample()
  const sampler = setInterval(sample, dashboardDefaults.sampleMs)
  sampler.unref()

  const state = (): DashboardState => {
    const written = init.written()
    const now = Date.now()
    const runs = init.pool.progress().map((run): DashboardRun => {
      const done = run.matches.done + run.matches.failed
      const history = samples.get(run.run) ?? [{ at: now, done }]
      const first = history[0]!
      const minutes = (now - first.at) / 60_000
      const slicesPerMinute = minutes > 0 ? (done - first.done) / minutes : 0
      const left = run.matches.waiting + run.matches.queued + run.matches.leased
      return {
        ...run,
        found: written.get(run.run)?.matches ?? 0,
        slicesPerMinute,
        etaSeconds: slicesPerMinute > 0 ? (left / slicesPerMinute) * 60 : null,
        workers: init.pool.workers(run.run),
      }
    })
    let writtenTasks = 0
    for (const r of written.values()) writtenTasks += r.tasks
    return { runs, participants: init.participants(), written: writtenTasks, unwritten: init.unwritten() }
  }

  const authorised = (url: URL) => {
    const given = Buffer.from(url.searchParams.get('key') ?? '')
    const wanted = Buffer.from(key)
    return given.length === wanted.length && timingSafeEqual(given, wanted)
  }

  const server = guardedServer(
    {
      request: async (request, response, url) => {
        const path = url.pathname
        const asset = files.get(path)
        if (asset !== undefined) {
          if (request.method !== 'GET') throw new HttpError(405, 'read only')
          const ext = assets[path]!.split('.').pop()!
          response.writeHead(200, {
            'content-type': types[ext]!,
            'cache-control': 'no-store',
            // The page's own script and style only; it talks to this server alone.
            'content-security-policy':
              "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'none'",
          })
          return void response.end(asset)
        }
        // The page and its script hold no data; everything under /api/ needs the key.
        if (!authorised(url))
          throw new HttpError(403, 'this dashboard needs the key its URL was printed with')
        if (path === '/api/runs') {
          if (request.method !== 'GET') throw new HttpError(405, 'read only')
          response.setHeader('cache-control', 'no-store')
          return sendJson(response, 200, state())
        }
        const priority = /^\/api\/runs\/([a-z0-9][a-z0-9-]{0,47})\/priority$/.exec(path)
        if (priority !== null) {
          if (request.method !== 'POST') throw new HttpError(405, 'POST a priority')
          const run = priority[1]!
          const body = parseMessage(prioritySchema, await readJsonBody(request, 1024))
          if (!init.pool.progress().some((r) => r.run === run)) throw new HttpError(404, `no run ${run}`)
          const changed = init.pool.setPriority(run, body.priority)
          log(`run ${run}: priority ${body.priority} (${changed} tasks waiting)`)
          return sendJson(response, 200, { run, priority: body.priority, changed })
        }
        throw new HttpError(404, 'not found')
      },
    },
    { name: 'runs dashboard' },
    log,
  )
  await new Promise<void>((resolve) => server.listen(init.port ?? 0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/?key=${key}`,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(sampler)
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
