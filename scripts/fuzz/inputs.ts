import fc from 'fast-check'
import { RECORDER_BYE } from '../../peer/server/upload-protocol.ts'

/*
 * Generators of hostile input for every listener of an event: malformed, truncated, oversized,
 * deeply nested and out-of-order, mixed with valid pieces so the fuzzer gets past the first check.
 * Property-based (fast-check): a run is reproducible from its seed.
 */

/** JSON text nested `depth` levels deep, in arrays or objects. */
export function nestedJson(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? '['.repeat(depth) + ']'.repeat(depth)
    : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)
}

/** JSON values and texts a stranger may send where a message is expected. */
export const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.json({ maxDepth: 4 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.integer({ min: 20, max: 20_000 }), fc.constantFrom<'array' | 'object'>('array', 'object'))
      .map(([depth, kind]) => nestedJson(depth, kind)),
  },
  // Truncated JSON: a valid text cut short.
  { weight: 1, arbitrary: fc.json().chain((t) => fc.nat(t.length).map((n) => t.slice(0, n))) },
  // Oversized: past every message limit.
  { weight: 1, arbitrary: fc.integer({ min: 70_000, max: 300_000 }).map((n) => `"${'x'.repeat(n)}"`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', 'null', '{}', '[]', '{"__proto__":{"polluted":1}}', '"\\ud800"'),
  },
)

/** A raw HTTP request: request line, headers and a body that may disagree with its length. */
export interface HostileHttpRequest {
  method: string
  target: string
  headers: [string, string][]
  body: Uint8Array
  /** The content-length sent: the body's, a smaller or larger one, garbage, or none. */
  contentLength: 'exact' | 'short' | 'long' | 'garbage' | 'none'
}

const knownPaths = [
  '/',
  '//a:b',
  '/health',
  '/metrics',
  '/api/events',
  '/api/events/x/bootstrap',
  '/api/bootstrap?token=a.b.c',
  '/api/recordings',
  '/api/recordings/upload',
  '/signal?token=x',
  '/app/',
  '/app/%',
  '/app/%E0%A4%A',
  '/app/..%2f..%2f..%2fetc%2fpasswd',
  '/app/assets/../../package.json',
  '/join/x/y.z',
  '/join/../../x',
  '/v/AAAAAAAAAAAAAAAAAAAAAA',
  '/v/AAAAAAAAAAAAAAAAAAAAAA/media',
  '/v/AAAAAAAAAAAAAAAAAAAAAA/live.mp4',
  '/frames/x/y.png',
  '/sealed/x',
  '/api/runs',
  '/api/runs/fuzz/priority',
  '/api/runs/../../x/priority',
  '/dashboard.js',
  '/console/x/y.z',
  '/console/x/y.z/stream',
  '/console/x/y.z/api/actions',
  '/console/x/y.z/api/recordings',
  '/console/../../x',
  '*',
  'http://evil.example/',
]

/** Request targets: known routes, mutated, and random bytes of a request line. */
export const requestTarget: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...knownPaths) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...knownPaths), fc.string({ unit: 'binary-ascii', maxLength: 40 }))
      .map(([path, tail]) => path + encodeURIComponent(tail).replace(/%2F/g, '/')),
  },
  { weight: 2, arbitrary: fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)) },
  {
    weight: 1,
    arbitrary: fc
      .string({ unit: 'binary-ascii', minLength: 1, maxLength: 120 })
      .map((s) => s.replace(/[\s]/g, '')),
  },
  { weight: 1, arbitrary: fc.integer({ min: 8_000, max: 40_000 }).map((n) => `/${'a'.repeat(n)}`) },
)

const headerName = fc.oneof(
  fc.constantFrom(
    'content-type',
    'authorization',
    'range',
    'origin',
    'upgrade',
    'connection',
    'transfer-encoding',
    'accept-encoding',
    'cookie',
    'x-forwarded-for',
    'sec-websocket-key',
    'sec-websocket-version',
  ),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/),
)
const headerValue = fc.oneof(
  fc.constantFrom(
    'Bearer x',
    'bytes=0-',
    'bytes=99999999999-',
    'bytes=5-1',
    'bytes=0-1,2-3,4-5,6-7,8-9,10-11',
    'websocket',
    'upgrade',
    'chunked',
    'application/json',
    'text/html; x=webm',
    '13',
    'dGhlIHNhbXBsZSBub25jZQ==',
  ),
  fc.string({ unit: 'binary-ascii', maxLength: 80 }).map((s) => s.replace(/[\r\n]/g, ' ')),
  fc.integer({ min: 10_000, max: 40_000 }).map((n) => 'v'.repeat(n)),
)

/** Whole raw requests. */
export const hostileHttpRequest: fc.Arbitrary<HostileHttpRequest> = fc.record({
  method: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE') },
    { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) },
  ),
  target: requestTarget,
  headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
  body: fc.oneof(
    { weight: 3, arbitrary: fc.constant(new Uint8Array()) },
    { weight: 3, arbitrary: hostileJsonText.map((t) => new TextEncoder().encode(t)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 4096 }) },
  ),
  contentLength: fc.constantFrom('exact', 'short', 'long', 'garbage', 'none'),
})

