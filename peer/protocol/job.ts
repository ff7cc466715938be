import type { TaskBase } from '../jobs/kind.ts'

/**
 * A task granted to a participant until `deadline` (coordinator clock, ms). The task travels as
 * `block` whatever its kind (the wire name predates job kinds).
 */
export interface Lease<T extends TaskBase = TaskBase> {
  readonly leaseId: number
  readonly block: T
  readonly deadline: number
}
