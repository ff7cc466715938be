/*
 * The seed's similarity function (its snapshot and similarity components; BOINC's locality
 * scheduling is the same idea): a participant keeps a few snapshot folders of input files, and a new
 * task goes to the folder whose files it can reuse. Files are classed by the space they define (the
 * references, the UGC); a folder scores one for each class in which all its files agree with the
 * task's (the same files at the same locations). The best score wins, ties go to the oldest; when
 * every score is 0, an empty folder is used if there is one, else the oldest is wiped (only the
 * local copy: the remote originals are untouched).
 */

/** An input file of a task: the class of space it defines, and where it is. */
export interface SnapshotFile {
  /** `reference`, `ugc`, or any class a job kind defines. */
  class: string
  /** Its remote location (a changed location is a changed file). */
  location: string
}

/** A snapshot folder as the participant knows it. */
export interface Snapshot {
  id: string
  /** The files it holds. */
  files: readonly SnapshotFile[]
  /** When it was last picked (older first on ties). */
  usedAt: number
}

/** The score of `snapshot` for a task reading `files`: the classes in which all files agree. */
export function similarity(snapshot: Pick<Snapshot, 'files'>, files: readonly SnapshotFile[]): number {
  const held = byClass(snapshot.files)
  let score = 0
  for (const [kind, wanted] of byClass(files)) {
    const have = held.get(kind)
    if (
      have !== undefined &&
      have.size === wanted.size &&
      [...wanted].every((location) => have.has(location))
    )
      score++
  }
  return score
}

/** Which folder a task reading `files` uses, and whether it must be wiped first. */
export function chooseSnapshot(
  snapshots: readonly Snapshot[],
  files: readonly SnapshotFile[],
): { snapshot: Snapshot; score: number; wipe: boolean } | undefined {
  if (snapshots.length === 0) return undefined
  const scored = snapshots
    .map((snapshot) => ({ snapshot, score: similarity(snapshot, files) }))
    .sort((a, b) => b.score - a.score || a.snapshot.usedAt - b.snapshot.usedAt)
  const best = scored[0]!
  if (best.score > 0) return { ...best, wipe: false }
  const empty = scored.find(({ snapshot }) => snapshot.files.length === 0)
  if (empty !== undefined) return { ...empty, wipe: false }
  // Every folder scores 0: the oldest is wiped for the new task.
  return { ...best, wipe: true }
}

/** Files the task needs that the chosen folder does not hold: what must be copied. */
export function filesToCopy(
  snapshot: Pick<Snapshot, 'files'>,
  files: readonly SnapshotFile[],
): SnapshotFile[] {
  const held = new Set(snapshot.files.map((f) => `${f.class}\n${f.location}`))
  return files.filter((f) => !held.has(`${f.class}\n${f.location}`))
}

function byClass(files: readonly SnapshotFile[]): Map<string, Set<string>> {
  const classes = new Map<string, Set<string>>()
  for (const file of files) {
    let set = classes.get(file.class)
    if (set === undefined) classes.set(file.class, (set = new Set()))
    set.add(file.location)
  }
  return classes
}
