import { describe, expect, it } from 'vitest'
import { Coordinator } from '../../peer/coordinator/coordinator.ts'
import { type LedgerSummary, ledgerSinks } from '../../peer/coordinator/frame-sink.ts'
import { TrustBook } from '../../peer/coordinator/trust-book.ts'
import { decide, sampleUnits, trustedCheckShare, withRinger } from '../../peer/coordinator/validation.ts'
import { loadMiddlebury } from '../../peer/datasets/middlebury.ts'
import type { ResultValidator } from '../../peer/jobs/kind.ts'
import { FrameAggregation } from '../../peer/jobs/vertex/aggregator.ts'
import type { Block, BlockResult } from '../../peer/jobs/vertex/block.ts'
import { colourBlock } from '../../peer/jobs/vertex/cpu-worker.ts'
import { vertexJobSpec, vertexKind } from '../../peer/jobs/vertex/index.ts'
import { datasetJob } from '../../peer/jobs/vertex/run-job.ts'
import { kindValidator } from '../../peer/jobs/validator.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'
import { validationDefaults } from '../../peer/protocol/defaults.ts'
import { LinkExhaustedError, QuarantinedError } from '../../peer/protocol/errors.ts'
import { parseAdversaries } from '../../peer/simulator/adversaries.ts'
import { builtInProfiles } from '../../peer/simulator/profile.ts'
import { simulate, simulationDefaults } from '../../peer/simulator/simulation.ts'
import { templeDir, testCamera, testJob } from '../support/fixtures.ts'
import { manualClock } from '../support/manual-clock.ts'

/* Result validation (README, "Trust"): reputation, the policy, withdrawal, the vertex checker. */

describe('the trust book', () => {
  it('trusts an identity after trustAfter results in a row, starts it over on a dispute, and quarantines it for good', () => {
    const book = new TrustBook({ trustAfter: 3, identitiesPerLink: 10 })
    const a = book.admit('a', 'link')
    book.passed(a)
    book.passed(a)
    expect(a.state).toBe('new')
    book.disputed(a)
    for (let i = 0; i < 3; i++) book.passed(a)
    expect(a.state).toBe('trusted')
    book.refuted(a, 'vertex 3 is wrong', 1000)
    book.passed(a)
    expect(book.quarantined('a')).toBe(true)
    expect(book.rows()).toEqual([
      expect.objectContaining({
        identity: 'a',
        state: 'quarantined',
        checksPassed: 5,
        checksFailed: 1,
        reason: 'vertex 3 is wrong',
      }),
    ])
  })

  it('holds a bounded number of identities per join link, quarantined ones included', () => {
    const book = new TrustBook({ trustAfter: 3, identitiesPerLink: 2 })
    book.refuted(book.admit('liar', 'personal'), 'caught', 0)
    book.admit('again', 'personal')
    expect(() => book.admit('third', 'personal')).toThrow(LinkExhaustedError)
    // A known identity is its record, whatever the link says; another link has its own slots.
    expect(book.admit('again', 'personal').identity).toBe('again')
    expect(book.admit('third', 'other').state).toBe('new')
    expect(book.identitiesOf('personal')).toBe(2)
  })
})

