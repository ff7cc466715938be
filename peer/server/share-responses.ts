import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { HttpError } from '../../signaling/http.ts'
import { sleep } from '../protocol/clock.ts'
import { followFile, pipelineOutputs } from './media-pipeline.ts'
import type { FaststartLayout } from './mp4-faststart.ts'

/*
 * What a share link answers: the pages, and media with byte ranges (a `<video>` seeks by asking for
 * ranges). The moov-first MP4 is served as two file ranges, its header and the fragmented file's body.
 * Media goes out only as the media types below, never as a type a recorder named; pages carry a
 * Content-Security-Policy that allows their own style (by hash), their media and nothing else.
 */

/** The types a recording's bytes are served as: what browsers play, never what they would run. */
export const mediaTypes = {
  webm: 'video/webm',
  mp4: 'video/mp4',
  thumbnail: 'image/jpeg',
  ogg: 'audio/ogg',
  m4a: 'audio/mp4',
  captions: 'text/vtt; charset=utf-8',
} as const

/** The type a recorder's own bytes are served as: MP4 if it recorded MP4, else WebM. */
export function recorderMediaType(mimeType: string): string {
  return /^video\/mp4(?:;|$)/i.test(mimeType.trim()) ? mediaTypes.mp4 : mediaTypes.webm
}

/** A range of a file, one part of a response body. */
export interface FileRange {
  path: string
  start: number
  length: number
}

/** Sends file ranges as one body, honouring a Range request; reads from disk as it goes. */
export async function sendRanges(
  request: IncomingMessage,
  response: ServerResponse,
  parts: FileRange[],
  type: string,
): Promise<void> {
  const size = parts.reduce((n, p) => n + p.length, 0)
  const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '')
  let start = 0
  let end = size - 1
  if (range !== null) {
    start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1])
    end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), size - 1) : size - 1
    if (start > end || start >= size) {
      response.writeHead(416, { 'content-range': `bytes */${size}` })
      return void response.end()
    }
  }
  response.writeHead(range !== null ? 206 : 200, {
    'content-type': type,
    'content-length': end - start + 1,
    'accept-ranges': 'bytes',
    'cache-control': 'public, max-age=3600',
    ...(range !== null && { 'content-range': `bytes ${start}-${end}/${size}` }),
  })
  if (request.method === 'HEAD') return void response.end()
  let at = 0
  for (const part of parts) {
    const from = Math.max(start, at) - at
    const to = Math.min(end + 1, at + part.length) - at
    at += part.length
    if (from >= to) continue
    const stream = createReadStream(part.path, { start: part.start + from, end: part.start + to - 1 })
    if (!(await copy(stream, response))) return
  }
  response.end()
}

/**
 * Writes a file stream to a response with backpressure; resolves false (and the file is closed) as
 * soon as the viewer is gone, even while waiting for a drain that will never come.
 */
async function copy(stream: Readable, response: ServerResponse): Promise<boolean> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (response.destroyed) return false
      if (!response.write(chunk) && !(await drained(response))) return false
    }
    return !response.destroyed
  } finally {
    stream.destroy()
  }
}

/** Resolves true when the response drains, false when it closes first (a viewer that went away). */
function drained(response: ServerResponse): Promise<boolean> {
  if (response.destroyed) return Promise.resolve(false)
  return new Promise((resolve) => {
    const done = (result: boolean) => () => {
      response.off('drain', onDrain)
      response.off('close', onClose)
      resolve(result)
    }
    const onDrain = done(true)
    const onClose = done(false)
    response.once('drain', onDrain)
    response.once('close', onClose)
  })
}

/** How a live stream follows its file. */
export interface LiveFollow {
  /** Whether the recording's processing still writes the file. */
  following: () => boolean
  /** The stream ends when the file has not grown for this long, ms. */
  stallMs: number
  /** The server stops. */
  signal: AbortSignal
}

/**
 * A live recording's fragmented MP4 from its start, following it as ffmpeg writes it, until the
 * recording's processing ends, the file stops growing for `stallMs`, or the viewer goes: a `<video>`
 * plays fragmented MP4 as it arrives. A viewer who comes before the first fragment (the link is
 * shared as recording starts) waits up to `stallMs` for it: a page's `<video>` does not ask twice.
 */
