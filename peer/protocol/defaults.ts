/**
 * Every default of crowdmesh in one place. Public options are `Partial<...>` of these
 * shapes and are merged once with `??`, so an explicit 0 or false is never replaced.
 */

/** Limits on messages that cross a process boundary. */
export const messageLimits = {
  /** Largest JSON control message, bytes. */
  maxControlBytes: 64 * 1024,
  /** Largest task result a kind may declare, bytes, before its header (1 KiB at most). */
  maxResultBytes: 16 * 1024 * 1024,
} as const

/** The mesh's wire: framing, limits and pacing of the work protocol and gossip. */
export const meshDefaults = {
  /**
   * Largest piece handed to a stream at once. libp2p's WebRTC transport caps a data-channel message
   * at 16 KiB (and splits larger writes itself); writing in pieces of that size and waiting for
   * drain between them keeps one large block result from filling the channel's buffer.
   */
  chunkBytes: 16 * 1024,
  /** Largest binary frame (the largest task result plus its header). */
  maxBinaryFrameBytes: messageLimits.maxResultBytes + 1024,
  /**
   * Messages one participant may send per second on the work protocol, sustained. A task costs it
   * two or three (a request, the next one asked while it computes, its result); a fast device on
   * tasks its kind keeps small (one lane of a small round, one image tile) finishes 50 or more
   * a second, and was held back at 50 (measured: a second's pause at every refusal).
   */
  requestsPerSecond: 200,
  /** Burst allowance above the sustained rate. */
  requestBurst: 100,
  /** Requests refused within 10 s after which a flooding peer's stream is closed. */
  maxRefused: 200,
  /** A participant that has not said hello within this long is disconnected, ms. */
  helloTimeoutMs: 10_000,
  /** How often the coordinator gossips its status, ms. */
  statusIntervalMs: 2_000,
  /** Largest gossip message (gossipsub's own default inbound limit is 1 MiB too). */
  maxGossipBytes: 1024 * 1024,
  /** Dialing the coordinator (WebRTC through the relay) gives up after this long, ms. */
  dialTimeoutMs: 30_000,
  /**
   * Largest frame the coordinator accepts on a work stream before its hello succeeded: control
   * frames only (a hello is under 3 KiB), so a peer that has not shown a token buffers next to nothing.
   */
  maxHelloBytes: 8 * 1024,
  /**
   * Bytes of unfinished frames the coordinator buffers across all work streams together: the stream
   * whose bytes would pass it is refused (`busy`; the participant retries). 32 results of the
   * scheduler's largest block at once, or about 500 of its default one.
   */
  maxBufferedBytes: 128 * 1024 * 1024,
  /**
   * A peer must show a valid join token on the relay (`/crowdmesh/admit/1`) within this long of
   * connecting, or the relay disconnects it; until then it gets no reservation and no relayed
   * connection, ms.
   */
  relayAdmitTimeoutMs: 10_000,
  /**
   * A peer connected to the coordinator must be welcomed (a hello with a valid token) within this
   * long, or the coordinator disconnects it: a dial (`dialTimeoutMs`) plus the hello, ms.
   */
  coordinatorAdmitTimeoutMs: 40_000,
  /**
   * Peer ids one join link (its token's jti) may have admitted at once, on the relay and at the
   * coordinator. Everyone at an event may open the same participant link: this bounds a leaked link,
   * not a crowd.
   */
  maxPeersPerLink: 1000,
  /**
   * Gossipsub application score of a peer this node does not exchange gossip with (not admitted at
   * the coordinator; anyone but the coordinator at a participant): below gossipsub's publish (−50)
   * and gossip (−10) thresholds, so nothing is sent to it and nothing of it is forwarded, yet above
   * its graylist (−80), so its subscriptions are still heard and count once it is admitted.
   */
  outsiderGossipScore: -60,
} as const

/** Frame image cache of a participant. */
export const frameCacheDefaults = {
  /** Decoded frames kept; the oldest is evicted first. */
  maxFrames: 32,
} as const

