import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { type FileHandle, mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { CrowdmeshError } from '../protocol/errors.ts'

/*
 * The server peer's recordings on disk: one folder per recording under the store's root, holding
 * `meta.json` (written whole to a temporary file, then renamed over the old one) and `media.bin`, the
 * recorder's bytes in order. Bytes are appended only at the current end (a write elsewhere is refused,
 * as tus answers 409), and a write resolves only once the bytes are on disk (fdatasync), so a byte
 * the server acknowledges survives a crash of the server. After a restart a recording's offset is its
 * file's size: bytes written but not yet acknowledged are the recorder's own bytes at their right
 * place, and the recorder resumes after them.
 */

/** Something about a recording request is not allowed: unknown id, wrong token, bad state. */
export class RecordingAccessError extends CrowdmeshError {}

/** A write did not start at the recording's current end: `expected` is where it must start. */
export class OffsetMismatchError extends CrowdmeshError {
  readonly expected: number
  constructor(expected: number, got: number) {
    super(`write at offset ${got} refused: the recording's bytes end at ${expected}`)
    this.expected = expected
  }
}

/** Ids are 128 random bits in base64url: they name folders, so nothing else may pass. */
const idPattern = /^[\w-]{22}$/

const metaSchema = z.object({
  id: z.string().regex(idPattern),
  shareId: z.string().regex(idPattern),
  /** SHA-256 of the write token: the token itself is never stored. */
  tokenHash: z.string().regex(/^[0-9a-f]{64}$/),
  mimeType: z.string().max(200),
  createdAt: z.number(),
  state: z.enum(['recording', 'published']),
  /** Holders of the share link may watch while it is recorded (the recorder chose so). */
  live: z.boolean().optional(),
  publishedAt: z.number().optional(),
  /** Bytes the recorder declared at publish. */
  finalBytes: z.number().int().min(0).optional(),
})
/** What the store keeps about a recording. */
export type RecordingMeta = z.infer<typeof metaSchema>

/** A new recording: its id, the token only its recorder holds, and the id of its share link. */
export interface NewRecording {
  id: string
  writeToken: string
  shareId: string
}

interface OpenRecording {
  meta: RecordingMeta
  file: FileHandle
  offset: number
}

/** Recordings in a folder (default of the server peer: `recordings/` under its data folder). */
export class RecordingStore {
  readonly root: string
  private readonly open = new Map<string, OpenRecording>()
  private readonly shares = new Map<string, string>()
  /** Per recording, who waits for its next bytes (the processing pipeline). */
  private readonly growth = new Map<string, PromiseWithResolvers<void>>()
  /** Per recording, the last operation queued: appends and publish run one at a time, in order. */
  private readonly tails = new Map<string, Promise<unknown>>()

  constructor(root: string) {
    this.root = root
  }

  /** Creates a recording; `mimeType` is what the recorder produces (e.g. `video/webm;codecs=vp9`). */
  async create(mimeType: string, options: { live?: boolean } = {}): Promise<NewRecording> {
    const id = newId()
    const writeToken = randomBytes(24).toString('base64url')
    const meta: RecordingMeta = {
      id,
      shareId: newId(),
      tokenHash: hash(writeToken),
      mimeType: mimeType.slice(0, 200),
      createdAt: Date.now(),
      state: 'recording',
      ...(options.live === true && { live: true }),
    }
    await mkdir(this.folder(id), { recursive: true })
    await writeFile(this.mediaPath(id), new Uint8Array(0), { flag: 'wx' })
    await this.saveMeta(meta)
    return { id, writeToken, shareId: meta.shareId }
  }

  /**
   * Checks the write token and returns where the recording's bytes end now (the offset the recorder
   * resumes from). Throws `RecordingAccessError` for an unknown id or a wrong token.
   */
  async authorize(id: string, writeToken: string): Promise<{ offset: number; meta: RecordingMeta }> {
    const recording = await this.load(id)
    const given = Buffer.from(hash(writeToken), 'hex')
    if (!timingSafeEqual(given, Buffer.from(recording.meta.tokenHash, 'hex')))
      throw new RecordingAccessError('wrong write token for this recording')
    return { offset: recording.offset, meta: recording.meta }
  }

  /**
   * Appends `bytes` at `offset`, which must be where the recording's bytes end; resolves with the new
   * end once the bytes are durable. Writes to one recording are applied one after another.
   */
  append(id: string, offset: number, bytes: Uint8Array): Promise<number> {
    const run = async (): Promise<number> => {
      const recording = await this.load(id)
      if (recording.meta.state !== 'recording')
        throw new RecordingAccessError('this recording is published: it takes no more bytes')
      if (offset !== recording.offset) throw new OffsetMismatchError(recording.offset, offset)
      let written = 0
      while (written < bytes.length) {
        const { bytesWritten } = await recording.file.write(
          bytes,
          written,
          bytes.length - written,
          recording.offset + written,
        )
        written += bytesWritten
      }
      // Durable before acknowledged: the data, and the file's size with it.
      await recording.file.datasync()
      recording.offset += bytes.length
      this.growth.get(id)?.resolve()
      this.growth.delete(id)
      return recording.offset
    }
    return this.serially(id, run)
  }

  /** Resolves when the recording's bytes next grow. */
  grew(id: string): Promise<void> {
    let waiting = this.growth.get(id)
    if (waiting === undefined) {
      waiting = Promise.withResolvers<void>()
      this.growth.set(id, waiting)
    }
    return waiting.promise
  }

  /** Where a recording's bytes end now (throws for an unknown id). */
  async offset(id: string): Promise<number> {
    return (await this.load(id)).offset
  }

  /** The recording's folder (its outputs live there). */
  folderOf(id: string): string {
    return this.folder(id)
  }

  /** Marks a recording published once all `finalBytes` are in; the share link shows it from then on. */
  publish(id: string, finalBytes: number): Promise<RecordingMeta> {
    return this.serially(id, async () => {
      const recording = await this.load(id)
      if (recording.offset !== finalBytes) throw new OffsetMismatchError(recording.offset, finalBytes)
      if (recording.meta.state === 'published') return recording.meta
      recording.meta = { ...recording.meta, state: 'published', publishedAt: Date.now(), finalBytes }
      await this.saveMeta(recording.meta)
      return recording.meta
    })
  }

  /** The recording a share id names, if it is published (nothing else is visible through a share link). */
  /**
   * A recording as its share link shows it: published ones, and live ones while they are recorded.
   */
  async shared(shareId: string): Promise<{ meta: RecordingMeta; mediaPath: string } | undefined> {
    if (!idPattern.test(shareId)) return undefined
    const id = this.shares.get(shareId) ?? (await this.findShare(shareId))
    if (id === undefined) return undefined
    const { meta } = await this.load(id)
    return meta.state === 'published' || meta.live === true
      ? { meta, mediaPath: this.mediaPath(id) }
      : undefined
  }

  /** The path of a recording's bytes (for the processing pipeline and progressive playback). */
  mediaPath(id: string): string {
    return join(this.folder(id), 'media.bin')
  }

  /** Closes every open file. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.tails.values()])
    const recordings = [...this.open.values()]
    this.open.clear()
    for (const r of recordings) await r.file.close()
  }

  private serially<T>(id: string, run: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(id) ?? Promise.resolve()).catch(() => {}).then(run)
    this.tails.set(id, next)
    const forget = () => {
      if (this.tails.get(id) === next) this.tails.delete(id)
    }
    next.then(forget, forget)
    return next
  }

  private async load(id: string): Promise<OpenRecording> {
    const known = this.open.get(id)
    if (known !== undefined) return known
    if (!idPattern.test(id)) throw new RecordingAccessError('no such recording')
    let meta: RecordingMeta
    try {
      meta = metaSchema.parse(JSON.parse(await readFile(join(this.folder(id), 'meta.json'), 'utf8')))
    } catch {
      throw new RecordingAccessError('no such recording')
    }
    const file = await open(this.mediaPath(id), 'r+')
    const { size } = await stat(this.mediaPath(id))
    const recording: OpenRecording = { meta, file, offset: size }
    // Another call may have opened it meanwhile: keep one handle.
    const raced = this.open.get(id)
    if (raced !== undefined) {
      await file.close()
      return raced
    }
    this.open.set(id, recording)
    this.shares.set(meta.shareId, id)
    return recording
  }

  private async findShare(shareId: string): Promise<string | undefined> {
    // Share ids are not indexed on disk: a server that restarted finds them by reading the metas once.
    for (const entry of await readdir(this.root).catch(() => [] as string[])) {
      if (!idPattern.test(entry)) continue
      try {
        const meta = metaSchema.parse(
          JSON.parse(await readFile(join(this.folder(entry), 'meta.json'), 'utf8')),
        )
        this.shares.set(meta.shareId, meta.id)
        if (meta.shareId === shareId) return meta.id
      } catch {
        continue
      }
    }
    return undefined
  }

  private folder(id: string): string {
    if (!idPattern.test(id)) throw new RecordingAccessError('no such recording')
    return join(this.root, id)
  }

  private async saveMeta(meta: RecordingMeta): Promise<void> {
    const path = join(this.folder(meta.id), 'meta.json')
    const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`
    const handle = await open(temporary, 'w')
    try {
      await handle.writeFile(JSON.stringify(meta))
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temporary, path)
  }
}

function newId(): string {
  return randomBytes(16).toString('base64url')
}

function hash(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
