/**
 * One named error class per failure, so callers and tests branch on `error.name`
 * rather than on message text (the habit js-libp2p follows).
 */

/** Base class: sets `name` from the subclass so `instanceof` and `.name` agree. */
export class CrowdmeshError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A message crossing a process boundary does not match its schema. `field` names the offending path. */
export class InvalidMessageError extends CrowdmeshError {
  readonly field: string
  constructor(field: string, reason: string) {
    super(`invalid message: ${field}: ${reason}`)
    this.field = field
  }
}

/** A message is larger than the limit for its kind. */
export class MessageTooLargeError extends CrowdmeshError {
  constructor(size: number, limit: number) {
    super(`message of ${size} bytes exceeds the limit of ${limit} bytes`)
  }
}

/** A block result names a block the aggregator does not know, or its size does not fit the block. */
export class BlockMismatchError extends CrowdmeshError {}

/** A job id the coordinator does not run (never added, or ended). */
export class UnknownJobError extends CrowdmeshError {}

/** A job names a kind (or a version of one) this process does not have. */
export class UnknownJobKindError extends CrowdmeshError {}

/** A frame image could not be fetched or decoded. */
export class FrameFetchError extends CrowdmeshError {}

/** A data set on disk is missing files or is malformed. */
export class DatasetError extends CrowdmeshError {}

/** A user-supplied option is out of range or unparsable. */
export class InvalidOptionError extends CrowdmeshError {}

/** An operation was aborted through its AbortSignal. */
export class AbortError extends CrowdmeshError {
  constructor(message = 'the operation was aborted') {
    super(message)
  }
}

/** A peer broke the wire protocol (an unexpected message, a request before hello, flooding). */
export class ProtocolError extends CrowdmeshError {
  /** Machine-readable reason, also sent to the peer. */
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** The other end of a connection went away (stream closed, peer gone) before an answer came. */
export class PeerGoneError extends CrowdmeshError {}

/** The browser took the WebGL context away (GPU reset, too many contexts): the block in progress is given back. */
export class GpuContextLostError extends CrowdmeshError {
  constructor(
    message = 'the WebGL context was lost while computing a task; the task goes back to the coordinator',
  ) {
    super(message)
  }
}

/** This browser offers no WebGL the compute backend can use (neither WebGL 2 nor WebGL 1 with high-precision floats). */
export class GpuUnavailableError extends CrowdmeshError {}

/** A message nests arrays or objects deeper than the limit (checked before it is parsed). */
export class MessageTooDeepError extends CrowdmeshError {
  constructor(limit: number) {
    super(`message nests deeper than ${limit} levels`)
  }
}

/** The coordinator's own computation disagrees with a result beyond the kind's tolerance: the participant lied (or its device is broken). */
export class ResultRefutedError extends CrowdmeshError {}

/** An identity was quarantined after a proven wrong result: it gets no more work and its results are refused. */
export class QuarantinedError extends CrowdmeshError {}

/** A join link already holds as many identities as it may (`validationDefaults.identitiesPerLink`). */
export class LinkExhaustedError extends CrowdmeshError {}
