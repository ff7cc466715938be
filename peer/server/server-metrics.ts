import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** How a recorder's bytes reached the server peer. */
export type UploadTransport = 'webrtc' | 'websocket'

/** What the gauges read when scraped. */
export interface ServerGaugeSources {
  /** Recordings with an upload connection open now. */
  uploading(): number
  /** ffmpeg pipelines running now (one per recording being processed). */
  pipelines(): number
  /** Bytes the recordings take, and their quota. */
  storage(): { usedBytes: number; maxTotalBytes: number }
}

/**
 * The server peer's Prometheus metrics (`GET /metrics` on its HTTP server), named and typed in
 * prom-client's conventions: `crowdmesh_recording_…` counters end in `_total` and count from the
 * process's start; gauges are read when scraped; the process's own figures (CPU, memory, event-loop
 * lag) come from prom-client's default collectors. One registry per server, so several servers in
 * one process (tests) do not share series.
 */
export class ServerMetrics {
  readonly registry = new Registry()
  private readonly bytes: Counter<'transport'>
  private readonly uploads: Counter<'transport'>
  private readonly published: Counter
  private readonly refused: Counter<'code'>

  constructor(sources: ServerGaugeSources) {
    const registers = [this.registry]
    collectDefaultMetrics({ register: this.registry })
    this.bytes = new Counter({
      name: 'crowdmesh_recording_bytes_received_total',
      help: 'Bytes of recordings stored, by the transport they came over.',
      labelNames: ['transport'],
      registers,
    })
    this.uploads = new Counter({
      name: 'crowdmesh_recording_uploads_total',
      help: 'Upload connections that said a valid hello, by transport.',
      labelNames: ['transport'],
      registers,
    })
    this.published = new Counter({
      name: 'crowdmesh_recordings_published_total',
      help: 'Recordings published.',
      registers,
    })
    this.refused = new Counter({
      name: 'crowdmesh_recording_refusals_total',
      help: 'Upload messages refused, by error code.',
      labelNames: ['code'],
      registers,
    })
    new Gauge({
      name: 'crowdmesh_recordings_uploading',
      help: 'Recordings with an upload connection open.',
      registers,
      collect() {
        this.set(sources.uploading())
      },
    })
    new Gauge({
      name: 'crowdmesh_ffmpeg_pipelines',
      help: 'ffmpeg pipelines running (one per recording being processed).',
      registers,
      collect() {
        this.set(sources.pipelines())
      },
    })
    new Gauge({
      name: 'crowdmesh_recording_storage_bytes',
      help: 'Bytes the recordings take on disk.',
      registers,
      collect() {
        this.set(sources.storage().usedBytes)
      },
    })
    new Gauge({
      name: 'crowdmesh_recording_storage_quota_bytes',
      help: 'Bytes the recordings may take in all.',
      registers,
      collect() {
        this.set(sources.storage().maxTotalBytes)
      },
    })
  }

  received(transport: UploadTransport, bytes: number): void {
    this.bytes.inc({ transport }, bytes)
  }

  uploadStarted(transport: UploadTransport): void {
    this.uploads.inc({ transport })
  }

  recordingPublished(): void {
    this.published.inc()
  }

  uploadRefused(code: string): void {
    this.refused.inc({ code })
  }
}
