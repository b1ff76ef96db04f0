// The on-disk format of one value: a 32-byte header (magic, random version token, length,
// CRC-32) followed by the bytes. The header makes the version cheap to read and a truncated or
// damaged file detectable instead of silently returned.

import { randomFillSync } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { CorruptRecordError, type StoredValue } from '@wf/core'

/** "WFS1": wf storage, format 1. A future format gets a new magic, never a silent reinterpretation. */
const MAGIC = 0x57465331
export const HEADER_BYTES = 32
const TOKEN_OFFSET = 4
const TOKEN_BYTES = 16
const LENGTH_OFFSET = 20
const CRC_OFFSET = 28

/**
 * Random bytes for version tokens, drawn from the system's generator 4 KiB at a time: one
 * `randomFillSync` call costs about as much as 16 bytes or 4 KiB (25-30 µs on the bench machine,
 * more than the rest of a journaled put's CPU time), so each token takes its 16 bytes from the pool.
 */
const RANDOM_POOL = Buffer.allocUnsafe(4096)
let randomPoolAt = RANDOM_POOL.byteLength

function copyRandomToken(target: Buffer, offset: number): void {
  if (randomPoolAt + TOKEN_BYTES > RANDOM_POOL.byteLength) {
    randomFillSync(RANDOM_POOL)
    randomPoolAt = 0
  }
  RANDOM_POOL.copy(target, offset, randomPoolAt, randomPoolAt + TOKEN_BYTES)
  randomPoolAt += TOKEN_BYTES
}

/**
 * Builds the header of a new value. The version is 128 random bits: unique across processes and
 * machines without coordination, and new on every write even when the bytes are the same.
 */
export function encodeHeader(data: Uint8Array): { header: Buffer; version: string } {
  const header = Buffer.allocUnsafe(HEADER_BYTES)
  header.writeUInt32BE(MAGIC, 0)
  copyRandomToken(header, TOKEN_OFFSET)
  header.writeUInt32BE(Math.floor(data.byteLength / 2 ** 32), LENGTH_OFFSET)
  header.writeUInt32BE(data.byteLength >>> 0, LENGTH_OFFSET + 4)
  // The checksum covers the token and length too, so a damaged header is not read as a version.
  header.writeUInt32BE(checksum(header, data), CRC_OFFSET)
  return { header, version: versionOfHeader(header) as string }
}

/**
 * CRC-32 of the header's token and length, continued over the bytes. Empty bytes are skipped:
 * Node 20's `zlib.crc32` returns 0, not the running value, for an empty array without a backing
 * store (`new Uint8Array(new ArrayBuffer(0))`, or one that went through `writev`).
 */
function checksum(header: Uint8Array, data: Uint8Array): number {
  const head = crc32(header.subarray(TOKEN_OFFSET, CRC_OFFSET))
  return data.byteLength === 0 ? head : crc32(data, head)
}

/** The version in a header, or `undefined` when the bytes are not a header of this format. */
export function versionOfHeader(header: Uint8Array): string | undefined {
  if (header.byteLength < HEADER_BYTES) return undefined
  const view = Buffer.from(header.buffer, header.byteOffset, HEADER_BYTES)
  if (view.readUInt32BE(0) !== MAGIC) return undefined
  return view.toString('base64url', TOKEN_OFFSET, TOKEN_OFFSET + TOKEN_BYTES)
}

/** Parses a whole value file; a file that is not exactly what `put` wrote is a CorruptRecordError. */
export function decodeRecord(key: string, path: string, file: Uint8Array): StoredValue {
  const corrupt = (detail: string) =>
    new CorruptRecordError(
      key,
      `${detail} in ${path}. Restore the file from a backup or delete it; wf will not guess its content`,
    )
  if (file.byteLength < HEADER_BYTES) {
    throw corrupt(`the file is ${file.byteLength} bytes, shorter than the ${HEADER_BYTES}-byte header`)
  }
  const buffer = Buffer.from(file.buffer, file.byteOffset, file.byteLength)
  if (buffer.readUInt32BE(0) !== MAGIC) throw corrupt('the file does not start with the wf header')
  const length = buffer.readUInt32BE(LENGTH_OFFSET) * 2 ** 32 + buffer.readUInt32BE(LENGTH_OFFSET + 4)
  if (length !== file.byteLength - HEADER_BYTES) {
    throw corrupt(
      `the header announces ${length} bytes but the file holds ${file.byteLength - HEADER_BYTES} (truncated?)`,
    )
  }
  const data = buffer.subarray(HEADER_BYTES)
  const expected = buffer.readUInt32BE(CRC_OFFSET)
  // 0 for empty bytes: what versions before 0.2 wrote when hit by the crc32 quirk (see checksum).
  if (checksum(buffer, data) !== expected && !(data.byteLength === 0 && expected === 0)) {
    throw corrupt('the checksum does not match the content')
  }
  // A plain Uint8Array view (no copy): callers compare values with Uint8Array, not Buffer.
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    version: versionOfHeader(buffer) as string,
  }
}
