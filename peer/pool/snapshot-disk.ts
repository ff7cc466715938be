import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { MessageTooLargeError } from '../protocol/errors.ts'
import { SnapshotCacheError, type SnapshotStorage } from './snapshot-cache.ts'

/** Snapshot folders as folders on disk under `root` (a Node participant's). */
export function diskStorage(root: string): SnapshotStorage {
  return {
    wipe: (folder) => rm(join(root, folder), { recursive: true, force: true }),
    async write(folder, name, bytes) {
      await mkdir(join(root, folder), { recursive: true })
      await writeFile(join(root, folder, name), bytes)
    },
    remove: (folder, name) => rm(join(root, folder, name), { force: true }),
    async read(folder, name, maxBytes) {
      const path = join(root, folder, name)
      const size = await stat(path).then(
        (info) => info.size,
        () => {
          throw new SnapshotCacheError(`${name} is gone from ${folder}`)
        },
      )
      if (size > maxBytes) throw new MessageTooLargeError(size, maxBytes)
      return new Uint8Array(await readFile(path))
    },
    list: (folder) => readdir(join(root, folder)).catch(() => [] as string[]),
  }
}