describe('the policy', () => {
  const checker = { check: () => ({ ok: true as const }) }
  const withChecker: ResultValidator = { agree: () => true, disputed: () => [], checker, cheapCheckUnits: 8 }
  const without: ResultValidator = { agree: () => true, disputed: () => [] }
  const book = new TrustBook(validationDefaults)
  const fresh = book.admit('fresh')
  const trusted = book.admit('trusted')
  for (let i = 0; i < validationDefaults.trustAfter; i++) book.passed(trusted)

  it('checks an untrusted identity in full (or replicates it without a checker); a trusted one in full one time in trustAfter, else cheaply', () => {
    const p = validationDefaults
    expect(decide(p, fresh, withChecker, () => 0.99)).toEqual({ check: p.sampleUnits })
    expect(decide(p, fresh, without, () => 0.99)).toEqual({ replicate: true })
    expect(decide(p, trusted, withChecker, () => 0.05)).toEqual({ check: p.sampleUnits })
    expect(decide(p, trusted, withChecker, () => 0.5)).toEqual({ check: 8 })
    expect(decide(p, trusted, without, () => 0.5)).toEqual({ accept: true })
    expect(decide({ ...p, mode: 'replicate-all' }, trusted, withChecker, () => 0.5)).toEqual({
      replicate: true,
    })
    expect(decide({ ...p, mode: 'off' }, fresh, withChecker, () => 0.5)).toEqual({ accept: true })
  })

  it('checks a long-trusted identity in full less often, never under minTrustedCheckShare', () => {
    const p = validationDefaults
    expect(trustedCheckShare(p, p.trustAfter)).toBeCloseTo(p.trustedCheckShare)
    expect(trustedCheckShare(p, 2 * p.trustAfter)).toBeCloseTo(p.trustedCheckShare / 2)
    expect(trustedCheckShare(p, 10_000)).toBe(p.minTrustedCheckShare)
    const veteran = book.admit('veteran')
    for (let i = 0; i < 10 * p.trustAfter; i++) book.passed(veteran)
    // At 10 × trustAfter in a row, a draw of 0.05 no longer meets the full check.
    expect(decide(p, veteran, withChecker, () => 0.05)).toEqual({ check: 8 })
    expect(decide(p, veteran, withChecker, () => 0.005)).toEqual({ check: p.sampleUnits })
  })

  it('replicates an untrusted result of a sparse kind after its check; a trusted one with a finding is a ringer now and then', () => {
    const p = validationDefaults
    const sparse: ResultValidator = {
      ...withChecker,
      cheapCheckUnits: 0,
      fullCheckUnits: 8,
      sparseLies: true,
    }
    expect(decide(p, fresh, sparse, () => 0.99)).toEqual({ check: 8, thenReplicate: true })
    // Trusted: a full check alone (ringers find who hides, not a replica of its own result).
    expect(decide(p, trusted, sparse, () => 0.05)).toEqual({ check: 8 })
    const cheap = decide(p, trusted, sparse, () => 0.5)
    expect(cheap).toEqual({ check: 0 })
    expect(withRinger(cheap, () => true, sparse)).toEqual({ check: 0, thenReplicate: true })
    expect(withRinger(cheap, () => false, sparse)).toEqual({ check: 0 })
    // A replicated result stays as it is; a kind without a checker has no confirmed finding to ring with.
    expect(withRinger({ replicate: true }, () => true, sparse)).toEqual({ replicate: true })
    expect(withRinger({ accept: true }, () => true, without)).toEqual({ accept: true })
  })

  it('samples distinct units in range, all of them when asked for more', () => {
    let x = 0.123
    const random = () => (x = (x * 9301 + 0.49297) % 1)
    for (const [units, n] of [
      [1000, 256],
      [300, 299],
      [5, 256],
    ] as const) {
      const sample = sampleUnits(units, n, random)
      expect(sample).toHaveLength(Math.min(units, n))
      expect(new Set(sample).size).toBe(sample.length)
      expect(sample.every((u, i) => u >= 0 && u < units && (i === 0 || u > sample[i - 1]!))).toBe(true)
    }
  })
})

describe('withdrawing a vertex block', () => {
  it('leaves the aggregation as if the block had never been added', () => {
    const job = testJob(6, [testCamera(0), { ...testCamera(1), t: [0.1, 0, 2] }])
    const make = () =>
      new FrameAggregation({
        jobId: 'test',
        frameIndex: 0,
        cameraIds: [0, 1],
        totalVertices: 216,
        minCoverageAlpha: 77,
      })
    const rgba = new Uint8Array(64 * 48 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 251))
    const image = { width: 64, height: 48, rgba, tables: new Map() }
    const blocks = [0, 1].flatMap((cameraId) =>
      [0, 100].map((firstVertex) =>
        colourBlock(
          job,
          {
            jobId: 'test',
            frameIndex: 0,
            cameraId,
            imageUrl: 'x',
            firstVertex,
            vertexCount: firstVertex === 0 ? 100 : 116,
          },
          image,
        ),
      ),
    )
    const without = make()
    for (const b of blocks.slice(1)) without.add(b)
    const withdrawn = make()
    for (const b of blocks) withdrawn.add(b)
    withdrawn.withdraw(blocks[0]!)
    for (const field of ['seen', 'background'] as const)
      expect(Array.from(withdrawn[field])).toEqual(Array.from(without[field]))
    expect(withdrawn.planes.map((p) => Array.from(p))).toEqual(without.planes.map((p) => Array.from(p)))
    expect(withdrawn.stats).toEqual(without.stats)
    // Added again, it counts as new (not a duplicate), and the frame is complete.
    expect(withdrawn.add(blocks[0]!)).toBe('added')
    expect(withdrawn.complete).toBe(true)
  })
})

