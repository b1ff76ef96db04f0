// What the storage itself costs, measured in the same run as the scenarios: a durable atomic
// write of a 100-byte record (temp + fdatasync + rename, with and without the folder fsync),
// sequential and 1,000 at once; the file calls of a journaled put without the journal; appending
// to one journal file with fdatasync; raw S3 PUTs; and for scenario f's large results, a durable
// write of that many bytes, one S3 PUT of them, and encoding the same value with the codec alone.
import {
  closeSync,
  constants,
  linkSync,
  mkdirSync,
  openSync,
  symlinkSync,
  unlinkSync,
  writevSync,
} from 'node:fs'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'

const record = Buffer.alloc(100, 7)
let unique = 0

/** One atomic write of `record` to `dir/name`: temp file, optional fdatasync, rename, optional folder fsync. */
async function atomicWrite(dir, name, { sync, dirSync }) {
  const temp = join(dir, `.tmp.${unique++}`)
  const handle = await fsp.open(temp, 'wx')
  await handle.write(record, 0, record.length, 0)
  if (sync) await handle.datasync()
  await handle.close()
  await fsp.rename(temp, join(dir, name))
  if (dirSync) {
    const folder = await fsp.open(dir, 'r')
    await folder.sync()
    await folder.close()
  }
}

/** µs per atomic write, `n` of them sequential or all at once, into a new folder under `work`. */
export async function atomicWrites(work, n, options) {
  const dir = join(work, `floor-${unique++}`)
  mkdirSync(dir, { recursive: true })
  const t = performance.now()
  if (options.parallel)
    await Promise.all(Array.from({ length: n }, (_, i) => atomicWrite(dir, `k${i}`, options)))
  else for (let i = 0; i < n; i++) await atomicWrite(dir, `k${i}`, options)
  return ((performance.now() - t) * 1000) / n
}

/**
 * µs per create of a file the way the journal's puts make it, with synchronous calls and no fsync:
 * temp file (open, write, close), then, under a lock (a hard link to the process's owner link,
 * later unlinked), link into place, then the temp name removed. `lock: false` leaves the two lock
 * calls out. `n` in a row.
 */
export function syncCreates(work, n, { lock }) {
  const dir = join(work, `floor-${unique++}`)
  mkdirSync(dir, { recursive: true })
  const owner = join(dir, '.lo.owner')
  if (lock) symlinkSync('owner', owner)
  const header = record.subarray(0, 32)
  const body = record.subarray(32)
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    const temp = join(dir, `.tmp.${i}`)
    const fd = openSync(temp, 'wx', 0o666)
    writevSync(fd, [header, body], 0)
    closeSync(fd)
    if (lock) linkSync(owner, join(dir, `.lk.k${i}`))
    linkSync(temp, join(dir, `k${i}`))
    if (lock) unlinkSync(join(dir, `.lk.k${i}`))
    unlinkSync(temp)
  }
  return ((performance.now() - t) * 1000) / n
}

/**
 * µs per append of `record` to one journal file followed by fdatasync, or (`dsync`) written to a
 * file opened with O_DSYNC, which syncs within the write (how storage-fs's journal appends).
 */
export async function journalAppends(work, n, { dsync = false } = {}) {
  const flags = dsync ? constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC : 'a'
  const handle = await fsp.open(join(work, `journal-${unique++}`), flags, 0o666)
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    await handle.write(record)
    if (!dsync) await handle.datasync()
  }
  const us = ((performance.now() - t) * 1000) / n
  await handle.close()
  return us
}

/** µs per PUT of `record` to the S3 server, `inFlight` at a time. */
export async function s3Puts(client, PutObjectCommand, bucket, n, inFlight) {
  const prefix = `floor-${unique++}/`
  let next = 0
  const worker = async () => {
    while (next < n) {
      const i = next++
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}k${i}`, Body: record }))
    }
  }
  const t = performance.now()
  await Promise.all(Array.from({ length: inFlight }, worker))
  return ((performance.now() - t) * 1000) / n
}

const medianOf = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

/**
 * µs per durable write of `bytes` bytes, as the folder storage writes a blob with fsync: temp file,
 * write, fdatasync, close, rename, folder fsync. The median of `n` (fresh bytes each: no cache hit).
 */
export async function largeWrites(work, bytes, n = 3) {
  const dir = join(work, `floor-${unique++}`)
  mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(bytes, 'x')
  const times = []
  for (let i = 0; i < n; i++) {
    data[0] = i
    const t = performance.now()
    const temp = join(dir, `.tmp.${i}`)
    const handle = await fsp.open(temp, 'wx')
    await handle.write(data, 0, data.length, 0)
    await handle.datasync()
    await handle.close()
    await fsp.rename(temp, join(dir, `k${i}`))
    const folder = await fsp.open(dir, 'r')
    await folder.sync()
    await folder.close()
    times.push((performance.now() - t) * 1000)
  }
  await fsp.rm(dir, { recursive: true, force: true })
  return medianOf(times)
}

/**
 * µs to encode a value with wf's default codec alone (`codec.encode`: the text a codec without
 * byte parts stores), the median of `n` after one unmeasured run. `makeValue(i)` makes a fresh value
 * for each run, as each of f's steps returns a fresh string (a concatenation V8 flattens when it is
 * first read, which every encoder of it pays).
 */
export function codecEncodes(codec, makeValue, n = 3) {
  codec.encode(makeValue(0))
  const times = []
  for (let i = 1; i <= n; i++) {
    const value = makeValue(i)
    const t = performance.now()
    codec.encode(value)
    times.push((performance.now() - t) * 1000)
  }
  return medianOf(times)
}

/**
 * µs per S3 PUT of `bytes` bytes, one at a time, the median of `n`: the cheapest way the SDK sends
 * them, a sized stream (no copy, no SHA-256 of the body).
 */
export async function s3LargePuts(client, PutObjectCommand, bucket, bytes, n = 3) {
  const prefix = `floor-${unique++}/`
  const data = Buffer.alloc(bytes, 'x')
  const times = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const Body = Readable.from([data], { objectMode: false })
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: `${prefix}k${i}`, Body, ContentLength: bytes }),
    )
    times.push((performance.now() - t) * 1000)
  }
  return medianOf(times)
}
