import { UnknownJobKindError } from '../protocol/errors.ts'
import type { AnyJobKind } from './kind.ts'
import { imageFilterKind } from './image-filter/index.ts'
import { fingerprintKind } from './match/fingerprint-kind.ts'
import { matchKind } from './match/match-kind.ts'
import { vertexKind } from './vertex/index.ts'
import { showJob } from './vertex/simulation.ts'

/**
 * The job kinds this build runs, by name. A kind's workers are loaded on demand (`workers.cpu`,
 * `workers.webgl` import their code), so listing a kind here costs a browser little until it gets
 * a task of that kind.
 */
export const jobKinds: ReadonlyMap<string, AnyJobKind> = new Map<string, AnyJobKind>([
  [vertexKind.name, vertexKind],
  [imageFilterKind.name, imageFilterKind],
  [fingerprintKind.name, fingerprintKind as AnyJobKind],
  [matchKind.name, matchKind as AnyJobKind],
])

/** The kind of `name` at `version`; throws `UnknownJobKindError` when this build has no such kind. */
export function kindOf(name: string, version: number, kinds = jobKinds): AnyJobKind {
  const kind = kinds.get(name)
  if (kind === undefined)
    throw new UnknownJobKindError(`no job kind named ${JSON.stringify(name.slice(0, 64))}`)
  if (kind.version !== version)
    throw new UnknownJobKindError(`job kind ${name} is version ${kind.version} here, not ${version}`)
  return kind
}

/**
 * What runs when no job is named: the live show (`crowdmesh start` and `crowdmesh simulate`
 * without `--jobs`), its kind and how a simulation shapes its job from `--grid` and `--cameras`.
 */
export const defaultJob = { kind: vertexKind as AnyJobKind, simulated: showJob }

/** What a participant that states no kinds runs: the one kind there was before job kinds. */
export const legacyKindTag = `${vertexKind.name}@${vertexKind.version}`
