import { CrowdmeshError } from './errors.ts'

/*
 * Per-frame keys (the seed): with them on, each frame's images are stored and served encrypted
 * under a key of that frame alone, and a lease carries the key of its block's frame, so only a
 * participant holding a lease of the frame can read its images, and its result travels sealed too.
 * AES-256-GCM through WebCrypto: the same code in Node and in browsers, hardware-accelerated where
 * the device has AES instructions. A sealed message is a 12-byte random IV then the ciphertext and
 * its 16-byte tag; a wrong key or a changed byte fails authentication rather than decrypting to junk.
 */

/** Bytes did not authenticate under the frame key: wrong key, or tampered or truncated data. */
export class FrameKeyError extends CrowdmeshError {}

const IV_BYTES = 12
/** Bytes a sealed message adds to its plaintext: the IV and the tag. */
export const sealOverheadBytes = IV_BYTES + 16

/** A frame key: the raw bytes (to send in a lease, base64url) and the imported key. */
export interface FrameKey {
  readonly encoded: string
  readonly key: CryptoKey
}

/** A new random frame key. */
export async function generateFrameKey(): Promise<FrameKey> {
  const raw = crypto.getRandomValues(new Uint8Array(32))
  return { encoded: toBase64Url(raw), key: await importRaw(raw) }
}

/** The frame key a lease carried (base64url of 32 bytes). */
export async function importFrameKey(encoded: string): Promise<FrameKey> {
  const raw = fromBase64Url(encoded)
  if (raw.length !== 32) throw new FrameKeyError(`a frame key is 32 bytes, not ${raw.length}`)
  return { encoded, key: await importRaw(raw) }
}

/** Encrypts and authenticates `plain`; `context` (e.g. a frame's header) is authenticated, not sent. */
export async function seal(key: FrameKey, plain: Uint8Array, context?: Uint8Array): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES))
  const cipher = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, ...(context !== undefined && { additionalData: context as BufferSource }) },
    key.key,
    plain as BufferSource,
  )
  const out = new Uint8Array(IV_BYTES + cipher.byteLength)
  out.set(iv)
  out.set(new Uint8Array(cipher), IV_BYTES)
  return out
}

/** Decrypts what `seal` made with the same key and context; anything else throws `FrameKeyError`. */
export async function open(key: FrameKey, sealed: Uint8Array, context?: Uint8Array): Promise<Uint8Array> {
  if (sealed.length < sealOverheadBytes)
    throw new FrameKeyError(`${sealed.length} bytes is too short to be sealed`)
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: 'AES-GCM',
        iv: sealed.subarray(0, IV_BYTES) as BufferSource,
        ...(context !== undefined && { additionalData: context as BufferSource }),
      },
      key.key,
      sealed.subarray(IV_BYTES) as BufferSource,
    )
    return new Uint8Array(plain)
  } catch (cause) {
    throw new FrameKeyError('data does not authenticate under its frame key (wrong key or altered)', {
      cause,
    })
  }
}

/*
 * A participant's frame source learns a block's key from its image URL's fragment (`…#key=…`):
 * a fragment is never sent to a server, so the frame store sees only the path, and every worker's
 * frame source (Node or browser) decrypts the same way without another parameter.
 */

/** The image URL a keyed lease's block names: the frame store's URL with the key in its fragment. */
export function keyedUrl(url: string, key: FrameKey): string {
  return `${url.replace(/#.*$/, '')}#key=${key.encoded}`
}

/** Decrypts an image's bytes when its URL carries a frame key; returns them unchanged otherwise. */
export async function openKeyedImage(bytes: Uint8Array, url: string): Promise<Uint8Array> {
  const match = /#key=([\w-]+)$/.exec(url)
  if (match === null) return bytes
  return open(await importFrameKey(match[1]!), bytes)
}

function importRaw(raw: Uint8Array): Promise<CryptoKey> {
  // Browsers give WebCrypto only to secure pages (HTTPS, localhost); say so rather than fail obscurely.
  if ((globalThis.crypto as Crypto | undefined)?.subtle === undefined)
    throw new FrameKeyError(
      'this page is not served over HTTPS, so the browser gives it no WebCrypto to open per-frame-keyed frames',
    )
  return crypto.subtle.importKey('raw', raw as BufferSource, 'AES-GCM', false, ['encrypt', 'decrypt'])
}

function toBase64Url(bytes: Uint8Array): string {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function fromBase64Url(text: string): Uint8Array {
  let binary: string
  try {
    binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  } catch {
    throw new FrameKeyError('a frame key is not base64url')
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}
