import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AdmissionBook } from '../../peer/mesh/admission.ts'
import {
  encodeFrame,
  FrameDecoder,
  FrameKind,
  frameLimits,
  helloFrameLimits,
  ReceiveBudget,
} from '../../peer/mesh/framing.ts'
import { decodeJobOutcome, encodeJobOutcome } from '../../peer/mesh/gossip.ts'
import { decodeOutcome, encodeOutcome } from '../../peer/jobs/vertex/outcome-codec.ts'
import { parseControl, toParticipantSchema } from '../../peer/mesh/work-protocol.ts'
import { JobDirectory } from '../../peer/participant/job-directory.ts'
import { meshDefaults } from '../../peer/protocol/defaults.ts'
import { InvalidMessageError, MessageTooLargeError } from '../../peer/protocol/errors.ts'

describe('frame decoder', () => {
  it('returns the same frames however the bytes are split', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 300 })), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 20 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(
            frames.map(([binary, payload]) =>
              encodeFrame(binary ? FrameKind.binary : FrameKind.control, payload),
            ),
          )
          const decoder = new FrameDecoder()
          const out = []
          for (let offset = 0, k = 0; offset < bytes.length; k++) {
            const size = cuts[k % cuts.length]!
            out.push(...decoder.push(bytes.subarray(offset, offset + size)))
            offset += size
          }
          expect(out.map((f) => [f.kind === FrameKind.binary, Buffer.from(f.payload)])).toEqual(
            frames.map(([binary, payload]) => [binary, Buffer.from(payload)]),
          )
          expect(decoder.pending).toBe(0)
        },
      ),
    )
  })

  it('refuses an unknown kind and an oversized length before buffering the payload', () => {
    expect(() => new FrameDecoder().push(new Uint8Array([7, 0, 0, 0, 0]))).toThrow(InvalidMessageError)
    const header = new Uint8Array(5)
    header[0] = FrameKind.control
    new DataView(header.buffer).setUint32(1, 1 << 20, true)
    expect(() => new FrameDecoder().push(header)).toThrow(MessageTooLargeError)
  })
})

function header(kind: number, length: number): Uint8Array {
  const bytes = new Uint8Array(5)
  bytes[0] = kind
  new DataView(bytes.buffer).setUint32(1, length, true)
  return bytes
}

describe('frame decoder before hello', () => {
  it('refuses a binary frame, and a control frame over the hello limit, at the header', () => {
    const binary = new FrameDecoder(helloFrameLimits, 'before hello')
    expect(() => binary.push(header(FrameKind.binary, 100))).toThrow(
      expect.objectContaining({
        name: 'FrameKindRefusedError',
        message: expect.stringMatching(/before hello/),
      }),
    )
    const large = new FrameDecoder(helloFrameLimits)
    expect(() => large.push(header(FrameKind.control, meshDefaults.maxHelloBytes + 1))).toThrow(
      MessageTooLargeError,
    )
    // A hello-sized control frame passes.
    const hello = new FrameDecoder(helloFrameLimits)
    expect(hello.push(encodeFrame(FrameKind.control, new Uint8Array(1000)))).toHaveLength(1)
  })

  it('decodes one frame at a time, so limits changed after a frame apply to the next header', () => {
    const decoder = new FrameDecoder(helloFrameLimits)
    decoder.append(
      Buffer.concat([
        encodeFrame(FrameKind.control, new Uint8Array(3)),
        encodeFrame(FrameKind.binary, new Uint8Array(9)),
      ]),
    )
    expect(decoder.next()?.kind).toBe(FrameKind.control)
    decoder.limits = frameLimits
    expect(decoder.next()?.payload.length).toBe(9)
    expect(decoder.pending).toBe(0)
  })
})

describe('receive budget', () => {
  it('takes what fits, refuses what would pass the limit, and gives back', () => {
    const budget = new ReceiveBudget(100)
    budget.take(60)
    expect(() => budget.take(41)).toThrow(expect.objectContaining({ name: 'ReceiveBudgetError' }))
    expect(budget.used).toBe(60)
    budget.give(60)
    budget.take(100)
    expect(budget.used).toBe(100)
  })
})

describe('admission book', () => {
  it('holds at most maxPeersPerLink peers of one link, frees a place on release, counts no trusted peer', () => {
    const book = new AdmissionBook(2)
    book.admit('a', 'link')
    book.admit('b', 'link')
    book.admit('b', 'link')
    expect(() => book.admit('c', 'link')).toThrow(
      expect.objectContaining({ name: 'LinkFullError', message: expect.stringMatching(/2 peers/) }),
    )
    expect(book.has('c')).toBe(false)
    book.admit('c', 'other')
    book.admit('coordinator', undefined)
    expect(book.count('link')).toBe(2)
    book.release('a')
    book.admit('d', 'link')
    expect([book.has('a'), book.has('d'), book.size]).toEqual([false, true, 4])
    // A peer moving to another link frees its place on the first.
    book.admit('d', 'other')
    expect(book.count('link')).toBe(1)
  })
})

