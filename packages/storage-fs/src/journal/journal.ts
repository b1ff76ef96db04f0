// The write-ahead journal of `durability: 'journal'`: this process's segments and their group commit. Value files are written atomically as in the
// other modes but not synced; what makes a put durable is its entry (key, timestamp, the whole
// file) appended to this process's journal segment, and puts that arrive together share one
// synced append (an O_DSYNC write, or a write and an fdatasync; group commit). Segments are checkpointed (the filesystem synced, then
// the segment deleted) in the background; after a power loss the next open replays them.
//
// Ordering and checkpoints. Every write takes its key's lock, changes the file, and takes a
// CLOCK_MONOTONIC timestamp (one clock for every process of a boot) before it lets go of the lock.
// So, per key, timestamps order the writes of all processes as they happened, and a timestamp
// taken after a write's file change proves that change came first. A checkpoint takes a time T,
// syncs the whole filesystem, and durably records T: every entry older than T is then on disk in
// its file, and a segment whose entries are all older than T can be deleted, in any order, by
// anyone. After a power loss, replay keeps for each key the newest entry not older than T.

import { constants } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { StorageUnavailableError } from '@wf/core'
import type { FileHandleLike, FileSystem } from '../file-system.js'
import { unlinkIfPresent, writeFully } from '../fs.js'
import { errnoOf, unavailable } from '../fs-errors.js'
import { isOwnerDead, OWNER_STAMP } from '../owner.js'
import {
  checkpointName,
  decodeSegment,
  type Entry,
  encodeEntry,
  JOURNAL_FOLDER,
  keysInSegments,
  listSegments,
  MAGIC,
  monotonicNow,
  parseCheckpointName,
  segmentName,
} from './format.js'

interface Pending {
  bytes: Buffer
  resolve: () => void
  reject: (error: unknown) => void
}

interface Segment {
  name: string
  path: string
  start: bigint
  handle: FileHandleLike | undefined
  opening: Promise<void> | undefined
  /** Bytes in the file (the position of the next append). */
  size: number
  /** Timestamp of the newest entry. */
  last: bigint
  entries: number
  /** Writes that took a timestamp for this segment and have not appended yet. */
  inFlight: number
  queue: Pending[]
  writing: boolean
  /** No new write takes this segment; it is closed once `inFlight` and `queue` are empty. */
  retired: boolean
  openedAt: number
  /**
   * Why an append failed. After a failed write or sync nothing more is appended to the
   * segment: the failed bytes may be a hole that would hide every later entry from replay (and
   * Linux may report a lost write only once), so later entries fail too, and new writes go to a
   * new segment.
   */
  failed?: unknown
}

export interface JournalOptions {
  fs: FileSystem
  /** The storage root; segments live in `<root>/.journal`. */
  root: string
  /** Short id of the current boot (see boot.ts). */
  boot: string
  /**
   * Makes every change made to the filesystem so far durable: syncfs, or failing that an fsync of
   * each file and folder named by `keys` (every key in every segment).
   */
  syncAll: (keys: () => Promise<Set<string>>) => Promise<void>
  /** Syncs one folder. */
  syncFolder: (dir: string) => Promise<void>
  /** Writes a small file durably (temp, fdatasync, rename, folder fsync). */
  writeDurably: (path: string, bytes: Uint8Array) => Promise<void>
  /** A segment is retired and checkpointed once it is this old... */
  rotateMs: number
  /** ...or this big. */
  rotateBytes: number
  /**
   * How long `close()` waits for writes still in flight before it rejects. A put holds its place
   * while it waits for a key's lock, so this is longer than the lock timeout.
   */
  closeTimeoutMs: number
}

/**
 * Segments are opened with O_DSYNC where the platform has it: an append returns once its bytes
 * are on disk, one call instead of a write and an fdatasync (one round trip through the thread
 * pool less, and on ext4 cheaper in the kernel too: about 195 instead of 280 µs per small append
 * on the bench machine).
 */
const SEGMENT_FLAGS =
  constants.O_DSYNC === undefined
    ? 'wx'
    : constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC

/** A write's place in the journal: the segment its entry goes to. */
export interface Ticket {
  segment: Segment
}

