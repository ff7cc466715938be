import { createHash, createHmac, randomBytes } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'

/*
 * A minimal TURN client over UDP (RFC 8656): Allocate with long-term credentials (the 401 challenge,
 * then REALM, NONCE, USERNAME and MESSAGE-INTEGRITY), and Refresh with lifetime 0 to release. Enough
 * to see what a TURN server grants one username, with the error code it refuses with.
 */

const magicCookie = 0x2112a442
const method = { allocate: 0x0003, refresh: 0x0004 } as const
const attribute = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  requestedTransport: 0x0019,
} as const

/** An allocation held by its own UDP socket (one 5-tuple each), or the error the server answered. */
export interface AllocateResult {
  /** The STUN error code (401, 486, 508 …), or undefined on success. */
  errorCode: number | undefined
  /** Releases the allocation (Refresh, lifetime 0) and closes the socket. */
  release(): Promise<void>
}

interface Attribute {
  type: number
  value: Buffer
}

function encode(type: number, transaction: Buffer, attributes: Attribute[], key?: Buffer): Buffer {
  const body = Buffer.concat(
    attributes.map(({ type: t, value }) => {
      const header = Buffer.alloc(4)
      header.writeUInt16BE(t, 0)
      header.writeUInt16BE(value.length, 2)
      return Buffer.concat([header, value, Buffer.alloc((4 - (value.length % 4)) % 4)])
    }),
  )
  const header = Buffer.alloc(20)
  header.writeUInt16BE(type, 0)
  header.writeUInt32BE(magicCookie, 4)
  transaction.copy(header, 8)
  if (key === undefined) {
    header.writeUInt16BE(body.length, 2)
    return Buffer.concat([header, body])
  }
  // MESSAGE-INTEGRITY covers the message up to it, with the length counting it (RFC 8489 14.5).
  header.writeUInt16BE(body.length + 24, 2)
  const hmac = createHmac('sha1', key)
    .update(Buffer.concat([header, body]))
    .digest()
  const integrity = Buffer.alloc(4)
  integrity.writeUInt16BE(attribute.messageIntegrity, 0)
  integrity.writeUInt16BE(20, 2)
  return Buffer.concat([header, body, integrity, hmac])
}

function decode(message: Buffer): { type: number; transaction: Buffer; attributes: Map<number, Buffer> } {
  const attributes = new Map<number, Buffer>()
  let offset = 20
  const end = 20 + message.readUInt16BE(2)
  while (offset + 4 <= end) {
    const type = message.readUInt16BE(offset)
    const length = message.readUInt16BE(offset + 2)
    attributes.set(type, message.subarray(offset + 4, offset + 4 + length))
    offset += 4 + length + ((4 - (length % 4)) % 4)
  }
  return { type: message.readUInt16BE(0), transaction: message.subarray(8, 20), attributes }
}

function errorCodeOf(attributes: Map<number, Buffer>): number | undefined {
  const value = attributes.get(attribute.errorCode)
  return value === undefined ? undefined : (value[2]! & 0x7) * 100 + value[3]!
}

function request(socket: Socket, host: string, port: number, message: Buffer, transaction: Buffer) {
  return new Promise<ReturnType<typeof decode>>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('message', onMessage)
      reject(new Error('no answer from the TURN server'))
    }, 3000)
    const onMessage = (answer: Buffer) => {
      if (answer.length < 20 || !answer.subarray(8, 20).equals(transaction)) return
      clearTimeout(timer)
      socket.off('message', onMessage)
      resolve(decode(answer))
    }
    socket.on('message', onMessage)
    socket.send(message, port, host)
  })
}

/**
 * Asks the TURN server at host:port for one UDP relay allocation with these credentials. A 437
 * (allocation mismatch) on a fresh socket means the system handed it the port of an earlier socket
 * whose allocation the server still holds (its release went unanswered on a loaded machine): that
 * port is kept bound while another is tried, up to three times.
 */
export async function allocate(
  host: string,
  port: number,
  username: string,
  password: string,
): Promise<AllocateResult> {
  const stale: Socket[] = []
  try {
    for (;;) {
      const result = await allocateOnce(host, port, username, password)
      if (result.errorCode !== 437) return result
      stale.push(result.socket)
      if (stale.length === 3) return { errorCode: 437, release: async () => {} }
    }
  } finally {
    for (const socket of stale) socket.close()
  }
}

async function allocateOnce(
  host: string,
  port: number,
  username: string,
  password: string,
): Promise<AllocateResult & { socket: Socket }> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => socket.bind(0, host, resolve))
  const udp = { type: attribute.requestedTransport, value: Buffer.from([17, 0, 0, 0]) }
  const first = randomBytes(12)
  const challenge = await request(socket, host, port, encode(method.allocate, first, [udp]), first)
  const realm = challenge.attributes.get(attribute.realm)
  const nonce = challenge.attributes.get(attribute.nonce)
  if (errorCodeOf(challenge.attributes) !== 401 || realm === undefined || nonce === undefined) {
    socket.close()
    return { errorCode: errorCodeOf(challenge.attributes), release: async () => {}, socket }
  }
  const key = createHash('md5').update(`${username}:${realm.toString()}:${password}`).digest()
  const credentials = [
    { type: attribute.username, value: Buffer.from(username) },
    { type: attribute.realm, value: realm },
    { type: attribute.nonce, value: nonce },
  ]
  const second = randomBytes(12)
  const answer = await request(
    socket,
    host,
    port,
    encode(method.allocate, second, [udp, ...credentials], key),
    second,
  )
  const errorCode = answer.type === 0x0103 ? undefined : (errorCodeOf(answer.attributes) ?? -1)
  if (errorCode === 437) return { errorCode, release: async () => {}, socket }
  return {
    errorCode,
    socket,
    release: async () => {
      if (errorCode === undefined) {
        const refresh = randomBytes(12)
        const zero = { type: attribute.lifetime, value: Buffer.alloc(4) }
        await request(
          socket,
          host,
          port,
          encode(method.refresh, refresh, [zero, ...credentials], key),
          refresh,
        )
      }
      socket.close()
    },
  }
}
