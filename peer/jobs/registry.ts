import { UnknownJobKindError } from '../protocol/errors.ts'
import type { AnyJobKind } from './kind.ts'
import { imageFilterKind } from './image-filter/index.ts'
import { vertexKind } from './vertex/index.ts'

/**
 * The job kinds this build runs, by name. A kind's workers are loaded on demand (`workers.cpu`,
 * `workers.webgl` import their code), so listing a kind here costs a browser little until it gets
 * a task of that kind.
 */
export const jobKinds: ReadonlyMap<string, AnyJobKind> = new Map<string, AnyJobKind>([
  [vertexKind.name, vertexKind],
  [imageFilterKind.name, imageFilterKind],
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
