import { type LocalityBench, runLocalityBench } from './locality.ts'
import { runTaskPoolBench, type TaskPoolBench } from './task-pool.ts'

/* The pool section of `crowdmesh bench` (issue 15): the task pool's speed and what locality saves. */

/** What the section measured. */
export interface PoolBench {
  /** Each grant and completion its own commit. */
  each: TaskPoolBench
  /** 64 writes a commit. */
  grouped: TaskPoolBench
  locality: LocalityBench
}

export const poolTargets = {
  'pool.grantsAndCompletionsPerSec': 20_000,
  'locality.bytesSavedRatio': 10,
} as const

/** Runs the section (about a minute and a half). */
export async function runPoolBench(onProgress: (done: number, total: number) => void): Promise<PoolBench> {
  const each = await runTaskPoolBench({ groupCommit: 1, onProgress: (d, t) => onProgress(d, t * 3) })
  const grouped = await runTaskPoolBench({ groupCommit: 64, onProgress: (d, t) => onProgress(t + d, t * 3) })
  const locality = await runLocalityBench({ onProgress: (d, t) => onProgress(2 * t + d, t * 3) })
  return { each, grouped, locality }
}

/** The section's figures, as `bench.json` holds them. */
export function poolFigures(pool: PoolBench): Record<string, unknown> {
  const { each, grouped, locality } = pool
  return {
    'pool.grantsAndCompletionsPerSec': each.grantsAndCompletionsPerSec,
    'pool.grantsAndCompletionsPerSecGrouped': grouped.grantsAndCompletionsPerSec,
    'pool.rssGrowthMiB': Math.max(each.rssMiB, grouped.rssMiB),
    'pool.each': each,
    'pool.grouped': grouped,
    'locality.bytesSavedRatio': locality.bytesSavedRatio,
    'locality.seconds': { with: locality.withLocality.seconds, without: locality.without.seconds },
    'locality.tailSeconds': {
      grouped: locality.withLocality.tailSeconds,
      ungrouped: locality.ungrouped.tailSeconds,
    },
    'locality.churn': {
      seconds: locality.churn.seconds,
      bytesCopied: locality.churn.bytesCopied,
      departures: locality.churn.departures,
      regranted: locality.churn.regranted,
      slicesDone: locality.churn.tasksDone,
      slices: locality.churn.slices,
    },
    'locality.run': locality,
  }
}

/** The section's lines of the printed table. */
export function poolTable(pool: PoolBench): string {
  const { each, grouped, locality } = pool
  const meets = (ok: boolean) => (ok ? 'meets' : 'misses')
  const gb = (bytes: number) => (bytes / 1e9).toFixed(0)
  return (
    `  pool.grantsAndCompletionsPerSec     ${each.grantsAndCompletionsPerSec.toLocaleString('en')}/s, each its own commit; ` +
    `${grouped.grantsAndCompletionsPerSec.toLocaleString('en')}/s with 64 writes a commit ` +
    `(${each.tasks.toLocaleString('en')} tasks, ${each.fileMiB} MiB file, resident memory +${Math.max(each.rssMiB, grouped.rssMiB)} MiB; ` +
    `${meets(grouped.grantsAndCompletionsPerSec >= poolTargets['pool.grantsAndCompletionsPerSec'])} ≥ 20 k)\n` +
    `  locality.bytesSavedRatio            ${locality.bytesSavedRatio}× fewer bytes copied with locality ` +
    `(${gb(locality.withLocality.bytesCopied)} GB against ${gb(locality.without.bytesCopied)} GB; ` +
    `reference shard hits ${locality.withLocality.referenceHits} against ${locality.without.referenceHits}); ` +
    `finished in ${locality.withLocality.seconds} s against ${locality.without.seconds} s ` +
    `(${meets(locality.bytesSavedRatio >= poolTargets['locality.bytesSavedRatio'])} ≥ 10×)\n` +
    `  locality.tailSeconds                95 % to 100 % done: ${locality.withLocality.tailSeconds} s grouped by length, ${locality.ungrouped.tailSeconds} s not\n` +
    `  locality.churn                      0.5 %/min of the crowd replaced, folders from disk: ${locality.churn.departures} left, ` +
    `${locality.churn.regranted} slices granted again, ${locality.churn.tasksDone}/${locality.churn.slices} done once; ` +
    `${gb(locality.churn.bytesCopied)} GB copied, finished in ${locality.churn.seconds} s\n`
  )
}
