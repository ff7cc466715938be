import { createReadStream } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { extname, join, normalize, sep } from 'node:path'

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
}

/**
 * The Content-Security-Policy of the web app's pages: scripts and styles from this origin only (Vite
 * emits no inline script); fetches and sockets to any http(s)/ws(s) origin, because frames, the
 * relay and the server peer for recordings listen on other ports of the event's host; media from
 * the camera and blobs. Nothing may frame the page or post a form.
 */
export const appPagePolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' blob: mediastream: http: https:",
  "connect-src 'self' http: https: ws: wss: data: blob:",
  "worker-src 'self' blob:",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** A built web app served from a folder (the participant app, under /app/). */
export interface StaticFiles {
  /** One of the app's pages (default index.html), or undefined when the app is not built. */
  index(page?: string): Promise<string | undefined>
  /** Sends the file at `path` (relative to the folder); false when there is none. */
  send(path: string, response: ServerResponse): Promise<boolean>
}

/**
 * Serves a folder's files by relative path; a path that would leave the folder, or names a folder,
 * is simply not found. Vite names assets by content hash, so they are cached for good.
 */
export function staticFiles(dir: string): StaticFiles {
  const root = normalize(dir + sep)
  return {
    async index(page = 'index.html') {
      return readFile(join(root, page), 'utf8').catch(() => undefined)
    },
    async send(path, response) {
      let decoded: string
      try {
        decoded = decodeURIComponent(path)
      } catch {
        // A malformed escape (a lone `%`) names no file.
        return false
      }
      const file = normalize(join(root, decoded))
      if (!file.startsWith(root)) return false
      const info = await stat(file).catch(() => undefined)
      if (info === undefined || !info.isFile()) return false
      response.writeHead(200, {
        'content-type': contentTypes[extname(file)] ?? 'application/octet-stream',
        ...(extname(file) === '.html' && { 'content-security-policy': appPagePolicy }),
        'content-length': info.size,
        'cache-control': path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
      })
      // A file removed or unreadable mid-way ends that response alone.
      const stream = createReadStream(file)
      stream.on('error', () => response.destroy())
      response.once('close', () => stream.destroy())
      stream.pipe(response)
      return true
    },
  }
}
