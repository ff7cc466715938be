import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises'
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
 *
 * Every recording's meta is read once, at start (`index`): share ids and recording ids are looked up
 * in memory from then on, so an id that does not exist costs no file access. A recording's file is
 * open only while it is written to (`release` closes it when its last connection goes).
 */

/** Something about a recording request is not allowed: unknown id, wrong token. */
export class RecordingAccessError extends CrowdmeshError {}

/** The recording is published: it takes no more bytes. */
export class RecordingPublishedError extends CrowdmeshError {
  constructor() {
    super('this recording is published: it takes no more bytes')
  }
}

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

interface KnownRecording {
  meta: RecordingMeta
  /** Open while the recording is written to. */
  file: FileHandle | undefined
  offset: number
}

/** Recordings in a folder (default of the server peer: `recordings/` under its data folder). */
export class RecordingStore {
  readonly root: string
  /** Recordings read so far (metas and offsets; a file handle while written to). */
  private readonly loaded = new Map<string, KnownRecording>()
  /** Every recording's share id → its id, once indexed; and every recording's id. */
  private readonly shares = new Map<string, string>()
  private readonly ids = new Set<string>()
  /** Recordings not yet published. */
  private readonly unpublished = new Set<string>()
  private indexed: Promise<void> | undefined
  /** Per recording, who waits for its next bytes (the processing pipeline). */
  private readonly growth = new Map<string, PromiseWithResolvers<void>>()
  /** Per recording, the last operation queued: appends and publish run one at a time, in order. */
  private readonly tails = new Map<string, Promise<unknown>>()

  constructor(root: string) {
    this.root = root
  }

  /**
   * Reads every recording's meta once (the first call does; later calls wait for it): ids and share
   * ids are known in memory from then on. A folder whose meta cannot be read is left alone.
   */
  index(): Promise<void> {
    this.indexed ??= (async () => {
      for (const entry of await readdir(this.root).catch(() => [] as string[])) {
        if (!idPattern.test(entry)) continue
        const meta = await this.readMeta(entry).catch(() => undefined)
        if (meta === undefined || meta.id !== entry) continue
        this.shares.set(meta.shareId, meta.id)
        this.ids.add(meta.id)
        if (meta.state === 'recording') this.unpublished.add(meta.id)
      }
    })()
    return this.indexed
  }

  /**
   * The recordings, newest first, at most `max` (the operator's console lists them). Reads each
   * one's meta: for a console's click, not for every request.
   */
  async list(max: number): Promise<RecordingMeta[]> {
    await this.index()
    const metas: RecordingMeta[] = []
    for (const id of this.ids) {
      const meta = this.loaded.get(id)?.meta ?? (await this.readMeta(id).catch(() => undefined))
      if (meta !== undefined) metas.push(meta)
    }
    return metas.sort((a, b) => b.createdAt - a.createdAt).slice(0, max)
  }

  /** How many recordings are created and not yet published. */
  get unpublishedCount(): number {
    return this.unpublished.size
  }