export class Journal {
  readonly dir: string
  readonly #options: JournalOptions
  #current: Segment | undefined
  /** Segments no new write takes, until a checkpoint deletes them. */
  readonly #retired = new Set<Segment>()
  #checkpointing: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(options: JournalOptions) {
    this.#options = options
    this.dir = join(options.root, JOURNAL_FOLDER)
  }

  /** Reserves a place in the current segment, creating one if needed. */
  async ticket(): Promise<Ticket> {
    let segment = this.#current
    if (segment !== undefined && this.#isDue(segment)) {
      this.#retire(segment)
      segment = undefined
    }
    if (segment === undefined) {
      const start = monotonicNow()
      const name = segmentName(start, this.#options.boot)
      segment = {
        name,
        path: join(this.dir, name),
        start,
        handle: undefined,
        opening: undefined,
        size: 0,
        last: start,
        entries: 0,
        inFlight: 0,
        queue: [],
        writing: false,
        retired: false,
        openedAt: Date.now(),
      }
      segment.opening = this.#create(segment)
      this.#current = segment
      this.#arm()
    }
    segment.inFlight++
    try {
      await segment.opening
    } catch (error) {
      segment.inFlight--
      if (this.#current === segment) this.#current = undefined
      throw error
    }
    return { segment }
  }

  /** Gives a ticket back unused (the write did not happen). */
  release(ticket: Ticket): void {
    ticket.segment.inFlight--
    this.#maybeClose(ticket.segment)
  }

  /**
   * Appends an entry and resolves once it is on disk (one synced write shared by every entry queued
   * meanwhile). Call it with the timestamp taken under the key's lock, after the file changed.
   */
  append(ticket: Ticket, entry: Entry): Promise<void> {
    const { segment } = ticket
    const bytes = encodeEntry(entry)
    if (entry.at > segment.last) segment.last = entry.at
    segment.entries++
    return new Promise<void>((resolve, reject) => {
      segment.queue.push({ bytes, resolve, reject })
      segment.inFlight--
      this.#flush(segment)
    })
  }

  /**
   * Retires the current segment and checkpoints: a closed storage leaves no segment behind. A
   * write after `close()` starts a new segment.
   */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#current !== undefined) this.#retire(this.#current)
    await this.#whenIdle()
    await this.checkpoint()
  }

  /**
   * Syncs the filesystem, records the checkpoint, and deletes the retired segments it covers and
   * those of processes that died (on this boot). Concurrent calls share one run.
   */
  checkpoint(): Promise<void> {
    this.#checkpointing ??= this.#checkpoint().finally(() => {
      this.#checkpointing = undefined
    })
    return this.#checkpointing
  }

  async #checkpoint(): Promise<void> {
    const { fs, boot } = this.#options
    const at = monotonicNow()
    await this.#options.syncAll(() => keysInSegments(fs, this.dir))
    const mark = join(this.dir, checkpointName(boot, at))
    await this.#options.writeDurably(mark, new Uint8Array())
    for (const segment of [...this.#retired]) {
      if (segment.handle !== undefined || segment.opening !== undefined || segment.last >= at) continue
      await unlinkIfPresent(fs, segment.path)
      this.#retired.delete(segment)
    }
    for (const other of await listSegments(fs, this.dir)) {
      if (other.owner === OWNER_STAMP || other.boot !== boot || !isOwnerDead(other.owner)) continue
      const path = join(this.dir, other.name)
      // Another process opening the folder may cover and delete the same dead segment first.
      const bytes = await fs.readFile(path).catch((error: unknown) => {
        if (errnoOf(error) === 'ENOENT') return undefined
        throw error
      })
      if (bytes === undefined) continue
      const entries = decodeSegment(path, bytes)
      if (entries.every((entry) => entry.at < at)) await unlinkIfPresent(fs, path)
    }
    // Older marks of this boot are superseded by the one just made durable.
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      const parsed = parseCheckpointName(name)
      if (parsed !== undefined && parsed.boot === boot && parsed.at < at)
        await unlinkIfPresent(fs, join(this.dir, name))
    }
  }

  #isDue(segment: Segment): boolean {
    return (
      segment.size >= this.#options.rotateBytes || Date.now() - segment.openedAt >= this.#options.rotateMs
    )
  }

  /** Rotates and checkpoints in the background while writes come in (the timer does not keep the process alive). */
  #arm(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(
      () => {
        const current = this.#current
        if (current !== undefined && this.#isDue(current)) this.#retire(current)
        if (this.#retired.size > 0) this.checkpoint().catch(() => undefined)
        if (this.#current === undefined && this.#retired.size === 0 && this.#timer !== undefined) {
          clearInterval(this.#timer)
          this.#timer = undefined
        }
      },
      Math.max(50, Math.floor(this.#options.rotateMs / 2)),
    )
    this.#timer.unref()
  }

  #retire(segment: Segment): void {
    if (segment.retired) return
    segment.retired = true
    if (this.#current === segment) this.#current = undefined
    this.#retired.add(segment)
    this.#maybeClose(segment)
  }

  async #create(segment: Segment): Promise<void> {
    const fs = this.#options.fs
    let handle: FileHandleLike | undefined
    // A few tries: `cleanup()` may remove the journal folder when it is empty.
    for (let attempt = 0; handle === undefined; attempt++) {
      try {
        handle = await fs.open(segment.path, SEGMENT_FLAGS, 0o666)
      } catch (error) {
        if (errnoOf(error) !== 'ENOENT' || attempt === 3) {
          throw unavailable(error, 'creating the journal segment', segment.path)
        }
        await fs.mkdir(this.dir).catch((e) => {
          if (errnoOf(e) !== 'EEXIST') throw unavailable(e, 'creating the journal folder', this.dir)
        })
        await this.#options.syncFolder(this.#options.root)
      }
    }
    try {
      await handle.write(MAGIC, 0, MAGIC.byteLength, 0)
      await handle.datasync()
      await this.#options.syncFolder(this.dir)
    } catch (error) {
      await handle.close().catch(() => undefined)
      throw unavailable(error, 'creating the journal segment', segment.path)
    }
    segment.size = MAGIC.byteLength
    segment.handle = handle
    segment.opening = undefined
  }

  #flush(segment: Segment): void {
    if (segment.writing || segment.queue.length === 0 || segment.handle === undefined) return
    // Entries reach the disk in the order they were queued, across segments too: a write accepted
    // before another is durable no later than it (`putStaged`). An older segment still writing
    // goes first; its end flushes this one.
    if (segment === this.#current && this.#olderBusy(segment)) return
    const batch = segment.queue
    segment.queue = []
    if (segment.failed !== undefined) {
      for (const pending of batch) pending.reject(segment.failed)
      this.#maybeClose(segment)
      return
    }
    segment.writing = true
    const handle = segment.handle
    const bytes = batch.length === 1 ? (batch[0] as Pending).bytes : Buffer.concat(batch.map((p) => p.bytes))
    const position = segment.size
    segment.size += bytes.byteLength
    writeFully(handle, bytes, position)
      .then(() => (SEGMENT_FLAGS === 'wx' ? handle.datasync() : undefined))
      .then(
        () => {
          for (const pending of batch) pending.resolve()
        },
        (error) => {
          const failure = unavailable(error, 'appending to the journal segment', segment.path)
          segment.failed = failure
          this.#retire(segment)
          for (const pending of batch) pending.reject(failure)
        },
      )
      .finally(() => {
        segment.writing = false
        if (segment.queue.length > 0) this.#flush(segment)
        else this.#maybeClose(segment)
        const current = this.#current
        if (segment.retired && current !== undefined && !this.#olderBusy(current)) this.#flush(current)
      })
  }

  /** Whether a retired segment older than `segment` still has entries to write. */
  #olderBusy(segment: Segment): boolean {
    for (const other of this.#retired) {
      if (other !== segment && other.start <= segment.start && (other.writing || other.queue.length > 0))
        return true
    }
    return false
  }

  #maybeClose(segment: Segment): void {
    if (!segment.retired || segment.inFlight > 0 || segment.writing || segment.queue.length > 0) return
    const handle = segment.handle
    if (handle === undefined) return
    segment.handle = undefined
    segment.opening = handle
      .close()
      .catch(() => undefined)
      .then(async () => {
        // A segment that never got an entry holds nothing to replay.
        if (segment.entries === 0) {
          await unlinkIfPresent(this.#options.fs, segment.path)
          this.#retired.delete(segment)
        }
        segment.opening = undefined
      })
  }

  async #whenIdle(): Promise<void> {
    const deadline = Date.now() + this.#options.closeTimeoutMs
    for (;;) {
      const busy = [...this.#retired].filter(
        (s) => s.inFlight > 0 || s.writing || s.queue.length > 0 || s.opening !== undefined,
      )
      if (busy.length === 0) return
      if (Date.now() > deadline) {
        const writes = busy.reduce((n, s) => n + s.inFlight + s.queue.length + (s.writing ? 1 : 0), 0)
        throw new StorageUnavailableError(
          `close() waited ${this.#options.closeTimeoutMs} ms for ${writes} journal write(s) still in flight in ${this.dir} (the disk does not answer?): the journal was not checkpointed. Check the disk, then open the storage again`,
        )
      }
      await Promise.all(busy.map((s) => s.opening)).catch(() => undefined)
      await sleep(1)
    }
  }
}
