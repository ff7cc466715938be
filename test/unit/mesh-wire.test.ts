import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeFrame, FrameDecoder, FrameKind } from '../../peer/mesh/framing.ts'
import { decodeOutcome, encodeOutcome } from '../../peer/mesh/gossip.ts'
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
})
