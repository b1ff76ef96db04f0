// The journal's on-disk format: segment and checkpoint-mark names, and the framing of an entry
// (length, CRC32, then kind, timestamp, key, previous version and the value file). Pure encoding
// and listing; the writer is journal.ts, replay after a power loss replay.ts.

import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { CorruptRecordError } from '@wf/core'
import type { FileSystem } from '../file-system.js'
import { errnoOf, unavailable } from '../fs-errors.js'
import { OWNER_STAMP } from '../owner.js'
import { versionOfHeader } from '../record.js'

/** The version in a journaled value file (or its header); `null` if it has none. */
export function versionOfFile(file: Uint8Array | undefined): string | null {
  return (file && versionOfHeader(file)) ?? null
}

/** The folder of journal segments under the storage root. */
export const JOURNAL_FOLDER = '.journal'
const SEGMENT_SUFFIX = '.wal'
export const MAGIC = Buffer.from('WFJ1')

export enum EntryKind {
  /** The key now holds `file` (header + bytes), in the journal because its file is not synced. */
  Put = 1,
  /** The key was deleted. */
  Delete = 2,
  /** The key now holds a value whose file was synced on its own (large values): kept for order. */
  Synced = 3,
}

export interface Entry {
  kind: EntryKind
  /** CLOCK_MONOTONIC nanoseconds of this boot. */
  at: bigint
  key: string
  /** The version the key held before this write; `null`: absent; `undefined`: not known. */
  prev: string | null | undefined
  /** `Put`: the whole value file; `Synced`: its header (the version); `Delete`: nothing. */
  file?: Uint8Array
}

const PREV_ABSENT = 0xff
const PREV_UNKNOWN = 0xfe

/** The parts of a segment's file name: `<start>.<boot>.<pid>.<host>.<token>.wal`. */
export interface SegmentName {
  name: string
  /** No entry of the segment is older than this. */
  start: bigint
  boot: string
  /** `pid.host.token` of the writer. */
  owner: string
  host: string
}

export function parseSegmentName(name: string): SegmentName | undefined {
  if (!name.endsWith(SEGMENT_SUFFIX)) return undefined
  const parts = name.slice(0, -SEGMENT_SUFFIX.length).split('.')
  if (parts.length !== 5 || !/^\d{20}$/.test(parts[0] as string)) return undefined
  const [start, boot, pid, host, token] = parts as [string, string, string, string, string]
  return { name, start: BigInt(start), boot, owner: `${pid}.${host}.${token}`, host }
}

export function segmentName(start: bigint, boot: string): string {
  return `${start.toString().padStart(20, '0')}.${boot}.${OWNER_STAMP}${SEGMENT_SUFFIX}`
}

export function encodeEntry(entry: Entry): Buffer {
  const key = Buffer.from(entry.key, 'utf8')
  const prev = typeof entry.prev === 'string' ? Buffer.from(entry.prev, 'utf8') : Buffer.alloc(0)
  const body = entry.file ?? new Uint8Array()
  const payload = Buffer.allocUnsafe(1 + 8 + 2 + key.byteLength + 1 + prev.byteLength + body.byteLength)
  payload.writeUInt8(entry.kind, 0)
  payload.writeBigUInt64BE(entry.at, 1)
  payload.writeUInt16BE(key.byteLength, 9)
  key.copy(payload, 11)
  let offset = 11 + key.byteLength
  payload.writeUInt8(
    entry.prev === null ? PREV_ABSENT : entry.prev === undefined ? PREV_UNKNOWN : prev.byteLength,
    offset,
  )
  prev.copy(payload, offset + 1)
  offset += 1 + prev.byteLength
  payload.set(body, offset)
  const frame = Buffer.allocUnsafe(8)
  frame.writeUInt32BE(payload.byteLength, 0)
  frame.writeUInt32BE(crc32(payload), 4)
  return Buffer.concat([frame, payload])
}

/**
 * The entries of a segment file, in order. A torn tail (the entry being appended when the machine
 * stopped, never acknowledged) ends the list; damage before a valid entry is a CorruptRecordError.
 */
export function decodeSegment(path: string, bytes: Uint8Array): Entry[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (buffer.byteLength < MAGIC.byteLength || !buffer.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
    // A segment whose header never reached the disk holds no acknowledged entry either.
    if (buffer.byteLength <= MAGIC.byteLength) return []
    throw new CorruptRecordError(path, `${path} is not a wf journal segment`)
  }
  const entries: Entry[] = []
  let offset = MAGIC.byteLength
  while (offset + 8 <= buffer.byteLength) {
    const length = buffer.readUInt32BE(offset)
    const end = offset + 8 + length
    if (length < 12 || end > buffer.byteLength) break
    const payload = buffer.subarray(offset + 8, end)
    if (crc32(payload) !== buffer.readUInt32BE(offset + 4)) break
    const kind = payload.readUInt8(0) as EntryKind
    const keyLength = payload.readUInt16BE(9)
    let at = 11 + keyLength
    const prevTag = payload.readUInt8(at)
    let prev: string | null | undefined
    if (prevTag === PREV_ABSENT) prev = null
    else if (prevTag !== PREV_UNKNOWN) {
      prev = payload.toString('utf8', at + 1, at + 1 + prevTag)
      at += prevTag
    }
    at += 1
    const entry: Entry = {
      kind,
      at: payload.readBigUInt64BE(1),
      key: payload.toString('utf8', 11, 11 + keyLength),
      prev,
    }
    if (kind !== EntryKind.Delete) entry.file = new Uint8Array(payload.subarray(at))
    entries.push(entry)
    offset = end
  }
  return entries
}

/** Nanoseconds of CLOCK_MONOTONIC, the same clock in every process of this boot. */
export const monotonicNow = (): bigint => process.hrtime.bigint()

const CHECKPOINT_PREFIX = 'checkpoint.'

/** The checkpoint marks in the journal folder: `checkpoint.<boot>.<T>`. */
export function parseCheckpointName(name: string): { boot: string; at: bigint } | undefined {
  const match = /^checkpoint\.([0-9a-z]+)\.(\d{20})$/.exec(name)
  if (match === null) return undefined
  return { boot: match[1] as string, at: BigInt(match[2] as string) }
}

/** The name of the checkpoint mark of time `at` on `boot`. */
export function checkpointName(boot: string, at: bigint): string {
  return `${CHECKPOINT_PREFIX}${boot}.${at.toString().padStart(20, '0')}`
}

/** Every key named in the segments of the journal folder (for a checkpoint without syncfs). */
export async function keysInSegments(fs: FileSystem, dir: string): Promise<Set<string>> {
  const keys = new Set<string>()
  for (const segment of await listSegments(fs, dir)) {
    const path = join(dir, segment.name)
    const bytes = await fs.readFile(path).catch(() => new Uint8Array())
    for (const entry of decodeSegment(path, bytes)) keys.add(entry.key)
  }
  return keys
}

/** The segments in the journal folder (none if it does not exist). */
export async function listSegments(fs: FileSystem, dir: string): Promise<SegmentName[]> {
  let names: string[]
  try {
    names = await fs.readdir(dir)
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') return []
    throw unavailable(error, 'listing the journal', dir)
  }
  const segments: SegmentName[] = []
  for (const name of names) {
    const parsed = parseSegmentName(name)
    if (parsed !== undefined) segments.push(parsed)
  }
  return segments
}