describe('the vertex checker', () => {
  it('passes the CPU result and one off by 1 everywhere, refutes one thread off by 2, and names it', async () => {
    const dataset = await loadMiddlebury(templeDir)
    const job = datasetJob(dataset, 24)
    const frame = dataset.frames[0]!
    const block: Block = {
      jobId: job.jobId,
      frameIndex: 0,
      cameraId: frame.cameraId,
      imageUrl: frame.imageUrl,
      firstVertex: 4000,
      vertexCount: 3000,
    }
    const frames = frameSource()
    const truth = colourBlock(job, block, await frames.get(frame.imageUrl))
    const validator = kindValidator(vertexKind, vertexJobSpec(job), { frames })!
    const all = Array.from({ length: 3000 }, (_, i) => i)
    expect(await validator.checker!.check(block, truth, all)).toEqual({ ok: true })
    // WebGL may differ from the CPU by 1 in any channel: not a lie.
    const offByOne: BlockResult = { ...truth, colours: truth.colours.map((c) => (c === 255 ? 254 : c + 1)) }
    expect(await validator.checker!.check(block, offByOne, all)).toEqual({ ok: true })
    expect(validator.agree(block, truth, offByOne)).toBe(true)
    const seen = all.find((i) => truth.colours[i * 4 + 3]! > 1 && truth.colours[i * 4]! < 200)!
    const lie: BlockResult = { ...truth, colours: truth.colours.slice() }
    lie.colours[seen * 4] = lie.colours[seen * 4]! + 2
    const verdict = await validator.checker!.check(block, lie, all)
    expect(verdict).toMatchObject({ ok: false, unit: seen })
    expect(verdict.ok === false && verdict.reason).toMatch(
      new RegExp(`vertex ${4000 + seen} of camera ${frame.cameraId}`),
    )
    expect(validator.agree(block, truth, lie)).toBe(false)
    expect(validator.disputed(block, truth, lie, 10)).toEqual([seen])
    // A sample that misses the lie passes it: a sample proves little about one wrong thread.
    expect(
      await validator.checker!.check(
        block,
        lie,
        all.filter((u) => u !== seen),
      ),
    ).toEqual({ ok: true })
  })
})

