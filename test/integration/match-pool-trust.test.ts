import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import type { AnyJobKind } from '../../peer/jobs/kind.ts'
import type { AnyTaskWorker } from '../../peer/participant/job-directory.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { matchKind } from '../../peer/jobs/match/match-kind.ts'
import { nodeFiles } from '../../peer/jobs/node-env.ts'
import { MatchPool } from '../../peer/pool/match-pool.ts'
import { ResultsStore } from '../../peer/pool/results-store.ts'
import { type RunDefinition, taskIds } from '../../peer/pool/run-definition.ts'
import { SqliteTaskPool, withdrawnOutput } from '../../peer/pool/task-pool.ts'
import { lyingWorkers } from '../support/lying-worker.ts'
import { systemClock } from '../../peer/protocol/clock.ts'
import { defaultLayout } from '../../peer/jobs/match/lsh-index.ts'
import { defaultMatchRule } from '../../peer/jobs/match/matcher.ts'
import { seededFingerprints } from '../support/fingerprints.ts'

/*
 * A pooled match run with a sleeper in its crowd (README, "Trust"): the real match pool, task pool,
 * coordinator, validation and CPU match worker, in one process. Two honest participants and one that
 * matches honestly until trusted, then hides every match and invents one. Its lie is caught by the
 * coordinator's check; every slice it had published is withdrawn from the results store and matched
 * again. A writer loop (as `runResultWriter` does) takes the pool's outbox into a results store and
 * acknowledges it: at the end the store holds exactly the true matches. Fingerprints are seeded files
 * (a query matches the reference of its seed), so no ffmpeg is needed.
 */

const run = 'trust'
/** References (seeds 1–8) in shards of 2; queries of seeds 1, 3, 5, 7 (each matches one) and 99 (none). */
const refSeeds = [1, 2, 3, 4, 5, 6, 7, 8]
const querySeeds = [1, 3, 5, 7, 99]
const seconds = 20
let workspace: string
let pool: SqliteTaskPool
let store: ResultsStore

beforeAll(async () => {
  workspace = await mkdtemp(join(tmpdir(), 'crowdmesh-pool-trust-'))
  const folder = join(workspace, 'runs', run)
  await mkdir(join(folder, 'fingerprints'), { recursive: true })
  const entries = [
    ...refSeeds.map((seed) => ({ path: `/videos/ref-${seed}.mp4`, duration: seconds, refId: `ref-${seed}` })),
    ...querySeeds.map((seed) => ({
      path: `/videos/ugc-${seed}.mp4`,
      duration: seconds,
      queryId: `ugc-${seed}`,
    })),
  ]
  const definition: RunDefinition = {
    version: 1,
    run,
    priority: 0,
    createdAt: 0,
    entries,
    failed: [],
    shardSize: 2,
    rule: { ...defaultMatchRule },
    layout: { bandBits: defaultLayout.bandBits, probeRadius: defaultLayout.probeRadius === 0 ? 0 : 1 },
    skipSelf: false,
  }
  await writeFile(join(folder, 'run.json'), JSON.stringify(definition))
  // Every video fingerprinted already: its file in the run's folder, its task done in the pool.
  pool = new SqliteTaskPool({ path: join(workspace, 'pool.db') })
  const seeds = [...refSeeds, ...querySeeds]
  pool.add(
    entries.map((_, entry) => ({
      id: taskIds.fingerprint(run, entry),
      run,
      kind: 'video-fingerprint',
      payload: JSON.stringify({ run, entry }),
    })),
    0,
  )
  for (const [entry, seed] of seeds.entries()) {
    await writeFile(join(folder, 'fingerprints', `${entry}.cmfp`), seededFingerprints(seed, seconds))
    const grant = pool.grant({ worker: 'earlier', kinds: ['video-fingerprint'], now: 0 })!
    pool.complete(grant.lease, 0)
  }
  store = new ResultsStore(':memory:')
})

