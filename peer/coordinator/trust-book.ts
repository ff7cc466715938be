import type { ValidationPolicy } from '../protocol/defaults.ts'
import { LinkExhaustedError } from '../protocol/errors.ts'

/*
 * Reputation, per identity (a participant's peer id): what the coordinator has verified of it. Trust
 * is earned by results in a row verified and lost at the first proven lie, which also quarantines
 * the identity for good. A new identity starts untrusted, so a caught liar that rejoins under a new
 * peer id starts over, and the join link it came through holds only a few identities.
 */

/** Where an identity stands: `new` until `trustAfter` results in a row verified, `trusted` after. */
export type TrustState = 'new' | 'trusted' | 'quarantined'

/** What the coordinator knows of one identity's honesty. */
export interface TrustRecord {
  readonly identity: string
  /** The join link it was admitted through (undefined: admitted without one, as in-process runs are). */
  readonly link: string | undefined
  state: TrustState
  /** Results verified since the last disagreement. */
  inARow: number
  checksPassed: number
  checksFailed: number
  /** When it was quarantined, and why (what the check found). */
  quarantinedAt?: number
  reason?: string
}

/** One identity's row of the operator's table. */
export interface TrustRow {
  identity: string
  link: string | undefined
  state: TrustState
  inARow: number
  checksPassed: number
  checksFailed: number
  reason?: string
}

/** The identities the coordinator has met, and the join links they came through. */
export class TrustBook {
  private readonly records = new Map<string, TrustRecord>()
  private readonly byLink = new Map<string, Set<string>>()
  private readonly policy: Pick<ValidationPolicy, 'trustAfter' | 'identitiesPerLink'>

  constructor(policy: Pick<ValidationPolicy, 'trustAfter' | 'identitiesPerLink'>) {
    this.policy = policy
  }

  /**
   * Admits `identity` through `link`: a new identity takes one of the link's slots for good (a
   * quarantined one keeps its slot, so a caught liar cannot rejoin without end). Throws
   * `LinkExhaustedError` when the link has no slot left; an identity already known is its record.
   */
  admit(identity: string, link?: string): TrustRecord {
    const known = this.records.get(identity)
    if (known !== undefined) return known
    if (link !== undefined) {
      let members = this.byLink.get(link)
      if (members === undefined) {
        members = new Set()
        this.byLink.set(link, members)
      }
      if (members.size >= this.policy.identitiesPerLink)
        throw new LinkExhaustedError(
          `this join link already holds ${members.size} identities: ask the event for a new link`,
        )
      members.add(identity)
    }
    const record: TrustRecord = {
      identity,
      link,
      state: 'new',
      inARow: 0,
      checksPassed: 0,
      checksFailed: 0,
    }
    this.records.set(identity, record)
    return record
  }

  /** The record of an identity (admitted without a link on first sight). */
  of(identity: string): TrustRecord {
    return this.records.get(identity) ?? this.admit(identity)
  }

  /** Whether an identity is quarantined (an unknown one is not). */
  quarantined(identity: string): boolean {
    return this.records.get(identity)?.state === 'quarantined'
  }

  /** One of its results was verified: one more in a row, and trusted after `trustAfter`. */
  passed(record: TrustRecord): void {
    if (record.state === 'quarantined') return
    record.checksPassed++
    record.inARow++
    if (record.inARow >= this.policy.trustAfter) record.state = 'trusted'
  }

  /**
   * Two copies of its result disagreed and nothing proved which lied (a kind the coordinator cannot
   * check): not a proof, so no quarantine, but its run starts over and it is untrusted again.
   */
  disputed(record: TrustRecord): void {
    if (record.state === 'quarantined') return
    record.inARow = 0
    record.state = 'new'
  }

  /** A check proved one of its results wrong: quarantined for good. */
  refuted(record: TrustRecord, reason: string, now: number): void {
    record.checksFailed++
    if (record.state === 'quarantined') return
    record.state = 'quarantined'
    record.inARow = 0
    record.quarantinedAt = now
    record.reason = reason
  }

  /** Identities admitted through a link (quarantined ones too). */
  identitiesOf(link: string): number {
    return this.byLink.get(link)?.size ?? 0
  }

  /** The operator's table: every identity met. */
  rows(): TrustRow[] {
    return [...this.records.values()].map((r) => ({
      identity: r.identity,
      link: r.link,
      state: r.state,
      inARow: r.inARow,
      checksPassed: r.checksPassed,
      checksFailed: r.checksFailed,
      ...(r.reason !== undefined && { reason: r.reason }),
    }))
  }
}