/** The scheduler's defaults (see README, "Scheduling"). */
export const schedulingDefaults = {
  /** A block should take this long on its participant, compute and transfer together, ms. */
  targetBlockMs: 150,
  /**
   * A batch task of a participant that also runs a live job takes about this long, ms: a live frame
   * arriving waits for the batch task in hand, so it is kept short (and not prefetched).
   */
  batchBesideLiveMs: 60,
  /** Leases a participant may hold at once: the next one hides the round trip of the last. */
  maxLeasesPerParticipant: 2,
  /**
   * Reported failures of one task before its round is dropped: a task every participant fails (a
   * corrupt video) would otherwise go round the crowd for ever. Expiries and departures do not count.
   */
  maxTaskFailures: 3,
  /** A lease's deadline is this many times its expected duration after the grant… */
  deadlineSlack: 3,
  /** …and never sooner than this, ms (a calibration lease gets `calibrationDeadlineMs`). */
  minDeadlineMs: 1_000,
  calibrationDeadlineMs: 10_000,
  /** Duplicate the last outstanding blocks of a frame to idle, faster participants (backup tasks). */
  speculation: true,
  /** At most this many leases on one block at once (the original and its backups). */
  maxCopies: 2,
  /** Weight of a new speed measurement in the running estimate. */
  rateSmoothing: 0.3,
  /**
   * Rounds of a batch job whose outcome is being decided off the event loop (`RoundSink.finish` gave
   * a promise; one at a time) or waits its turn to be: a round that completes beyond this is
   * dropped, and says so. Each holds its round's results (at 128³ the vertex job's are 128 MiB). A
   * live job keeps one waiting, the newest: a newer round replaces it.
   */
  maxDecidingRounds: 2,
  /** A participant's share of its processor the coordinator assumes when it states none. */
  dutyCycle: 0.25,
} as const

/**
 * How results are validated against lying, lazy and broken participants (README, "Trust"). An
 * identity starts untrusted: every result it returns is spot-checked by the coordinator (or, for a
 * kind the coordinator cannot check, replicated to another participant and decided by a quorum).
 * After `trustAfter` results in a row verified it is trusted: one result in `trustAfter` is checked
 * in full (BOINC's adaptive replication), the others get the kind's cheap check where it has one.
 * A check that proves a result wrong quarantines its identity and withdraws everything it gave to
 * rounds still open.
 */
export const validationDefaults = {
  /**
   * `adaptive`: trust by evidence, check at random (above). `replicate-all`: trust nobody, every
   * task computed twice and a disagreement decided by the coordinator's check. `off`: results are
   * taken as they come (a private event of known devices).
   */
  mode: 'adaptive' as 'adaptive' | 'replicate-all' | 'off',
  /** Results in a row verified before an identity is trusted (BOINC's threshold). */
  trustAfter: 10,
  /**
   * Share of a trusted identity's results checked in full or replicated when it has just earned its
   * trust (BOINC: about 1/N). It falls as the identity's run of verified results grows (1/N of the
   * run, as BOINC's adaptive replication does), to `minTrustedCheckShare`. A participant that
   * behaves and then lies is met by one of these, or by the cheap check.
   */
  trustedCheckShare: 0.1,
  /**
   * The share a long-trusted identity's results are still checked in full or replicated: what a
   * lie no cheap check sees (a hidden match) waits for, on average 1 / this results.
   */
  minTrustedCheckShare: 0.01,
  /**
   * Share of a trusted identity's results that report findings (a sparse kind: matches) replicated
   * all the same. Their findings are confirmed by the check, so each such replica is a ringer for
   * the identity computing it: one that hides findings disagrees, and the dispute's check catches
   * it. About one task in eight of a match run reports a match, so this costs some 3 % more work.
   */
  ringerShare: 0.2,
  /**
   * Units the coordinator recomputes in a full spot check: a result wrong on 1 % of its units
   * passes 256 random ones with probability 0.99^256 ≈ 8 %, so such a liar rarely passes
   * `trustAfter` checks in a row.
   */
  sampleUnits: 256,
  /**
   * Identities one join link may ever hold, quarantined ones included: a caught liar rejoins under
   * a new peer id at most this often through its link. Everyone at an event may share one participant
   * link (`meshDefaults.maxPeersPerLink` at once), so the default bounds a leaked link; a link handed
   * to one person (the simulator's, the operator's personal links) is held to a few.
   */
  identitiesPerLink: 2_000,
  /**
   * Units compared where two copies disagree, at most: the coordinator recomputes those units of
   * both copies to find the one that lies (a disagreement alone proves nothing).
   */
  maxDisputedUnits: 64,
  /**
   * A result waiting this long for a replica while no other identity that could compute it is
   * present (a lone participant, a kind the coordinator cannot check) is taken unverified, and
   * counted as such, rather than holding its round for ever, ms.
   */
  replicaPatienceMs: 10_000,
}

/** The validation policy as a coordinator runs it (`validationDefaults`, overridden per event). */
export type ValidationPolicy = typeof validationDefaults

