// The bytes of an S3 object written by this package: a one-line header with a random per-attempt
// token, then the value. The token makes every write's ETag unique (S3's ETag is an MD5 of the
// body, so rewriting the same bytes would otherwise keep the version, breaking compare-and-swap),
// and it is what an indeterminate write is settled by: read the header back and compare tokens.

import { randomBytes } from 'node:crypto'

const MAGIC = 'wf-s3/1 '
const TOKEN_HEX_LENGTH = 32
/** Length of `wf-s3/1 <32 hex digits>\n`: what a ranged GET reads to settle a write. */
export const HEADER_BYTES = MAGIC.length + TOKEN_HEX_LENGTH + 1

export function newToken(): string {
  return randomBytes(TOKEN_HEX_LENGTH / 2).toString('hex')
}

export function encodeHeader(token: string): Uint8Array {
  return Buffer.from(`${MAGIC}${token}\n`, 'latin1')
}

/** Header and value in one buffer, for single-part PUTs (a Uint8Array body: RGW rejects unsized streams). */
export function encodeObject(token: string, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(HEADER_BYTES + data.byteLength)
  body.set(encodeHeader(token), 0)
  body.set(data, HEADER_BYTES)
  return body
}

/** The token of an object's first bytes, or `undefined` when they are not a header of ours. */
export function readToken(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength < HEADER_BYTES) return undefined
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, HEADER_BYTES).toString('latin1')
  if (!header.startsWith(MAGIC) || !header.endsWith('\n')) return undefined
  const token = header.slice(MAGIC.length, -1)
  return /^[0-9a-f]+$/.test(token) ? token : undefined
}

/** The value inside an object, without copying; `undefined` when the object has no header of ours. */
export function decodeObject(bytes: Uint8Array): Uint8Array | undefined {
  return readToken(bytes) === undefined ? undefined : bytes.subarray(HEADER_BYTES)
}
