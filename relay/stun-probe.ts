import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { AbortError } from '../peer/protocol/errors.ts'

/**
 * Sends one STUN Binding request (RFC 5389) over UDP and resolves true when a Binding success
 * response with the same transaction id comes back: the cheapest proof that a STUN/TURN server is up.
 */
export function stunBinding(
  host: string,
  port: number,
  signal: AbortSignal = AbortSignal.timeout(1000),
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
    const transaction = randomBytes(12)
    const request = Buffer.alloc(20)
    request.writeUInt16BE(0x0001, 0) // Binding request
    request.writeUInt16BE(0, 2) // no attributes
    request.writeUInt32BE(0x2112a442, 4) // magic cookie
    transaction.copy(request, 8)
    const finish = (ok: boolean) => {
      signal.removeEventListener('abort', onAbort)
      socket.close()
      resolve(ok)
    }
    const onAbort = () => {
      signal.removeEventListener('abort', onAbort)
      socket.close()
      if (signal.reason instanceof DOMException && signal.reason.name === 'TimeoutError') resolve(false)
      else reject(new AbortError())
    }
    if (signal.aborted) return onAbort()
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('message', (message) => {
      if (
        message.length >= 20 &&
        message.readUInt16BE(0) === 0x0101 &&
        message.subarray(8, 20).equals(transaction)
      ) {
        finish(true)
      }
    })
    socket.on('error', () => finish(false))
    socket.send(request, port, host)
  })
}
