import { createServer, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'

/** A loopback TCP proxy whose link can be cut, as a dropped network or a closed lid does. */
export interface CuttableProxy {
  readonly port: number
  /** Drops every connection and refuses new ones for `ms`. */
  cut(ms: number): void
  close(): Promise<void>
}

/** Starts a proxy on 127.0.0.1 to `targetPort`. */
export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>()
  let cutUntil = 0
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
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
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
