import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename, extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type FrameKey, seal } from '../protocol/frame-keys.ts'
import { type Logger, logger as makeLogger } from '../protocol/logger.ts'
import { guardedServer } from '../../signaling/guard.ts'
import { HttpError } from '../../signaling/http.ts'

/** An input that is an image (a camera's frame, a photograph to filter): what the store publishes. */
export interface ImageInput {
  /** Its round (the moment of a show it belongs to). */
  index: number
  imageUrl: string
}

/** A running frame store. */
export interface FrameStore {
  readonly url: string
  /** Publishes an input's image and returns the input with an http: URL participants can fetch. */
  publish<I extends ImageInput>(input: I): I
  /** Publishes an image file (a file: URL) and returns the http: URL participants fetch it by; other URLs as they are. */
  publishFile(imageUrl: string): string
  /**
   * Publishes a frame's image sealed with its frame key (read and encrypted now, served from memory):
   * the URL alone reveals nothing; a participant needs a lease of the frame to read it.
   */
  publishSealed<I extends ImageInput>(input: I, key: FrameKey): Promise<I>
  /** Stops serving a sealed image (its frame ended) and frees its memory. */
  release(imageUrl: string): void
  close(): Promise<void>
}

const types: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' }

/**
 * Serves the images of an event's rounds (cameras' frames, photographs) over HTTP, so participants on other machines fetch them the
 * way they fetch any URL. Only published frames are served, each under a random path (nothing is
 * listable and no request names a file on disk), streamed with backpressure.
 */
export async function startFrameStore(
  init: { host?: string; port?: number } = {},
  components: { logger?: Logger } = {},
): Promise<FrameStore> {
  const log = components.logger ?? makeLogger('crowdmesh:mesh:frames')
  const files = new Map<string, string>()
  const sealed = new Map<string, Uint8Array>()
  // One URL per file: a frame index that reuses an image keeps participants' decoded copy warm.
  const urls = new Map<string, string>()
  const server: Server = guardedServer(
    {
      request: async (request, response, { pathname: path }) => {
        // Browser participants fetch frames from the join page's origin (the signaling server).
        response.setHeader('access-control-allow-origin', '*')
        const readable = request.method === 'GET' || request.method === 'HEAD'
        if (!readable) throw new HttpError(405, 'frames are only read')
        const bytes = sealed.get(path)
        if (bytes !== undefined) {
          response.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': bytes.length,
            'cache-control': 'public, max-age=31536000, immutable',
          })
          return void response.end(request.method === 'HEAD' ? undefined : bytes)
        }
        const file = files.get(path)
        if (file === undefined) throw new HttpError(404, 'no such frame')
        const info = await stat(file).catch(() => undefined)
        if (info === undefined) throw new HttpError(410, 'frame no longer available')
        response.writeHead(200, {
          'content-type': types[extname(file).toLowerCase()] ?? 'application/octet-stream',
          'content-length': info.size,
          // A frame never changes once published.
          'cache-control': 'public, max-age=31536000, immutable',
        })
        if (request.method === 'HEAD') return void response.end()
        // Streamed with backpressure; a reader that goes away ends the read too.
        const stream = createReadStream(file)
        stream.on('error', () => response.destroy())
        response.once('close', () => stream.destroy())
        stream.pipe(response)
      },
    },
    { name: 'frame store' },
    log,
  )
  await new Promise<void>((resolve) => server.listen(init.port ?? 0, init.host ?? '127.0.0.1', resolve))
  const { address, port } = server.address() as AddressInfo
  const url = `http://${address}:${port}`
  const publishFile = (imageUrl: string): string => {
    if (!imageUrl.startsWith('file:')) return imageUrl
    const file = fileURLToPath(imageUrl)
    const known = urls.get(file)
    if (known !== undefined) return known
    const path = `/frames/${randomBytes(9).toString('base64url')}/${encodeURIComponent(basename(file))}`
    files.set(path, file)
    urls.set(file, `${url}${path}`)
    return `${url}${path}`
  }
  return {
    url,
    publish: (frame) => ({ ...frame, imageUrl: publishFile(frame.imageUrl) }),
    publishFile,
    async publishSealed(frame, key) {
      const plain = frame.imageUrl.startsWith('file:')
        ? await readFile(fileURLToPath(frame.imageUrl))
        : new Uint8Array(await (await fetch(frame.imageUrl)).arrayBuffer())
      const path = `/sealed/${randomBytes(12).toString('base64url')}`
      sealed.set(path, await seal(key, plain))
      return { ...frame, imageUrl: `${url}${path}` }
    },
    release(imageUrl) {
      sealed.delete(imageUrl.slice(url.length))
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
