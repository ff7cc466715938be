import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { partitionFrame } from '../../peer/jobs/vertex/partitioner.ts'

const frame = { cameraId: 2, index: 5, captureTime: 0, imageUrl: 'file:///f.png' }

describe('partitionFrame', () => {
  it('covers every vertex exactly once, in order, with blocks of the given size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 700 }), (total, size) => {
        const blocks = partitionFrame('j', frame, total, size)
        let next = 0
        for (const block of blocks) {
          expect(block.firstVertex).toBe(next)
          expect(block.vertexCount).toBeLessThanOrEqual(size)
          expect(block).toMatchObject({ jobId: 'j', frameIndex: 5, cameraId: 2, imageUrl: 'file:///f.png' })
          next += block.vertexCount
        }
        expect(next).toBe(total)
        expect(blocks.length).toBe(Math.ceil(total / size))
      }),
    )
  })

  it('refuses a block size that is not a positive integer', () => {
    expect(() => partitionFrame('j', frame, 10, 0)).toThrow(
      expect.objectContaining({ name: 'InvalidOptionError' }),
    )
    expect(() => partitionFrame('j', frame, 10, 2.5)).toThrow(
      expect.objectContaining({ name: 'InvalidOptionError' }),
    )
  })
})