export async function sendLive(
  request: IncomingMessage,
  response: ServerResponse,
  path: string,
  follow: LiveFollow,
): Promise<void> {
  const gone = new AbortController()
  response.once('close', () => gone.abort())
  const signal = AbortSignal.any([gone.signal, follow.signal])
  const waitUntil = Date.now() + follow.stallMs
  while ((await stat(path).catch(() => undefined)) === undefined) {
    if (Date.now() >= waitUntil || signal.aborted) throw new HttpError(404, 'nothing recorded yet')
    await sleep(200, signal)
  }
  response.writeHead(200, { 'content-type': mediaTypes.mp4, 'cache-control': 'no-store' })
  if (request.method === 'HEAD') return void response.end()
  let grewAt = Date.now()
  const input = followFile(path, {
    // Past the end of what is written, and processing is over or stalled: the stream ends.
    end: () => (!follow.following() || Date.now() - grewAt > follow.stallMs ? 0 : undefined),
    grew: () => sleep(200, signal),
    signal,
  })
  for await (const piece of input) {
    grewAt = Date.now()
    if (response.destroyed || (!response.write(piece) && !(await drained(response)))) break
  }
  response.end()
}

/** The moov-first MP4: the header written at publish, then the fragmented file's body in place. */
export async function sendFaststart(
  request: IncomingMessage,
  response: ServerResponse,
  folder: string,
): Promise<void> {
  const layout = await readFile(join(folder, pipelineOutputs.faststartLayout), 'utf8').catch(() => undefined)
  if (layout === undefined) throw new HttpError(404, 'not ready')
  const { bodyOffset, bodyLength } = JSON.parse(layout) as { bodyOffset: number; bodyLength: number }
  // Both parts are read from disk per range: an hour's header is 4 MB, and a seek needs little of it.
  const headerPath = join(folder, pipelineOutputs.faststartHeader)
  return sendRanges(
    request,
    response,
    [
      { path: headerPath, start: 0, length: (await stat(headerPath)).size },
      { path: join(folder, pipelineOutputs.fragmentedMp4), start: bodyOffset, length: bodyLength },
    ],
    mediaTypes.mp4,
  )
}

/** Writes the moov-first MP4's header and layout beside the fragmented MP4 (see `mp4-faststart.ts`). */
export async function writeFaststart(folder: string, layout: FaststartLayout): Promise<void> {
  await writeFile(join(folder, pipelineOutputs.faststartHeader), layout.header)
  await writeFile(
    join(folder, pipelineOutputs.faststartLayout),
    JSON.stringify({
      bodyOffset: layout.bodyOffset,
      bodyLength: layout.bodyLength,
      durationSeconds: layout.durationSeconds,
    }),
  )
}

/** The share pages' own style: inline, allowed by its hash. */
const pageStyle =
  'body{margin:0;background:#0f1117;color:#e8eaf0;font-family:system-ui,sans-serif}main{max-width:60rem;margin:0 auto;padding:1rem}video{width:100%;max-height:80vh;background:#000;border-radius:.5rem}a{color:#9cc4ff}'

/**
 * The Content-Security-Policy of the share pages: no script at all, the page's own style by its
 * hash, media and images from this server only, never framed, no base or form to hijack.
 */
export const sharePagePolicy = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(pageStyle).digest('base64')}'`,
  "img-src 'self'",
  "media-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** Text made safe for HTML, in text and in quoted attributes. */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  )
}

/** A share link's page around its player; `body` is HTML whose every interpolated string was escaped. */
function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>${pageStyle}</style></head>
<body><main>${body}</main></body></html>`
}

/** The page of a recording being recorded: its fragmented MP4, played as it grows. */
export function livePage(shareId: string): string {
  const base = `/v/${escapeHtml(encodeURIComponent(shareId))}`
  return page(
    'crowdmesh recording (live)',
    `<h1>Recording now</h1><video controls autoplay muted playsinline src="${base}/live.mp4"></video>
<p>This is being recorded. Reload once it is finished to watch it whole.</p>`,
  )
}

/** The share page: an HTML5 player with the MP4 and the WebM, the thumbnail as its poster. */
export function sharePage(shareId: string, captions: boolean): string {
  const base = `/v/${escapeHtml(encodeURIComponent(shareId))}`
  const track = captions
    ? `<track kind="captions" src="${base}/captions.vtt" srclang="en" label="Captions" default>`
    : ''
  return page(
    'crowdmesh recording',
    `<h1>Recording</h1><video controls preload="metadata" poster="${base}/thumb.jpg"><source src="${base}/video.mp4" type="video/mp4"><source src="${base}/video.webm" type="video/webm">${track}</video>
<p><a href="${base}/video.mp4" download>MP4</a> · <a href="${base}/video.webm" download>WebM</a></p>`,
  )
}

/** Answers with a share page under its policy. */
export function sendPage(response: ServerResponse, html: string, cache: 'no-store' | 'no-cache'): void {
  response.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': cache,
    'content-security-policy': sharePagePolicy,
  })
  response.end(html)
}
