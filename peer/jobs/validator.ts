import type { AnyJobKind, JobSpec, ResultValidator, WorkerEnv } from './kind.ts'

/**
 * A job's validator built from its kind (`JobKind.validation`), its checker over `env` (the frames,
 * files and videos the coordinator can read, as a worker would): what a host passes as
 * `JobInit.validator`. Undefined for a kind that says nothing of validation.
 */
export function kindValidator(
  kind: AnyJobKind,
  job: JobSpec,
  env: WorkerEnv | undefined,
): ResultValidator | undefined {
  const validation = kind.validation
  if (validation === undefined) return undefined
  const checker = env === undefined ? undefined : validation.checker?.(job, env)
  return {
    agree: (task, a, b) => validation.agree(task, a, b),
    disputed: (task, a, b, max) => validation.disputed(task, a, b, max),
    ...(checker !== undefined && { checker }),
    ...(validation.cheapCheckUnits !== undefined && { cheapCheckUnits: validation.cheapCheckUnits }),
    ...(validation.fullCheckUnits !== undefined && { fullCheckUnits: validation.fullCheckUnits }),
    ...(validation.sparseLies === true && { sparseLies: true }),
    ...(validation.findings !== undefined && { findings: validation.findings.bind(validation) }),
  }
}
