import type { ChunkJournal } from '../recorder/uploader.ts'

/*
 * The recorder's journal in IndexedDB: every chunk the recorder produced stays on the device until
 * the server acknowledged it, with what is needed to finish the upload (the recording's id, write
 * token and server). A page that is reloaded, or a laptop whose lid closed mid-upload, finds its
 * unfinished recordings here and uploads the rest. Chunks are keyed by [recording, end offset], so
 * "everything the server holds" is one key range to delete.
 */

/** A recording the journal holds, as the page left it. */
export interface JournalledRecording {
  id: string
  writeToken: string
  shareId: string
  /** The server peer's URL (the share link's origin). */
  serverUrl: string
  mimeType: string
  createdAt: number
  /** `stopped`: every byte was produced, only the upload and publish remain. */
  state: 'recording' | 'stopped'
}

interface StoredChunk {
  recording: string
  end: number
  offset: number
  bytes: Uint8Array
}

const request = <T>(r: IDBRequest<T>) =>
  new Promise<T>((resolve, reject) => {
    r.onsuccess = () => resolve(r.result)
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'))
  })

const done = (tx: IDBTransaction) =>
  new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve()
    tx.onerror = tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction failed'))
  })

/** The recorder's journal database (one per origin). */
export class RecordingJournal {
  private readonly db: IDBDatabase

  private constructor(db: IDBDatabase) {
    this.db = db
  }

  static async open(name = 'crowdmesh-recorder'): Promise<RecordingJournal> {
    const opening = indexedDB.open(name, 1)
    opening.onupgradeneeded = () => {
      opening.result.createObjectStore('recordings', { keyPath: 'id' })
      opening.result.createObjectStore('chunks', { keyPath: ['recording', 'end'] })
    }
    return new RecordingJournal(await request(opening))
  }

  async save(recording: JournalledRecording): Promise<void> {
    const tx = this.db.transaction('recordings', 'readwrite')
    tx.objectStore('recordings').put(recording)
    await done(tx)
  }

  /** Recordings not yet published, oldest first. */
  async unfinished(): Promise<JournalledRecording[]> {
    const tx = this.db.transaction('recordings', 'readonly')
    const all = await request(tx.objectStore('recordings').getAll() as IDBRequest<JournalledRecording[]>)
    return all.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** The chunks kept for a recording, in order. */
  async chunks(id: string): Promise<{ offset: number; bytes: Uint8Array }[]> {
    const tx = this.db.transaction('chunks', 'readonly')
    const range = IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER])
    const stored = await request(tx.objectStore('chunks').getAll(range) as IDBRequest<StoredChunk[]>)
    return stored.map((c) => ({ offset: c.offset, bytes: c.bytes }))
  }

  /** The recording is published: nothing of it is kept. */
  async forget(id: string): Promise<void> {
    const tx = this.db.transaction(['recordings', 'chunks'], 'readwrite')
    tx.objectStore('recordings').delete(id)
    tx.objectStore('chunks').delete(IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER]))
    await done(tx)
  }

  /** The uploader's journal for one recording. */
  for(id: string): ChunkJournal {
    return {
      put: async (offset, bytes) => {
        const tx = this.db.transaction('chunks', 'readwrite')
        // A copy: the uploader's piece may be a view on a larger buffer.
        tx.objectStore('chunks').put({
          recording: id,
          end: offset + bytes.length,
          offset,
          bytes: bytes.slice(),
        })
        await done(tx)
      },
      dropBefore: async (offset) => {
        const tx = this.db.transaction('chunks', 'readwrite')
        tx.objectStore('chunks').delete(IDBKeyRange.bound([id, 0], [id, offset]))
        await done(tx)
      },
    }
  }

  close(): void {
    this.db.close()
  }
}
