import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'

/*
 * What a hostile client sends, byte by byte: HTTP requests with any target, WebSocket upgrades done
 * by hand, and WebSocket frames that break the protocol (unmasked, or announcing a length they
 * never send). A real client library refuses to send these.
 */

/** A TCP connection to a server's host and port, as given by its URL. */
export async function rawConnect(serverUrl: string): Promise<Socket> {
  const { hostname, port } = new URL(serverUrl)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => socket.destroy())
  await once(socket, 'connect')
  return socket
}

/** Everything the server sends until it closes the connection (or `timeoutMs` passes). */
export async function readUntilClosed(
  socket: Socket,
  timeoutMs: number,
): Promise<{ data: Buffer; closed: boolean }> {
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs)),
  ])
  if (!closed) socket.destroy()
  return { data: Buffer.concat(chunks), closed }
}

/** Sends one HTTP/1.1 request with this exact target; resolves with the status line's code. */
export async function rawRequest(serverUrl: string, request: string): Promise<number> {
  const socket = await rawConnect(serverUrl)
  socket.write(request)
  const { data } = await readUntilClosed(socket, 3000)
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(data.toString('latin1'))?.[1] ?? 0)
}

/** A WebSocket upgrade done by hand: resolves with the open socket once the server answers 101. */
export async function rawUpgrade(serverUrl: string, path: string): Promise<Socket> {
  const socket = await rawConnect(serverUrl)
  const { host } = new URL(serverUrl)
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  )
  let head = Buffer.alloc(0)
  while (!head.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer]
    head = Buffer.concat([head, chunk])
  }
  const status = /^HTTP\/1\.1 (\d{3})/.exec(head.toString('latin1'))?.[1]
  if (status !== '101') throw new Error(`the upgrade was answered ${status}`)
  return socket
}

/**
 * A WebSocket frame header (FIN set) for `opcode`, announcing `length` bytes of payload, masked
 * (as a client must) unless `masked` is false. The payload itself is not included.
 */
export function frameHeader(opcode: number, length: number, masked = true): Buffer {
  const mask = masked ? 0x80 : 0
  const parts: Buffer[] = []
  if (length < 126) parts.push(Buffer.from([0x80 | opcode, mask | length]))
  else if (length < 65_536) {
    const header = Buffer.from([0x80 | opcode, mask | 126, 0, 0])
    header.writeUInt16BE(length, 2)
    parts.push(header)
  } else {
    const header = Buffer.alloc(10)
    header[0] = 0x80 | opcode
    header[1] = mask | 127
    header.writeBigUInt64BE(BigInt(length), 2)
    parts.push(header)
  }
  if (masked) parts.push(Buffer.alloc(4)) // a zero mask: the payload goes as it is
  return Buffer.concat(parts)
}

/** The close code of the first close frame in what a server sent after its 101 (undefined: none). */
export function closeCode(data: Buffer): number | undefined {
  for (let p = 0; p + 2 <= data.length;) {
    const opcode = data[p]! & 0x0f
    let length = data[p + 1]! & 0x7f
    let at = p + 2
    if (length === 126) {
      length = data.readUInt16BE(at)
      at += 2
    } else if (length === 127) {
      length = Number(data.readBigUInt64BE(at))
      at += 8
    }
    if (opcode === 0x8) return length >= 2 ? data.readUInt16BE(at) : 1005
    p = at + length
  }
  return undefined
}

/** Open file descriptors of a process (Linux). */
export async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length
}

/** The process ids of a process's children (Linux: every thread's `children`). */
export async function childProcesses(pid: number): Promise<number[]> {
  const children: number[] = []
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const listed = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')
    children.push(...listed.split(/\s+/).filter(Boolean).map(Number))
  }
  return children
}

/** The children of a process that run ffmpeg. */
export async function ffmpegChildren(pid: number): Promise<number> {
  let count = 0
  for (const child of await childProcesses(pid)) {
    const command = await readFile(`/proc/${child}/comm`, 'utf8').catch(() => '')
    if (command.trim() === 'ffmpeg') count++
  }
  return count
}

/** Bytes a process has read through read(2) and friends so far, files and sockets (Linux). */
export async function bytesRead(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8')
  return Number(/^rchar: (\d+)$/m.exec(io)?.[1] ?? Number.NaN)
}
