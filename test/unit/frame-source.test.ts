import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodePng } from '../../peer/participant/png.ts'
import { frameSource } from '../../peer/participant/frame-source.ts'

const png = encodePng(3, 2, new Uint8Array(3 * 2 * 4).fill(120))
let server: Server
let base: string
let requests = 0
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'crowdmesh-frames-'))
  await writeFile(join(dir, 'ok.png'), png)
  await writeFile(join(dir, 'broken.png'), Buffer.from('not a png at all'))
  server = createServer((req, res) => {
    requests++
    if (req.url === '/ok.png') res.end(png)
    else if (req.url === '/big.png') res.end(Buffer.alloc(4096))
    else if (req.url === '/chunked.png') {
      // No content-length: the limit must hold while reading.
      res.write(Buffer.alloc(800))
      res.end(Buffer.alloc(800))
    } else {
      res.statusCode = 404
      res.end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('frameSource', () => {
  it('decodes file: and http: frames and shares one fetch per URL', async () => {
    const frames = frameSource()
    const fromFile = await frames.get(pathToFileURL(join(dir, 'ok.png')).href)
    expect([fromFile.width, fromFile.height, fromFile.rgba[0]]).toEqual([3, 2, 120])
    const before = requests
    const [a, b] = await Promise.all([frames.get(`${base}/ok.png`), frames.get(`${base}/ok.png`)])
    expect(a).toBe(b)
    await frames.get(`${base}/ok.png`)
    expect(requests - before).toBe(1)
  })

  it('keeps at most maxFrames decoded frames', async () => {
    const frames = frameSource({ maxFrames: 1 })
    await frames.get(`${base}/ok.png`)
    await frames.get(pathToFileURL(join(dir, 'ok.png')).href)
    expect(frames.size).toBe(1)
  })

  it('fails clearly on a broken file, a 404, an oversized body, a missing file and a foreign scheme', async () => {
    const frames = frameSource({ maxBytes: 1024 })
    const failure = (url: string) =>
      frames.get(url).then(
        () => 'resolved',
        (e: Error) => e.name,
      )
    expect(await failure(pathToFileURL(join(dir, 'broken.png')).href)).toBe('FrameFetchError')
    expect(await failure(`${base}/missing.png`)).toBe('FrameFetchError')
    expect(await failure(`${base}/big.png`)).toBe('FrameFetchError')
    expect(await failure(`${base}/chunked.png`)).toBe('FrameFetchError')
    expect(await failure(pathToFileURL(join(dir, 'none.png')).href)).toBe('FrameFetchError')
    expect(await failure('gopher://x/y.png')).toBe('FrameFetchError')
  })

  it('does not cache a failure: a retry fetches again', async () => {
    const frames = frameSource()
    await frames.get(`${base}/missing.png`).catch(() => undefined)
    expect(frames.size).toBe(0)
  })

  it('honours an aborted signal', async () => {
    const frames = frameSource()
    const name = await frames.get(`${base}/ok.png`, AbortSignal.abort()).then(
      () => 'resolved',
      (e: Error) => e.name,
    )
    expect(name).toBe('AbortError')
  })
})
