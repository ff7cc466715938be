import type { CheckVerdict, ResultValidator, TaskBase } from '../jobs/kind.ts'
import type { ValidationPolicy } from '../protocol/defaults.ts'
import type { TrustRecord } from './trust-book.ts'

/*
 * The bookkeeping of result validation (README, "Trust"): what the coordinator decides to do with a
 * counted result (check it, replicate it, or take it on trust), and the results still open to being
 * withdrawn. The coordinator acts on the decisions (`coordinator.ts`): it runs the checks, grants
 * the replicas, and withdraws a caught liar's results from their rounds.
 */

/** Where a counted result stands. `checking` and `replicating` hold its round back from publishing. */
export type ContributionState = 'checking' | 'replicating' | 'verified' | 'accepted'

/** A task's counted result in an open round, and how far it is verified. */
export interface Contribution {
  /** Its lease key (job-scoped task key): the round's `done` set holds it. */
  readonly key: string
  readonly slot: number
  readonly frameIndex: number
  readonly task: TaskBase
  readonly units: number
  /** The identity whose result is counted (a quorum may swap in another's). */
  participantId: string
  result: unknown
  state: ContributionState
  /** Identities that computed this task: none of them gets a replica of it. */
  readonly computedBy: Set<string>
  /** Copies that disagreed with the counted result, by identity (a kind without a checker: a quorum decides). */
  readonly copies: Map<string, unknown>
  /** Replica leases out on it. */
  replicasOut: number
  /**
   * The coordinator's check covered every unit: a caught liar's result checked whole stays counted.
   * Anything else it gave (checked on a sample, which proves little about a result wrong on 1 % of
   * its units; or agreed by a replica, which may be a fellow colluder) is withdrawn.
   */
  checkedWhole: boolean
  /** Identities whose copies agreed with it: if one of them is caught, it is withdrawn too. */
  readonly vouchedBy: Set<string>
  /** A check of it could not run (an input the coordinator could not fetch): replicas alone decide. */
  uncheckable: boolean
}

/** What to do with a newly counted result. */
export type Decision =
  | { readonly check: number; readonly thenReplicate?: boolean }
  | { readonly replicate: true }
  | { readonly accept: true }

/**
 * The policy's decision for a result of an identity, of a job validated by `validator`:
 * - `off`: accepted;
 * - `replicate-all`: replicated (a disagreement is decided by the checker where there is one);
 * - `adaptive`, untrusted: a full spot check (and a replica too where lies are sparse), or
 *   replicated where the kind has no checker;
 * - `adaptive`, trusted: the same with probability `trustedCheckShare` (falling as its run of
 *   verified results grows), else the cheap check where the kind has one, else accepted.
 */
export function decide(
  policy: ValidationPolicy,
  trust: TrustRecord,
  validator: ResultValidator,
  random: () => number,
): Decision {
  if (policy.mode === 'off') return { accept: true }
  if (policy.mode === 'replicate-all') return { replicate: true }
  const trusted = trust.state === 'trusted'
  // A sparse kind's untrusted result is also replicated (a sample rarely meets a hidden match); a
  // trusted one meets ringers instead (`withRinger`), which find one who hides far sooner.
  const full: Decision =
    validator.checker === undefined
      ? { replicate: true }
      : {
          check: validator.fullCheckUnits ?? policy.sampleUnits,
          ...(validator.sparseLies === true && !trusted && { thenReplicate: true }),
        }
  if (!trusted || random() < trustedCheckShare(policy, trust.inARow)) return full
  if (validator.checker !== undefined && validator.cheapCheckUnits !== undefined)
    return { check: validator.cheapCheckUnits }
  return { accept: true }
}

/**
 * A result that reports findings and is not replicated already is, when `ringer()` says so: checked
 * (cheaply where the kind can) and then replicated, as a ringer for whoever computes the replica.
 */
export function withRinger(decision: Decision, ringer: () => boolean, validator: ResultValidator): Decision {
  if ('replicate' in decision || ('check' in decision && decision.thenReplicate === true)) return decision
  if (validator.checker === undefined || !ringer()) return decision
  return {
    check: 'check' in decision ? decision.check : (validator.cheapCheckUnits ?? 0),
    thenReplicate: true,
  }
}

/**
 * The share of a trusted identity's results checked in full: `trustedCheckShare` when it has just
 * earned trust, then `trustAfter / inARow` of it (the longer its honest run, the rarer the full
 * check), never under `minTrustedCheckShare`.
 */
export function trustedCheckShare(
  policy: Pick<ValidationPolicy, 'trustAfter' | 'trustedCheckShare' | 'minTrustedCheckShare'>,
  inARow: number,
): number {
  const share = (policy.trustedCheckShare * policy.trustAfter) / Math.max(policy.trustAfter, inARow)
  return Math.max(policy.minTrustedCheckShare, Math.min(policy.trustedCheckShare, share))
}

/**
 * `n` distinct unit offsets of a task of `units` units, drawn uniformly (all of them when `n` ≥
 * `units`), in ascending order. A liar cannot tell which units will be checked: the coordinator's
 * random source is not the participant's to see.
 */
export function sampleUnits(units: number, n: number, random: () => number): number[] {
  if (n >= units) return Array.from({ length: units }, (_, i) => i)
  // Floyd's algorithm: n draws, no rejection loop, whatever n is beside units.
  const chosen = new Set<number>()
  for (let j = units - n; j < units; j++) {
    const t = Math.floor(random() * (j + 1))
    chosen.add(chosen.has(t) ? j : t)
  }
  return [...chosen].sort((a, b) => a - b)
}

/** A check's verdict, or `unavailable` when the checker could not run (an input it could not fetch). */
export type CheckOutcome = CheckVerdict | { readonly ok: 'unavailable'; readonly reason: string }

/** Figures of validation, for statistics and the simulator's report. */
export interface ValidationCounters {
  /** Results checked by the coordinator, and units it recomputed for them. */
  checks: number
  unitsChecked: number
  /** Wall time the coordinator spent in checks that ran in its thread, ms. */
  checkMs: number
  /** Replica tasks granted, and units of replicas computed (work beyond one copy). */
  replicas: number
  replicaUnits: number
  /** Results taken back from open rounds (their identity was caught), and their units. */
  resultsWithdrawn: number
  unitsWithdrawn: number
  /** Identities quarantined. */
  quarantined: number
  /** Disagreements between copies that no check could settle (a kind without a checker). */
  disputes: number
  /** Results taken unverified: no other identity was there to compute a replica (`replicaPatienceMs`). */
  unverifiedAccepted: number
}

export function emptyCounters(): ValidationCounters {
  return {
    checks: 0,
    unitsChecked: 0,
    checkMs: 0,
    replicas: 0,
    replicaUnits: 0,
    resultsWithdrawn: 0,
    unitsWithdrawn: 0,
    quarantined: 0,
    disputes: 0,
    unverifiedAccepted: 0,
  }
}

/** Most copies of one task compared before the task is started over (a kind without a checker). */
export const maxCopiesCompared = 5