describe('outcome codec', () => {
  it('round-trips a snapshot and thins one that would not fit', () => {
    const ids = Uint32Array.from([0, 1, 2, 200, 70_000, 262_143])
    const rgb = Uint8Array.from({ length: ids.length * 3 }, (_, i) => i)
    const snapshot = { frameIndex: 7, resolution: [64, 64, 64] as const, colouredTotal: ids.length, ids, rgb }
    const decoded = decodeOutcome(encodeOutcome(snapshot))
    expect(decoded.frameIndex).toBe(7)
    expect([...decoded.ids]).toEqual([...ids])
    expect([...decoded.rgb]).toEqual([...rgb])
    const thin = decodeOutcome(encodeOutcome(snapshot, 40))
    expect(thin.ids.length).toBeLessThan(ids.length)
    expect(thin.colouredTotal).toBe(ids.length)
  })

  it('refuses ids outside the grid and truncated colours', () => {
    const bytes = encodeOutcome({
      frameIndex: 0,
      resolution: [2, 2, 2],
      colouredTotal: 1,
      ids: Uint32Array.from([7]),
      rgb: new Uint8Array(3),
    })
    expect(() => decodeOutcome(bytes.subarray(0, bytes.length - 1))).toThrow(/rgb/)
    const outside = Uint8Array.from(bytes)
    outside[28] = 9 // the first id's gap: vertex 9 of an 8-vertex grid
    expect(() => decodeOutcome(outside)).toThrow(/outside the grid/)
  })

  it('names the job of every gossiped outcome in an envelope, and refuses one without a job id', () => {
    const payload = Uint8Array.from([1, 2, 3])
    const bytes = encodeJobOutcome('photos-é', payload)
    const { jobId, payload: back } = decodeJobOutcome(bytes)
    expect(jobId).toBe('photos-é')
    expect([...back]).toEqual([1, 2, 3])
    expect(() => decodeJobOutcome(new Uint8Array(0))).toThrow(/no job id/)
    expect(() => decodeJobOutcome(Uint8Array.from([0, 1, 2]))).toThrow(/no job id/)
    expect(() => decodeJobOutcome(Uint8Array.from([5, 97]))).toThrow(/no job id/)
    expect(() => decodeJobOutcome(Uint8Array.from([1, 0xff]))).toThrow(/UTF-8/)
    expect(() => encodeJobOutcome('j'.repeat(129), payload)).toThrow(/129/)
  })
})

describe('the work protocol with job kinds', () => {
  const parse = (message: unknown) =>
    parseControl(toParticipantSchema, new TextEncoder().encode(JSON.stringify(message)))
  const job = { jobId: 'photos', kind: 'image-filter', version: 1, description: { tile: 64 } }

  it('welcomes with the event’s jobs, at most 16, each named by a kind and a version', () => {
    const welcome = { type: 'welcome', participantId: 'p', event: 'e', jobs: [job] }
    expect(parse(welcome)).toEqual(welcome)
    expect(() => parse({ ...welcome, jobs: Array.from({ length: 17 }, () => job) })).toThrow(/jobs/)
    expect(() => parse({ ...welcome, jobs: [{ ...job, kind: 'Image Filter' }] })).toThrow(/kind/)
    expect(() => parse({ ...welcome, jobs: [{ ...job, version: 0 }] })).toThrow(/version/)
  })

  it('announces jobs added and ended, and leases a task that names its job (its kind checks the rest)', () => {
    expect(parse({ type: 'job-added', job })).toEqual({ type: 'job-added', job })
    expect(parse({ type: 'job-ended', jobId: 'photos' })).toEqual({ type: 'job-ended', jobId: 'photos' })
    expect(() => parse({ type: 'job-ended', jobId: '' })).toThrow(/jobId/)
    const lease = { leaseId: 3, block: { jobId: 'photos', frameIndex: 2, x: 0, y: 0 }, deadline: 10 }
    expect(parse({ type: 'lease', requestId: 1, lease })).toEqual({ type: 'lease', requestId: 1, lease })
    expect(() =>
      parse({ type: 'lease', requestId: 1, lease: { ...lease, block: { frameIndex: 2 } } }),
    ).toThrow(/jobId/)
  })

  it('checks a leased task against its job’s kind at the participant, and states every kind it has', () => {
    const directory = new JobDirectory({ workers: () => Promise.reject(new Error('not here')) })
    expect(directory.tags).toEqual(['vertex@1', 'image-filter@1'])
    const photos = {
      jobId: 'photos',
      kind: 'image-filter',
      version: 1,
      description: { filter: { type: 'box', radius: 1 }, tile: 64 },
    }
    expect(
      directory.set([
        photos,
        { ...photos, jobId: 'later', version: 2 },
        { ...photos, jobId: 'x', kind: 'dna' },
      ]),
    ).toEqual(['later', 'x'])
    expect(() => directory.add({ ...photos, jobId: 'bad', description: { tile: 1 } })).toThrow(
      InvalidMessageError,
    )
    expect(() => directory.task({ jobId: 'x', frameIndex: 0 })).toThrow(/no job x/)
    expect(() => directory.task({ jobId: 'photos', frameIndex: 0 })).toThrow(InvalidMessageError)
  })
})
