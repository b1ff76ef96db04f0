// The bytes of a blob. Format 1 (every blob written before byte parts, and still every blob of
// plain codec text): the codec text as UTF-8, nothing else. Format 2 (a value with byte parts, see
// `Codec.encodeParts`): a first line `wf-blob/2`, a JSON line with the byte lengths of the text and
// of each part, then the text and the parts' raw bytes, so 1 MB of bytes is 1 MB stored, not 1.33
// MB of base64. Codec text never starts with `w` (devalue writes `[` or a negative number), so
// the first bytes tell the formats apart; the step record also says `v: 2`, which readers from
// before format 2 refuse (as not written by their version) instead of misreading the bytes.

import { CorruptRecordError } from '../errors.js'
import type { EncodedParts } from '../model/codec.js'
import { fromUtf8 } from '../model/records.js'

const MAGIC = 'wf-blob/'
const FORMAT = 2

interface BlobHeader {
  text: number
  parts: number[]
}

/** What a blob holds: codec text (format 1), or text and the bytes of its parts (format 2). */
export type StoredEncoded = string | { readonly text: string; readonly parts: Uint8Array[] }

const encoder = new TextEncoder()

/** The first and second lines of a format-2 blob whose text and parts have these byte lengths. */
function headOf(text: number, parts: number[]): Buffer {
  const header: BlobHeader = { text, parts }
  return Buffer.from(`${MAGIC}${FORMAT}\n${JSON.stringify(header)}\n`, 'latin1')
}

/**
 * The bytes of a format-2 blob holding `encoded`: one buffer, each part copied into it once, a
 * string part encoded straight into it. A string is first taken to be ASCII (one byte per UTF-16
 * code unit, as most large strings are): one pass writes it, where measuring its UTF-8 length first
 * would take a pass of its own, slower than the writing (10 MB of ASCII: 6 ms to measure, 2 ms to
 * write). Only when a string turns out not to be ASCII is the blob made again with exact lengths.
 */
export function encodeBlob(encoded: EncodedParts): Uint8Array {
  const text = Buffer.from(encoded.text, 'utf8')
  const guess = encoded.parts.map((p) => (typeof p === 'string' ? p.length : p.byteLength))
  return (
    writeBlob(text, encoded.parts, guess, true) ??
    (writeBlob(
      text,
      encoded.parts,
      encoded.parts.map((p) => (typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.byteLength)),
      false,
    ) as Uint8Array)
  )
}

/**
 * Writes the blob whose parts take `sizes` bytes. With `asciiOnly`, `undefined` when a string part
 * is not ASCII (then its UTF-8 is longer than its length, the size given for it).
 */
function writeBlob(
  text: Buffer,
  parts: Array<Uint8Array | string>,
  sizes: number[],
  asciiOnly: boolean,
): Uint8Array | undefined {
  const head = headOf(text.byteLength, sizes)
  let size = head.byteLength + text.byteLength
  for (const n of sizes) size += n
  const out = Buffer.allocUnsafeSlow(size)
  out.set(head, 0)
  let at = head.byteLength
  out.set(text, at)
  at += text.byteLength
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as Uint8Array | string
    const n = sizes[i] as number
    if (typeof part !== 'string') out.set(part, at)
    else if (asciiOnly) {
      // All of it fits in one byte per code unit only when every one is below 0x80.
      if (encoder.encodeInto(part, out.subarray(at, at + n)).read !== part.length) return undefined
    } else out.write(part, at, n, 'utf8')
    at += n
  }
  return out
}

/** Whether `data` starts like a blob of format 2 or later. */
function isFramed(data: Uint8Array): boolean {
  if (data.byteLength < MAGIC.length) return false
  for (let i = 0; i < MAGIC.length; i++) if (data[i] !== MAGIC.charCodeAt(i)) return false
  return true
}

/**
 * What a blob at `key` holds: the codec text (format 1), or text and parts (format 2; the parts
 * are views into `data`). A `CorruptRecordError` for a format this version cannot read.
 */
export function decodeBlob(key: string, data: Uint8Array): StoredEncoded {
  if (!isFramed(data)) return fromUtf8(data)
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  const firstLine = bytes.indexOf(10)
  const version = Number(bytes.toString('latin1', MAGIC.length, firstLine))
  if (version !== FORMAT) {
    throw new CorruptRecordError(
      key,
      `it is a blob of format ${JSON.stringify(bytes.toString('latin1', MAGIC.length, Math.max(firstLine, MAGIC.length)).slice(0, 20))}, which this version of wf cannot read (it reads formats 1 and 2): upgrade @wf/core`,
    )
  }
  const secondLine = bytes.indexOf(10, firstLine + 1)
  let header: BlobHeader
  try {
    header = JSON.parse(bytes.toString('latin1', firstLine + 1, secondLine)) as BlobHeader
  } catch (error) {
    throw new CorruptRecordError(key, 'the header of the blob is not JSON', { cause: error })
  }
  if (
    secondLine < 0 ||
    !Number.isSafeInteger(header?.text) ||
    !Array.isArray(header.parts) ||
    !header.parts.every((n) => Number.isSafeInteger(n) && n >= 0) ||
    secondLine + 1 + header.text + header.parts.reduce((a, b) => a + b, 0) !== bytes.byteLength
  ) {
    throw new CorruptRecordError(key, 'the blob is cut short, or its header does not match its size')
  }
  let at = secondLine + 1
  const text = fromUtf8(bytes.subarray(at, at + header.text))
  at += header.text
  const parts = header.parts.map((n) => {
    const part = bytes.subarray(at, at + n)
    at += n
    return part
  })
  return { text, parts }
}