/** How a recorder records and uploads (the recordings issue). */
export const recorderDefaults = {
  /**
   * MediaRecorder's timeslice: a chunk reaches the uploader every 500 ms (the seed: every few hundred
   * milliseconds), so at most half a second of recording is only in the page when it dies.
   */
  timesliceMs: 500,
  /** Bytes per upload chunk: every browser's data channel carries a 64 KiB message. */
  chunkBytes: 64 * 1024,
  /** Bytes sent and not yet acknowledged before the uploader waits. */
  windowBytes: 1024 * 1024,
  /** How long a transport may take to connect before the next one is tried. */
  connectTimeoutMs: 4000,
  /**
   * With bytes in flight and no answer for this long, the connection is taken for dead and reopened:
   * a server that vanished without closing (a killed process behind WebRTC, whose ICE would take
   * 30 s to notice, or a half-open TCP link) is noticed in seconds.
   */
  stallTimeoutMs: 5000,
  /** Quality steps, best first: what the recorder's canvas is drawn at, and the encoder's target. */
  qualityLevels: [
    { name: 'high', width: 1280, height: 720, fps: 30, bitsPerSecond: 2_500_000 },
    { name: 'medium', width: 960, height: 540, fps: 24, bitsPerSecond: 1_200_000 },
    { name: 'low', width: 640, height: 360, fps: 15, bitsPerSecond: 600_000 },
    { name: 'minimal', width: 426, height: 240, fps: 10, bitsPerSecond: 300_000 },
  ],
  /** Step down when the unacknowledged backlog is more than this many seconds of recording and growing. */
  backlogDownSeconds: 4,
  /** Count the link as recovered while the backlog stays under this many seconds of recording. */
  backlogUpSeconds: 1,
  /** Least time between two steps, so one step's effect is seen before the next. */
  holdMs: 5000,
  /** How long the link must stay recovered before stepping back up (doubled after a failed step up). */
  recoverMs: 15_000,
} as const

/**
 * Limits every server of an event holds strangers to (signaling, frame store, server peer), applied
 * by the one request guard (`signaling/guard.ts`). README, "Security", lists them.
 */
export const serverLimits = {
  /** Largest JSON message or body a server parses, bytes (a route may set less). */
  maxJsonBytes: 64 * 1024,
  /** Deepest nesting of arrays and objects in any JSON a server parses. */
  maxJsonDepth: 32,
  /** Largest request line and headers together, bytes (Node's default). */
  maxHeaderBytes: 16 * 1024,
  /** A request's headers must arrive within this long, ms (slowloris). */
  headersTimeoutMs: 10_000,
  /** A whole request (headers and body) must arrive within this long, ms; responses are not limited. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection is closed after this long, ms. */
  keepAliveTimeoutMs: 5_000,
  /**
   * Open connections from one IP address (HTTP and WebSocket together). Generous on purpose: the
   * phones at a venue often share one public address behind the venue's NAT.
   */
  maxConnectionsPerIp: 1024,
  /** Open connections to one server in all. */
  maxConnections: 8192,
  /**
   * Peers one join link may have connected at once (signaling sockets; the mesh counts its own).
   * Everyone at an event may open the same participant link, so this bounds a leaked link, not a crowd.
   */
  maxPeersPerLink: 1000,
  /** Long-lived WebSockets (signaling) are pinged this often; no pong by the next ping closes them, ms. */
  heartbeatMs: 20_000,
  /** A WebSocket peer must say hello (its first message) within this long, ms. */
  helloTimeoutMs: 5_000,
  /** Bytes a server lets wait in a WebSocket's send buffer before it drops that peer as too slow. */
  maxSocketBufferedBytes: 1024 * 1024,
} as const

/**
 * The TURN relay (coturn) an event runs. README, "Security", explains the quotas. Every relayed allocation holds one relay port, so the whole server's quota is the
 * size of its port range (`relayPorts`): past it coturn answers 486 rather than running out of ports.
 */
export const turnDefaults = {
  /** Relay ports an event's coturn hands out, one per allocation: its `min-port`…`max-port` range. */
  relayPorts: 200,
  /**
   * Allocations one TURN username may hold at once (coturn's `user-quota`). A browser needs one per
   * local interface and peer connection, a handful; the 11th from one username is refused (486), so
   * one leaked credential cannot take the relay's ports from everyone else.
   */
  userQuota: 10,
} as const

/** Children (coturn) that must die with the event's process, however it dies (`protocol/child-process.ts`). */
export const orphanGuardDefaults = {
  /** How long an orphaned child (its parent died) gets after SIGTERM before SIGKILL, ms. */
  graceMs: 3000,
} as const

/**
 * What the server peer for recordings (`peer/server/`) lets one recorder, viewer or stranger hold,
 * on top of `serverLimits`. README, "Security", lists them.
 */