describe('the coordinator', () => {
  /** A job of two 64-thread cameras, leased in blocks of 16, with a validator whose checker refutes results marked as lies. */
  function setup(validation = {}, withChecker = true) {
    const time = manualClock()
    const lies = new WeakSet<object>()
    const validator: ResultValidator = {
      agree: (_t, a, b) => lies.has(a as object) === lies.has(b as object),
      disputed: () => [0],
      ...(withChecker && {
        checker: {
          check: (_t: unknown, result: unknown) =>
            lies.has(result as object)
              ? { ok: false as const, unit: 0, reason: 'a lie' }
              : { ok: true as const },
        },
        cheapCheckUnits: 2,
      }),
    }
    const job = testJob(4, [testCamera(0), { ...testCamera(1), t: [0.1, 0, 2] }])
    const coordinator = new Coordinator<LedgerSummary>(
      {
        jobs: [
          {
            spec: vertexJobSpec(job),
            kind: vertexKind,
            sinks: ledgerSinks(),
            validator,
            taskUnits: { min: 16, max: 16, calibration: 16 },
          },
        ],
        scheduling: { speculation: false },
        validation,
      },
      { clock: time.clock, random: () => 0.5 },
    )
    const addFrame = (index: number) => {
      for (const camera of job.cameras)
        coordinator.addInput(job.jobId, index, {
          cameraId: camera.id,
          index,
          captureTime: 0,
          imageUrl: 'data:,',
        })
    }
    const answer = (who: string, lie = false) => {
      const lease = coordinator.handleLeaseRequest(who)
      if (lease === undefined) return undefined
      const block = lease.block as Block
      const result: BlockResult = { ...block, colours: new Uint8Array(block.vertexCount * 4) }
      if (lie) lies.add(result)
      return coordinator.handleBlockResult(who, lease.leaseId, result)
    }
    return { coordinator, time, addFrame, answer }
  }

  it('quarantines a liar at its first refuted result, withdraws what it gave to the open round, and refuses it from then on', () => {
    const { coordinator, addFrame, answer } = setup()
    const quarantined: string[] = []
    const withdrawn: number[] = []
    coordinator.on('participantQuarantined', (q) => quarantined.push(q.participantId))
    coordinator.on('resultWithdrawn', (w) => withdrawn.push(w.units))
    const completed: LedgerSummary[] = []
    coordinator.on('frameComplete', (s) => completed.push(s))
    addFrame(0)
    expect(answer('honest')).toBe(true)
    expect(answer('liar', true)).toBe(false)
    expect(quarantined).toEqual(['liar'])
    expect(withdrawn).toEqual([16])
    expect(coordinator.handleLeaseRequest('liar')).toBeUndefined()
    expect(coordinator.quarantined('liar')).toBe(true)
    expect(() => coordinator.admit('liar', 'link')).toThrow(QuarantinedError)
    while (answer('honest') === true);
    expect(completed).toHaveLength(1)
    expect(coordinator.statistics().threadsCounted).toBe(128)
    expect(coordinator.statistics().validation).toMatchObject({
      quarantined: 1,
      resultsWithdrawn: 1,
      unitsWithdrawn: 16,
    })
  })

  it('names in a published round the identities answerable for it: all whose result stands unchecked in whole', () => {
    const { coordinator, addFrame, answer } = setup()
    const reports: (string[] | undefined)[] = []
    coordinator.on('frameComplete', (_s, report) => reports.push(report.answerable))
    addFrame(0)
    // Blocks of 16 of 64-thread cameras: a full check samples 256, so it covers a block whole.
    for (const who of ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']) expect(answer(who)).toBe(true)
    expect(reports).toEqual([[]])
    // Checked cheaply (2 of 16 threads) once trusted: answerable from then on.
    for (let frame = 1; frame <= 3; frame++) {
      addFrame(frame)
      while (answer('a') === true);
    }
    expect(reports.at(-1)).toEqual(['a'])
  })

  it('trusting nobody, publishes a round only once every task was computed twice and agreed', () => {
    const { coordinator, addFrame, answer } = setup({ mode: 'replicate-all' })
    const completed: LedgerSummary[] = []
    coordinator.on('frameComplete', (s) => completed.push(s))
    addFrame(0)
    coordinator.handleParticipantJoined('b')
    for (let i = 0; i < 8; i++) expect(answer('a')).toBe(true)
    expect(completed).toHaveLength(0)
    // `a` gets none of its own replicas; `b` computes them all.
    expect(coordinator.handleLeaseRequest('a')).toBeUndefined()
    for (let i = 0; i < 8; i++) answer('b')
    expect(completed).toHaveLength(1)
    expect(coordinator.statistics().validation).toMatchObject({ replicas: 8, replicaUnits: 128 })
  })

  it('trusting nobody, with nobody else at work: the coordinator checks a result itself, or (no checker) takes it unverified', () => {
    // `b` is here but never asks: after replicaPatienceMs it no longer counts.
    const { coordinator, time, addFrame, answer } = setup({ mode: 'replicate-all', replicaPatienceMs: 5000 })
    const completed: LedgerSummary[] = []
    coordinator.on('frameComplete', (s) => completed.push(s))
    addFrame(0)
    coordinator.handleParticipantJoined('b')
    for (let i = 0; i < 8; i++) answer('a')
    time.advance(4999)
    expect(completed).toHaveLength(0)
    time.advance(1)
    expect(completed).toHaveLength(1)
    expect(coordinator.statistics().validation).toMatchObject({
      unverifiedAccepted: 0,
      checks: 8,
      replicas: 0,
    })

    // Alone from the start, without a checker: each result is taken unverified at once, and said so.
    const bare = setup({ mode: 'replicate-all', replicaPatienceMs: 5000 }, false)
    const unverified: number[] = []
    bare.coordinator.on('resultUnverified', ({ frameIndex }) => unverified.push(frameIndex))
    bare.addFrame(0)
    for (let i = 0; i < 8; i++) bare.answer('alone')
    expect(unverified).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    expect(bare.coordinator.idle).toBe(true)
  })
})

describe('the simulator’s adversaries', () => {
  it('parses MODEL[:SHARE]', () => {
    expect(parseAdversaries('colluder:20%')).toMatchObject({ models: ['colluder'], share: 0.2 })
    expect(parseAdversaries('mix').models).toHaveLength(8)
    expect(parseAdversaries('none').share).toBe(0)
    expect(() => parseAdversaries('gremlin:0.2')).toThrow(/one of random/)
    expect(() => parseAdversaries('random:2')).toThrow(/between 0 and 1/)
  })

  it('with 20 % of every kind of adversary: none of the honest accused, every liar caught, no wrong vertex published', () => {
    const report = simulate({
      ...simulationDefaults,
      profile: builtInProfiles.event!,
      peers: 200,
      durationMs: 40_000,
      live: { latencyBudgetMs: 5000, overload: 'downgrade' },
      validation: {},
      adversaries: parseAdversaries('mix:0.2'),
    })
    const v = report.validation!
    expect(v.adversariesJoined).toBeGreaterThan(20)
    expect(v.falseAccusations).toBe(0)
    expect(v.liarsUncaught).toBe(0)
    expect(v.quarantined).toBeGreaterThan(20)
    expect(v.wrongItemsPublished).toBe(0)
    expect(v.itemsPublished).toBeGreaterThan(0)
    expect(report.lostThreads).toBe(0)
    expect(report.doubleCountedThreads).toBe(0)
    expect(v.extraWorkShare).toBeLessThan(0.15)
  })

  it('in a match run: no invented match published, a caught liar’s slices computed again, every true match kept once every liar is caught', () => {
    const run = (adversaries: string) =>
      simulate({
        ...simulationDefaults,
        profile: builtInProfiles['match-run']!,
        peers: 60,
        durationMs: 150_000,
        jobs: [{ kind: 'video-match', class: 'batch', units: 64, wholeRounds: true }],
        validation: {},
        adversaries: parseAdversaries(adversaries),
      }).validation!
    // Lazy participants hide every match (the empty result); the others invent matches too.
    for (const v of [run('lazy:0.3'), run('mix:0.3')]) {
      expect(v.falseAccusations).toBe(0)
      expect(v.quarantined).toBeGreaterThan(5)
      expect(v.findings!.invented).toBe(0)
      expect(v.findings!.true).toBeGreaterThan(100)
      if (v.liarsUncaught === 0) expect(v.findings!.missing).toBe(0)
    }
    const lazy = run('lazy:0.3')
    expect(lazy.liarsUncaught).toBe(0)
    expect(lazy.roundsRecomputed).toBeGreaterThan(0)
  })

  it('without checks, replication decides: colluders get wrong results published now and then, and nobody is accused', () => {
    const report = simulate({
      ...simulationDefaults,
      profile: builtInProfiles.event!,
      peers: 100,
      durationMs: 30_000,
      validation: {},
      checkers: false,
      adversaries: parseAdversaries('colluder:0.4'),
    })
    const v = report.validation!
    expect(v.quarantined).toBe(0)
    expect(v.counters.replicas).toBeGreaterThan(0)
    expect(v.extraWorkShare).toBeGreaterThan(0.05)
    expect(report.framesCompleted).toBeGreaterThan(0)
  })
})