/** The bytes of a raw request (always `connection: close`, so the answer ends with the connection). */
export function encodeHttpRequest(request: HostileHttpRequest): Uint8Array {
  const length =
    request.contentLength === 'exact'
      ? String(request.body.length)
      : request.contentLength === 'short'
        ? String(Math.max(0, request.body.length - 3))
        : request.contentLength === 'long'
          ? String(request.body.length + 1000)
          : request.contentLength === 'garbage'
            ? '-1, 12'
            : undefined
  const lines = [
    `${request.method} ${request.target} HTTP/1.1`,
    'host: 127.0.0.1',
    ...request.headers
      .filter(([name]) => name !== 'connection' && name !== 'content-length' && name !== 'host')
      .map(([name, value]) => `${name}: ${value}`),
    ...(length === undefined ? [] : [`content-length: ${length}`]),
    'connection: close',
  ]
  const head = new TextEncoder().encode(`${lines.join('\r\n')}\r\n\r\n`)
  const out = new Uint8Array(head.length + request.body.length)
  out.set(head)
  out.set(request.body, head.length)
  return out
}

/** One message on a WebSocket: text or binary. */
export type SocketMessage = { text: string } | { binary: Uint8Array }

/** Signaling messages: `{to, data}` with hostile parts, other JSON, binary. */
export function signalingMessages(peers: () => string[]): fc.Arbitrary<SocketMessage[]> {
  const to = fc.oneof(
    fc.constant(undefined).map(() => peers()[0] ?? 'nobody'),
    fc.string({ maxLength: 80 }),
    fc.constantFrom('', '__proto__', 'constructor'),
  )
  // What a recorder signals to the server peer, broken or out of turn, beside any JSON at all.
  const data = fc.oneof(
    { weight: 3, arbitrary: hostileJsonText },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        `{"type":"${RECORDER_BYE}"}`,
        '{"type":"offer","sdp":"v=0"}',
        '{"type":"answer","sdp":"v=0"}',
        '{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 10.0.0.1 9 typ host","sdpMid":"0"}}',
        '{"renegotiate":true}',
      ),
    },
  )
  const signal = fc
    .tuple(to, data)
    .map(([target, data]) => ({ text: `{"to":${JSON.stringify(target)},"data":${data || 'null'}}` }))
  return fc.array(
    fc.oneof(
      { weight: 4, arbitrary: signal },
      { weight: 2, arbitrary: hostileJsonText.map((text) => ({ text })) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((binary) => ({ binary })) },
    ),
    { minLength: 1, maxLength: 8 },
  )
}

/** A step of a stranger's upload session, decided before it knows the recording's state. */
export type UploadStep =
  | { kind: 'hello'; recording: 'valid' | 'other' | 'garbage'; token: 'valid' | 'wrong' | 'garbage' }
  | { kind: 'chunk'; seq: number; offset: 'next' | 'zero' | 'far' | 'negative' | 'nan'; bytes: number }
  | { kind: 'publish'; bytes: 'held' | 'more' | 'negative' | 'huge' }
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }

/** Upload sessions: hello, chunks and publish in any order, valid and not, with other messages. */
export const uploadSession: fc.Arbitrary<UploadStep[]> = fc.array(
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('hello' as const),
        recording: fc.constantFrom<'valid' | 'other' | 'garbage'>('valid', 'other', 'garbage'),
        token: fc.constantFrom<'valid' | 'wrong' | 'garbage'>('valid', 'wrong', 'garbage'),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('chunk' as const),
        seq: fc.nat(),
        offset: fc.constantFrom<'next' | 'zero' | 'far' | 'negative' | 'nan'>(
          'next',
          'zero',
          'far',
          'negative',
          'nan',
        ),
        bytes: fc.oneof(fc.integer({ min: 0, max: 70_000 }), fc.constant(1024 * 1024 + 1)),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('publish' as const),
        bytes: fc.constantFrom<'held' | 'more' | 'negative' | 'huge'>('held', 'more', 'negative', 'huge'),
      }),
    },
    { weight: 2, arbitrary: hostileJsonText.map((text) => ({ kind: 'text' as const, text })) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: 'binary' as const, bytes })),
    },
  ),
  { minLength: 1, maxLength: 10 },
)

/**
 * Actions a stranger holding the console link might post: well-formed ones aimed at jobs and
 * participants that do not exist (a fuzzer must not end the event it fuzzes), links minted with any
 * expiry, and every kind of malformed one.
 */
export const consoleActionBody: fc.Arbitrary<Uint8Array> = fc
  .oneof(
    fc
      .record(
        {
          action: fc.constantFrom('pause', 'resume', 'end', 'weight', 'remove', 'floor', 'link', 'nope'),
          jobId: fc.oneof(fc.string({ maxLength: 120 }), fc.integer(), fc.constant(null)),
          participantId: fc.string({ maxLength: 120 }),
          reason: fc.oneof(fc.string({ maxLength: 600 }), fc.constant('')),
          weight: fc.oneof(fc.double(), fc.integer(), fc.string()),
          unitsPerSec: fc.oneof(fc.double(), fc.constant(null), fc.constant(-1)),
          role: fc.constantFrom('participant', 'recorder', 'operator', 'viewer', ''),
          ttlSeconds: fc.oneof(fc.integer(), fc.double(), fc.constant(1e30)),
        },
        { requiredKeys: ['action'] },
      )
      .map((o) =>
        JSON.stringify('jobId' in o && typeof o.jobId === 'string' ? { ...o, jobId: `fuzz-${o.jobId}` } : o),
      ),
    hostileJsonText,
  )
  .map((text) => new TextEncoder().encode(text))
