import { createReadStream } from 'node:fs'
import { once } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import { HttpError } from '../../signaling/http.ts'
import { pipelineOutputs } from './media-pipeline.ts'
import type { FaststartLayout } from './mp4-faststart.ts'

/*
 * What a share link answers: the pages, and media with byte ranges (a `<video>` seeks by asking for
 * ranges). The moov-first MP4 is served as two file ranges, its header and the fragmented file's body.
 */

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
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (response.destroyed) return void stream.destroy()
      if (!response.write(chunk)) await once(response, 'drain')
    }
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
    'video/mp4',
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

/** A share link's page around its player. */
function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{margin:0;background:#0f1117;color:#e8eaf0;font-family:system-ui,sans-serif}main{max-width:60rem;margin:0 auto;padding:1rem}video{width:100%;max-height:80vh;background:#000;border-radius:.5rem}a{color:#9cc4ff}</style></head>
<body><main>${body}</main></body></html>`
}

/** The page of a recording being recorded: its fragmented MP4, played as it grows. */
export function livePage(shareId: string): string {
  return page(
    'crowdmesh recording (live)',
    `<h1>Recording now</h1><video controls autoplay muted playsinline src="/v/${shareId}/live.mp4"></video>
<p>This is being recorded. Reload once it is finished to watch it whole.</p>`,
  )
}

/** The share page: an HTML5 player with the MP4 and the WebM, the thumbnail as its poster. */
export function sharePage(shareId: string, captions: boolean): string {
  const base = `/v/${shareId}`
  const track = captions
    ? `<track kind="captions" src="${base}/captions.vtt" srclang="en" label="Captions" default>`
    : ''
  return page(
    'crowdmesh recording',
    `<h1>Recording</h1><video controls preload="metadata" poster="${base}/thumb.jpg"><source src="${base}/video.mp4" type="video/mp4"><source src="${base}/video.webm" type="video/webm">${track}</video>
<p><a href="${base}/video.mp4" download>MP4</a> · <a href="${base}/video.webm" download>WebM</a></p>`,
  )
}
