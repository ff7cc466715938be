import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/**
 * A recording as an earlier run of the server peer left it on disk (meta.json and media.bin), for
 * tests of what a server does with what it finds at start: old metas, large files, stale folders.
 */
export async function writeRecordingFolder(
  root: string,
  recording: {
    mimeType: string
    media: Uint8Array
    state: 'recording' | 'published'
    live?: boolean
  },
): Promise<{ id: string; shareId: string; folder: string }> {
  const id = randomBytes(16).toString('base64url')
  const shareId = randomBytes(16).toString('base64url')
  const folder = join(root, id)
  await mkdir(folder, { recursive: true })
  await writeFile(join(folder, 'media.bin'), recording.media)
  await writeFile(
    join(folder, 'meta.json'),
    JSON.stringify({
      id,
      shareId,
      tokenHash: randomBytes(32).toString('hex'),
      mimeType: recording.mimeType,
      createdAt: Date.now(),
      state: recording.state,
      ...(recording.live === true && { live: true }),
      ...(recording.state === 'published' && {
        publishedAt: Date.now(),
        finalBytes: recording.media.length,
      }),
    }),
  )
  return { id, shareId, folder }
}

/** A short WebM (VP8, no sound) whose title tag holds `title`, as bytes. */
export async function webmTitled(dir: string, title: string): Promise<Uint8Array> {
  const path = join(dir, `titled-${randomBytes(4).toString('hex')}.webm`)
  await run('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-y'],
    ...['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-t', '1'],
    ...['-c:v', 'libvpx', '-deadline', 'realtime', '-metadata', `title=${title}`, '-f', 'webm', path],
  ])
  return new Uint8Array(await readFile(path))
}
