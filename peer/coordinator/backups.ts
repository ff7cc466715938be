import { expectedTaskMs, type SpeedEstimate, type TaskCost } from './block-sizer.ts'
import type { LeaseBook, LeaseRecord } from './lease-book.ts'
import type { WorkQueue } from './work-queue.ts'

/** Active leases of a frame that a request for a backup looks at, oldest first. */
const speculationScan = 32

/**
 * When the holder of a lease will finish, as far as the coordinator can tell: when expected, or, once
 * overdue, as long again as it has run so far (a crashed or stalled holder looks later and later).
 */
function holderFinish(record: LeaseRecord, now: number): number {
  return record.expectedAt > now ? record.expectedAt : now + (now - record.grantedAt)
}

/**
 * Backup tasks: with nothing left to grant, the lease of the earliest unfinished frame whose holder is
 * expected to finish last, if the asking participant would finish its block sooner (as MapReduce's
 * backup tasks and LATE do); undefined when no copy would help.
 */
export function chooseBackup(
  queue: WorkQueue,
  leases: LeaseBook,
  asker: {
    participantId: string
    speed: SpeedEstimate
    held: LeaseRecord[]
    now: number
    maxCopies: number
    /** What a unit of the queue's job costs. */
    cost: TaskCost
  },
): LeaseRecord | undefined {
  const { participantId, speed, held, now, maxCopies, cost } = asker
  if (speed.threadsPerSec <= 0) return undefined
  // It starts a backup once the leases it holds are done (a result may still be on its way).
  const startsAt = held.reduce((t, r) => Math.max(t, r.expectedAt), now)
  for (const work of queue.inOrder()) {
    let best: LeaseRecord | undefined
    let bestFinish = 0
    // The oldest leases are the likeliest laggards: look at the first few, not at all of them.
    let looked = 0
    for (const record of leases.activeInFrame(work.round)) {
      if (++looked > speculationScan) break
      if (record.participantId === participantId) continue
      // A replica's copy could land with the identity it checks: replicas get no backups.
      if (record.replica) continue
      if (leases.copies(record.key) >= maxCopies) continue
      if (held.some((h) => h.key === record.key)) continue
      const finishThere = holderFinish(record, now)
      const finishHere = startsAt + expectedTaskMs(speed, cost, record.units)
      if (finishHere >= finishThere) continue
      if (best === undefined || finishThere > bestFinish) {
        best = record
        bestFinish = finishThere
      }
    }
    if (best !== undefined) return best
    // Only the earliest frame with outstanding work is worth backing up.
    if (leases.activeCountInFrame(work.round) > 0) return undefined
  }
  return undefined
}

/** How many outstanding leases of the earliest frame with any could still take a backup copy. */
export function backupsWanted(queue: WorkQueue, leases: LeaseBook, maxCopies: number): number {
  for (const work of queue.inOrder()) {
    if (leases.activeCountInFrame(work.round) === 0) continue
    let wanted = 0
    for (const r of leases.activeInFrame(work.round))
      if (!r.replica && leases.copies(r.key) < maxCopies) wanted++
    return wanted
  }
  return 0
}
