import { describe, expect, it } from 'vitest'
import { parseJsonMessage } from '../../peer/protocol/schemas.ts'
import {
  decodeBlockResult,
  encodeBlockResult,
  parseBlock,
  parseVertexJob,
  vertexJobSchema,
} from '../../peer/jobs/vertex/schemas.ts'
import { testJob } from '../support/fixtures.ts'

const caught = (f: () => unknown): Error => {
  try {
    f()
  } catch (error) {
    return error as Error
  }
  throw new Error('expected an error')
}

describe('message schemas', () => {
  it('accepts a well-formed job announcement', () => {
    const job = testJob()
    expect(parseVertexJob(JSON.parse(JSON.stringify(job)))).toEqual(job)
  })

  it('names the offending field of a malformed job', () => {
    const job = JSON.parse(JSON.stringify(testJob()))
    job.cameras[0].k = [1, 2, 3]
    const error = caught(() => parseVertexJob(job)) as Error & { field: string }
    expect(error.name).toBe('InvalidMessageError')
    expect(error.field).toBe('cameras.0.k')
  })

  it('rejects a box whose min is not below its max', () => {
    const job = JSON.parse(JSON.stringify(testJob()))
    job.space.box.min = [1, 0, 0]
    const error = caught(() => parseVertexJob(job)) as Error & { field: string }
    expect(error.field).toBe('space.box')
  })

  it('rejects blocks with a bad URL scheme or a negative range', () => {
    const block = {
      jobId: 'j',
      frameIndex: 0,
      cameraId: 0,
      imageUrl: 'ftp://x',
      firstVertex: 0,
      vertexCount: 4,
    }
    expect((caught(() => parseBlock(block)) as Error & { field: string }).field).toBe('imageUrl')
    const negative = { ...block, imageUrl: 'file:///x.png', firstVertex: -1 }
    expect((caught(() => parseBlock(negative)) as Error & { field: string }).field).toBe('firstVertex')
  })

  it('refuses oversized and non-JSON control messages', () => {
    expect(caught(() => parseJsonMessage(vertexJobSchema, 'x'.repeat(70_000))).name).toBe(
      'MessageTooLargeError',
    )
    const error = caught(() => parseJsonMessage(vertexJobSchema, '{"jobId":')) as Error & { field: string }
    expect(error.name).toBe('InvalidMessageError')
  })
})

describe('binary block results', () => {
  const result = {
    jobId: 'job-é',
    frameIndex: 3,
    cameraId: 7,
    firstVertex: 1000,
    vertexCount: 3,
    colours: new Uint8Array([1, 2, 3, 255, 0, 0, 0, 0, 9, 8, 7, 200]),
  }

  it('round-trips', () => {
    const decoded = decodeBlockResult(encodeBlockResult(result))
    expect({ ...decoded, colours: [...decoded.colours] }).toEqual({ ...result, colours: [...result.colours] })
  })

  it('rejects truncated, padded and foreign bytes with a named field', () => {
    const bytes = encodeBlockResult(result)
    const field = (b: Uint8Array) => (caught(() => decodeBlockResult(b)) as Error & { field: string }).field
    expect(field(bytes.subarray(0, 10))).toBe('(header)')
    expect(field(bytes.subarray(0, bytes.length - 1))).toBe('colours')
    expect(field(new Uint8Array([...bytes, 0]))).toBe('colours')
    const foreign = bytes.slice()
    foreign[0] = 0
    expect(field(foreign)).toBe('magic')
    const huge = bytes.slice()
    new DataView(huge.buffer).setUint32(20, 0xffffffff, true)
    expect(field(huge)).toBe('vertexCount')
  })
})
