import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/** A loopback TCP proxy whose link can be cut, as a dropped network or a closed lid does. */
export interface CuttableProxy {
  readonly port: number
  /** Drops every connection and refuses new ones for `ms`. */
  cut(ms: number): void
  /** Limits the upload (client → target) to `bytesPerSecond`, or lifts the limit (undefined). */
  throttle(bytesPerSecond: number | undefined): void
  close(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 to `targetPort`. */
export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>()
  let cutUntil = 0
  let uploadRate: number | undefined
  const server: Server = createServer((client) => {
    if (Date.now() < cutUntil) return void client.destroy()
    const upstream = new (client.constructor as typeof Socket)()
    upstream.connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    // Upload paced by the throttle: each piece waits its time on the wire before the next is read.
    client.on('data', (chunk: Buffer) => {
      if (!upstream.write(chunk)) client.pause()
      if (uploadRate !== undefined) {
        client.pause()
        setTimeout(() => client.resume(), (1000 * chunk.length) / uploadRate)
      }
    })
    upstream.on('drain', () => client.resume())
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    throttle(bytesPerSecond) {
      uploadRate = bytesPerSecond
    },
    cut(ms) {
      cutUntil = Date.now() + ms
      for (const s of sockets) s.destroy()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