export const recordingLimits = {
  /**
   * Largest message on an upload connection before a valid hello, bytes. A hello is about 150 bytes
   * of JSON; a larger frame is refused at its header (close 1009), never buffered.
   */
  maxPreHelloBytes: 1024,
  /** An upload connection must say a valid hello within this long, ms. */
  helloTimeoutMs: serverLimits.helloTimeoutMs,
  /**
   * An upload connection with no message for this long is closed, ms. A recorder sends a chunk
   * every 500 ms while it records; a paused one reconnects when it has bytes again.
   */
  uploadIdleTimeoutMs: 120_000,
  /**
   * Recordings processed at once (each runs two ffmpeg processes). Bytes of one more recording are
   * refused with `busy`; the recorder keeps them and retries.
   */
  maxProcessing: 8,
  /**
   * A recording's processing that got no new bytes for this long is stopped (its ffmpeg processes
   * end), ms; its next bytes, or its publish, start it again from the stored bytes.
   */
  processingIdleMs: 120_000,
  /** Viewers of one live recording at once; one more is answered 429. */
  maxLiveViewers: 32,
  /** A live stream that has not grown for this long ends, ms. */
  liveStallMs: 30_000,
  /**
   * Largest recording, bytes (about 3.5 hours at the recorder's best quality); a chunk past it is
   * refused with `too-large`.
   */
  maxRecordingBytes: 4 * 1024 ** 3,
  /**
   * Bytes the server's recordings may take in all, the recorders' bytes and the outputs made from
   * them; past it, new recordings are refused (507) and chunks with `storage-full`.
   */
  maxTotalBytes: 200 * 1024 ** 3,
  /** Free space kept on the recordings' disk (statfs); below it, as past `maxTotalBytes`, bytes. */
  minFreeBytes: 2 * 1024 ** 3,
  /**
   * Recordings created and not yet published, in all; one more is refused (503) until some are
   * published or swept. Bytes are bounded by the quota; this bounds folders and what is indexed.
   */
  maxUnpublishedRecordings: 10_000,
  /** A recording never published that got no bytes for this long is deleted, ms. */
  abandonedAfterMs: 48 * 3_600_000,
  /** How often abandoned recordings are swept and the disk use measured again, ms. */
  sweepIntervalMs: 10 * 60_000,
  /** How long the signaling server's answer about a recorder's link is trusted, ms. */
  authCacheMs: 30_000,
  /** Answers about recorders' links kept at once. */
  maxAuthCacheEntries: 1024,
  /**
   * Recorders' WebRTC peers held at once: negotiating, connected or closing; an offer past it is
   * ignored and the recorder falls back to the WebSocket.
   */
  maxRtcPeers: 256,
  /** How long a recorder's WebRTC connection may take to open, ms. */
  rtcConnectTimeoutMs: 20_000,
  /** Signaling messages one recorder may send to its peer here, and their bytes in all; past either it is dropped. */
  maxSignalsPerPeer: 100,
  maxSignalBytesPerPeer: 64 * 1024,
  /** How long a data channel the server ends stays open so that its last answer arrives, ms. */
  closeGraceMs: 1_000,
} as const

/** The operator's console (`peer/console/`). README, "The operator's console". */
export const consoleDefaults = {
  /** How often the page gets a new snapshot, ms; a participant joining or leaving sends one sooner. */
  tickMs: 1_000,
  /** A join or a departure is sent after this long, so a crowd arriving at once costs one snapshot, ms. */
  changeDebounceMs: 100,
  /** How often each job's diagram gets a point, ms, and how many points it keeps (15 minutes). */
  sampleMs: 1_000,
  maxSeriesPoints: 900,
  /** Rates (rounds and units per second) are over this window, ms. */
  rateWindowMs: 10_000,
  /** Latency percentiles are over a job's last this many rounds. */
  latencyRounds: 200,
  /** Consoles open at once per event (each is a stream of the whole table). */
  maxViewers: 16,
  /** A console's stream that has this many bytes unsent misses snapshots until it drains. */
  maxStreamBacklogBytes: 1024 * 1024,
  /** An alert of a participant quarantined stays this long, ms. */
  quarantineAlertMs: 10 * 60_000,
  /** Alerts when fewer participants than this are connected (0: never). */
  minParticipants: 1,
  /** Alerts when the recordings take at least this share of their quota. */
  diskWarnShare: 0.9,
  /** Recordings listed at most. */
  maxRecordingsListed: 500,
} as const

/** Dedicated devices (`peer/mesh/dedicated-devices.ts`). README, "The operator's console". */
export const dedicatedDefaults = {
  /** How often the crowd's capacity is compared with each live job's floor, ms. */
  checkMs: 1_000,
  /** The crowd must stay below a floor this long before a dedicated participant starts, ms. */
  startAfterMs: 3_000,
  /**
   * The crowd must have the floor plus `hysteresis` without the newest dedicated participant this
   * long before that one stops, ms: longer than starting, since a crowd that just grew may shrink.
   */
  stopAfterMs: 10_000,
  hysteresis: 0.25,
  /** A job's own floor: its measured need times this, for the crowd's ups and downs. */
  headroom: 1.2,
  /** A dedicated participant that has not computed within this long no longer holds back the next, ms. */
  measureTimeoutMs: 30_000,
} as const
