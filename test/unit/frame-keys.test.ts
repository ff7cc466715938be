import { decodeBlockResult, encodeBlockResult } from '../../peer/jobs/vertex/schemas.ts'
import { describe, expect, it } from 'vitest'
import {
  FrameKeyError,
  generateFrameKey,
  importFrameKey,
  keyedUrl,
  open,
  openKeyedImage,
  seal,
  sealOverheadBytes,
} from '../../peer/protocol/frame-keys.ts'
import { decodeResultFrame, encodeResultFrame } from '../../peer/mesh/work-protocol.ts'
import { InvalidMessageError } from '../../peer/protocol/errors.ts'

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255)

describe('per-frame keys', () => {
  it('seal then open gives the bytes back; the sealed bytes differ and carry IV and tag', async () => {
    const key = await generateFrameKey()
    const plain = bytes(1000)
    const sealed = await seal(key, plain)
    expect(sealed.length).toBe(plain.length + sealOverheadBytes)
    expect(Buffer.from(sealed).includes(Buffer.from(plain.subarray(0, 64)))).toBe(false)
    expect(await open(key, sealed)).toEqual(plain)
    // A key travels in a lease as base64url and imports to the same key.
    expect(await open(await importFrameKey(key.encoded), sealed)).toEqual(plain)
  })

  it('refuses another key, a changed byte, a truncated message and a different context', async () => {
    const key = await generateFrameKey()
    const sealed = await seal(key, bytes(256), bytes(8))
    await expect(open(await generateFrameKey(), sealed, bytes(8))).rejects.toThrow(FrameKeyError)
    const altered = sealed.slice()
    altered[40]! ^= 1
    await expect(open(key, altered, bytes(8))).rejects.toThrow(/does not authenticate/)
    await expect(open(key, sealed.subarray(0, 20), bytes(8))).rejects.toThrow(/too short/)
    await expect(open(key, sealed, bytes(9))).rejects.toThrow(FrameKeyError)
    await expect(importFrameKey('c2hvcnQ')).rejects.toThrow(/32 bytes/)
  })

  it('a keyed image URL carries its key in the fragment, and only that key opens the image', async () => {
    const key = await generateFrameKey()
    const url = keyedUrl('http://127.0.0.1:1/sealed/abc', key)
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:1\/sealed\/abc#key=[\w-]{43}$/)
    const image = bytes(5000)
    expect(await openKeyedImage(await seal(key, image), url)).toEqual(image)
    // An unkeyed URL passes bytes through untouched.
    expect(await openKeyedImage(image, 'http://127.0.0.1:1/frames/x.png')).toBe(image)
  })

  it('a result frame sealed with the lease key decodes with it; an unsealed or foreign one is an invalid message', async () => {
    const key = await generateFrameKey()
    const result = {
      jobId: 'j',
      frameIndex: 3,
      cameraId: 1,
      firstVertex: 10,
      vertexCount: 4,
      colours: bytes(16),
    }
    const sealed = await encodeResultFrame(7, 9, encodeBlockResult(result), key)
    const decoded = await decodeResultFrame(sealed, key, decodeBlockResult)
    expect(decoded.requestId).toBe(7)
    expect(decoded.leaseId).toBe(9)
    expect(decoded.result).toEqual(result)
    const plain = await encodeResultFrame(7, 9, encodeBlockResult(result))
    expect((await decodeResultFrame(plain, key, decodeBlockResult)).result).toBeInstanceOf(
      InvalidMessageError,
    )
    expect(
      (await decodeResultFrame(sealed, await generateFrameKey(), decodeBlockResult)).result,
    ).toBeInstanceOf(InvalidMessageError)
    // The ids are authenticated: a frame moved to another lease does not open.
    const moved = sealed.slice()
    moved[4] = 10
    expect((await decodeResultFrame(moved, key, decodeBlockResult)).result).toBeInstanceOf(
      InvalidMessageError,
    )
  })
})