afterAll(async () => {
  store?.close()
  pool?.close()
  if (workspace !== undefined) await rm(workspace, { recursive: true, force: true })
})

describe('a pooled match run with a sleeper', () => {
  it('withdraws and matches again every slice the caught sleeper answered for: the store ends with exactly the true matches', async () => {
    const env = { frames: frameSource(), files: nodeFiles() }
    const matchPool = new MatchPool({ pool, root: workspace, publish: (url) => url, clock: systemClock })
    const coordinator = new Coordinator(
      { jobs: [matchPool.fingerprintJob()], validation: { trustAfter: 3 } },
      { clock: systemClock, checkerEnv: env },
    )
    const quarantined: string[] = []
    coordinator.on('participantQuarantined', ({ participantId }) => quarantined.push(participantId))
    await matchPool.attach(coordinator)

    const honest = () => matchKind.workers.cpu(env) as Promise<AnyTaskWorker>
    // Trusted after 3 results in a row; it lies from its 8th match result on.
    const sleeper = lyingWorkers(() => honest(), 'sleeper', { honestFirst: 7 })
    const workers = new Map<string, AnyTaskWorker>([
      ['honest-1', await honest()],
      ['honest-2', await honest()],
      ['sleeper', await sleeper(matchKind as AnyJobKind)],
    ])
    let withdrawals = 0
    /** A result writer: the outbox into the store, acknowledged. */
    const write = () => {
      const outputs = pool.outputs(1000)
      store.writeBatch(
        outputs.map((o) => {
          if (o.body === withdrawnOutput) withdrawals++
          const body = JSON.parse(o.body) as { matches?: [] }
          return {
            task: o.task,
            run: o.run,
            generation: o.generation,
            ...(o.body === withdrawnOutput && { withdrawn: true }),
            matches: body.matches ?? [],
          }
        }),
      )
      pool.acknowledge(outputs.map(({ task, generation }) => ({ task, generation })))
    }
    // What each states: it runs the match kind (and the fingerprint kind, idle here).
    const capability = {
      cores: 1,
      threadsPerSec: 1e6,
      bandwidthBytesPerSec: 0,
      rttMs: 1,
      dutyCycle: 1,
      kinds: [`${matchKind.name}@${matchKind.version}`],
    }
    const deadline = performance.now() + 60_000
    while (!(matchPool.progress()[0]?.finished ?? false)) {
      expect(performance.now() < deadline, 'the run to finish').toBe(true)
      let leased = false
      for (const [who, worker] of workers) {
        if (coordinator.quarantined(who)) continue
        const lease = coordinator.handleLeaseRequest(who, capability)
        if (lease === undefined) continue
        leased = true
        const job = coordinator.jobs.find((j) => j.jobId === lease.block.jobId)!
        const result = await worker.run(job, lease.block)
        coordinator.handleBlockResult(who, lease.leaseId, result)
      }
      // Checks read their files, and the pool writes in order: let them settle.
      await new Promise((resolve) => setTimeout(resolve, leased ? 1 : 20))
      write()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    write()
    matchPool.detach()
    coordinator.stop()

    expect(quarantined).toEqual(['sleeper'])
    // It had published slices before it lied: they were withdrawn from the store and matched again.
    expect(withdrawals).toBeGreaterThan(0)
    const slices = refSeeds.length / 2
    expect(pool.counts(run, 'video-match')).toMatchObject({ done: querySeeds.length * slices, queued: 0 })
    // Exactly the true matches: each query with the reference of its seed, nothing else.
    for (const seed of querySeeds) {
      const found = store.query({ ugc: `ugc-${seed}` }).map((m) => m.refId)
      expect(found, `ugc-${seed}`).toEqual(refSeeds.includes(seed) ? [`ref-${seed}`] : [])
    }
    expect(store.totals()).toEqual({ tasks: querySeeds.length * slices, matches: 4 })
  }, 90_000)
})