  /** Creates a recording; `mimeType` is what the recorder produces (e.g. `video/webm;codecs=vp9`). */
  async create(mimeType: string, options: { live?: boolean } = {}): Promise<NewRecording> {
    await this.index()
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
    this.shares.set(meta.shareId, id)
    this.ids.add(id)
    this.unpublished.add(id)
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

  /** A recording's meta and where its bytes end now (throws `RecordingAccessError` for an unknown id). */
  async state(id: string): Promise<{ offset: number; meta: RecordingMeta }> {
    const { offset, meta } = await this.load(id)
    return { offset, meta }
  }

  /**
   * Appends `bytes` at `offset`, which must be where the recording's bytes end; resolves with the new
   * end once the bytes are durable. Writes to one recording are applied one after another.
   */
  append(id: string, offset: number, bytes: Uint8Array): Promise<number> {
    const run = async (): Promise<number> => {
      const recording = await this.load(id)
      if (recording.meta.state !== 'recording') throw new RecordingPublishedError()
      if (offset !== recording.offset) throw new OffsetMismatchError(recording.offset, offset)
      recording.file ??= await open(this.mediaPath(id), 'r+')
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

  /** Closes the recording's file until it is written to again (its last connection went). */
  release(id: string): Promise<void> {
    return this.serially(id, async () => {
      const recording = this.loaded.get(id)
      const file = recording?.file
      if (recording === undefined || file === undefined) return
      recording.file = undefined
      await file.close()
    })
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
      if (recording.meta.state === 'published') return recording.meta
      if (recording.offset !== finalBytes) throw new OffsetMismatchError(recording.offset, finalBytes)
      recording.meta = { ...recording.meta, state: 'published', publishedAt: Date.now(), finalBytes }
      await this.saveMeta(recording.meta)
      this.unpublished.delete(id)
      // Nothing is written to it any more.
      await recording.file?.close()
      recording.file = undefined
      return recording.meta
    })
  }

  /**
   * A recording as its share link shows it: published ones, and live ones while they are recorded.
   * An unknown share id is answered from the index, without reading a file.
   */
  async shared(shareId: string): Promise<{ meta: RecordingMeta; mediaPath: string } | undefined> {
    if (!idPattern.test(shareId)) return undefined
    await this.index()
    const id = this.shares.get(shareId)
    if (id === undefined) return undefined
    const { meta } = await this.load(id)
    return meta.state === 'published' || meta.live === true
      ? { meta, mediaPath: this.mediaPath(id) }
      : undefined
  }

  /**
   * Recordings never published whose bytes and meta were last written more than `maxAgeMs` ago:
   * abandoned (`delete` them). Published ones are never listed; neither is a folder this version
   * cannot read.
   */
  async abandoned(maxAgeMs: number, now = Date.now()): Promise<string[]> {
    await this.index()
    const found: string[] = []
    for (const id of this.ids) {
      const touched = Math.max(
        ...(await Promise.all(
          ['meta.json', 'media.bin'].map(
            async (f) => (await stat(join(this.folder(id), f)).catch(() => undefined))?.mtimeMs ?? 0,
          ),
        )),
      )
      if (now - touched < maxAgeMs) continue
      const meta = this.loaded.get(id)?.meta ?? (await this.readMeta(id).catch(() => undefined))
      if (meta?.state === 'recording') found.push(id)
    }
    return found
  }

  /** Deletes a recording: its folder, with its bytes and outputs, and every trace of it here. */
  delete(id: string): Promise<void> {
    return this.serially(id, async () => {
      const recording = this.loaded.get(id)
      this.loaded.delete(id)
      await recording?.file?.close()
      const shareId = recording?.meta.shareId ?? [...this.shares].find(([, of]) => of === id)?.[0]
      if (shareId !== undefined) this.shares.delete(shareId)
      this.ids.delete(id)
      this.unpublished.delete(id)
      await rm(this.folder(id), { recursive: true, force: true })
    })
  }

  /** Bytes every recording's folder holds (the recorder's bytes and the outputs). */
  async usage(): Promise<number> {
    let bytes = 0
    for (const entry of await readdir(this.root).catch(() => [] as string[])) {
      if (!idPattern.test(entry)) continue
      for (const file of await readdir(join(this.root, entry)).catch(() => [] as string[]))
        bytes += (await stat(join(this.root, entry, file)).catch(() => undefined))?.size ?? 0
    }
    return bytes
  }

  /** The path of a recording's bytes (for the processing pipeline and progressive playback). */
  mediaPath(id: string): string {
    return join(this.folder(id), 'media.bin')
  }

  /** Closes every open file. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.tails.values()])
    const recordings = [...this.loaded.values()]
    this.loaded.clear()
    for (const r of recordings) await r.file?.close()
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

  private async load(id: string): Promise<KnownRecording> {
    const known = this.loaded.get(id)
    if (known !== undefined) return known
    if (!idPattern.test(id)) throw new RecordingAccessError('no such recording')
    await this.index()
    if (!this.ids.has(id)) throw new RecordingAccessError('no such recording')
    let meta: RecordingMeta
    let size: number
    try {
      meta = await this.readMeta(id)
      size = (await stat(this.mediaPath(id))).size
    } catch {
      throw new RecordingAccessError('no such recording')
    }
    // Another call may have loaded it meanwhile: keep one.
    const raced = this.loaded.get(id)
    if (raced !== undefined) return raced
    const recording: KnownRecording = { meta, file: undefined, offset: size }
    this.loaded.set(id, recording)
    return recording
  }

  private async readMeta(id: string): Promise<RecordingMeta> {
    return metaSchema.parse(JSON.parse(await readFile(join(this.folder(id), 'meta.json'), 'utf8')))
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
