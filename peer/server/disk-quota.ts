import { statfs } from 'node:fs/promises'
import { CrowdmeshError } from '../protocol/errors.ts'

/** Storing more would pass the server's quota for recordings, or eat into its disk's reserve. */
export class StorageFullError extends CrowdmeshError {}

/** The quota's limits (from `recordingLimits`). */
export interface DiskQuotaInit {
  /** The recordings' folder: its disk is the one measured. */
  root: string
  /** Bytes the recordings may take in all. */
  maxTotalBytes: number
  /** Free bytes kept on the disk. */
  minFreeBytes: number
}

/** How long a reading of the disk's free space is used before it is read again, ms. */
const freeSpaceTtlMs = 1000

/**
 * The server's storage for recordings, checked before anything is stored: what its recordings take
 * (measured from the folders at start and on every sweep, counted up as chunks are stored in
 * between) against its own quota, and the disk's free space (statfs, read at most once a second)
 * against a reserve, so the server refuses well before the disk is full, and other programs on the
 * disk keep room too.
 */
export class DiskQuota {
  private readonly init: DiskQuotaInit
  private readonly measureUsage: () => Promise<number>
  private used = 0
  private free: { bytes: number; at: number } | undefined

  /** `measureUsage` sums what the recordings take on disk now. */
  constructor(init: DiskQuotaInit, measureUsage: () => Promise<number>) {
    this.init = init
    this.measureUsage = measureUsage
  }

  /** Bytes the recordings take, as last measured and counted since. */
  get usedBytes(): number {
    return this.used
  }

  /** Measures what the recordings take again (the outputs ffmpeg wrote count from then on). */
  async measure(): Promise<void> {
    this.used = await this.measureUsage()
    this.free = undefined
  }

  /** Throws `StorageFullError` unless `bytes` more can be stored (0: whether anything can). */
  async check(bytes: number): Promise<void> {
    const { maxTotalBytes, minFreeBytes } = this.init
    if (this.used + bytes > maxTotalBytes || (bytes === 0 && this.used >= maxTotalBytes))
      throw new StorageFullError(
        `the server's storage for recordings is full (${this.used} of ${maxTotalBytes} bytes used)`,
      )
    const free = await this.freeBytes()
    if (free - bytes < minFreeBytes)
      throw new StorageFullError(
        `the server's disk has ${free} bytes free and keeps ${minFreeBytes} free: it takes no more recordings now`,
      )
  }

  /** `bytes` were stored (or freed, negative). */
  add(bytes: number): void {
    this.used = Math.max(0, this.used + bytes)
    if (this.free !== undefined) this.free.bytes -= bytes
  }

  private async freeBytes(): Promise<number> {
    const now = Date.now()
    if (this.free === undefined || now - this.free.at > freeSpaceTtlMs) {
      const disk = await statfs(this.init.root)
      this.free = { bytes: disk.bavail * disk.bsize, at: now }
    }
    return this.free.bytes
  }
}
