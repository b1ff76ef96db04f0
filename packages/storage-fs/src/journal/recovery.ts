// What opening a storage folder does about journals left behind, in every durability mode (a
// folder written with the journal may be opened with 'fsync' after a power loss): segments of an
// earlier boot of this machine are replayed under the recovery lock, and segments of processes
// that died on this boot are covered by a checkpoint of this process's journal, if it has one.

import { join } from 'node:path'
import { CorruptRecordError } from '@wf/core'
import { makeFolder } from '../folders.js'
import { fsyncFolder, readVersion, unlinkQuiet } from '../fs.js'
import { errnoOf, unavailable } from '../fs-errors.js'
import { decodeRecord } from '../record.js'
import type { ValueFiles } from '../value-files.js'
import { type Entry, EntryKind, JOURNAL_FOLDER, listSegments, versionOfFile } from './format.js'
import type { Journal } from './journal.js'
import { isAbandoned, replayOtherBoots } from './replay.js'

const RECOVERY_LOCK = 'recovery'

/**
 * Replays what a power loss or an OS crash cut short: journal segments of an earlier boot of
 * this machine. All processes opening the folder wait for the one that replays. Segments of
 * processes that died on this boot need no replay (their files are in the page cache); a
 * checkpoint of `journal` covers and deletes them.
 */
export async function recover(files: ValueFiles, boot: string | undefined, journal?: Journal): Promise<void> {
  if (boot === undefined) return
  const dir = join(files.root, JOURNAL_FOLDER)
  const segments = await listSegments(files.fs, dir)
  if (segments.some((s) => isAbandoned(s, boot) && s.boot !== boot)) {
    await files.locks.acquire(dir, RECOVERY_LOCK, `${JOURNAL_FOLDER}/${RECOVERY_LOCK}`)
    try {
      await replayOtherBoots(files.fs, dir, boot, (entry, known) => applyEntry(files, entry, known))
      await fsyncFolder(files.fs, dir)
    } finally {
      await files.locks.release(dir, RECOVERY_LOCK)
    }
  }
  if (journal !== undefined && segments.some((s) => s.boot === boot && isAbandoned(s, boot))) {
    await journal.checkpoint()
  }
}

/** Brings one key back to a journaled state after a power loss (see `ApplyEntry`). */
async function applyEntry(files: ValueFiles, entry: Entry, known: ReadonlySet<string | null>): Promise<void> {
  const at = files.locate(entry.key)
  let current: string | null | 'torn'
  try {
    current = (await readVersion(files.fs, at.file)) ?? 'torn'
    if (current !== 'torn') decodeRecord(entry.key, at.file, await files.fs.readFile(at.file))
  } catch (error) {
    if (errnoOf(error) === 'ENOENT' || errnoOf(error) === 'ENOTDIR') current = null
    else if (error instanceof CorruptRecordError) current = 'torn'
    else throw unavailable(error, 'reading', at.file)
  }
  const target = entry.kind === EntryKind.Delete ? null : versionOfFile(entry.file)
  if (current === target || (current !== 'torn' && !known.has(current))) return
  if (entry.kind === EntryKind.Delete) {
    await unlinkQuiet(files.fs, at.file)
    await fsyncFolder(files.fs, at.dir)
  } else if (entry.kind === EntryKind.Put) {
    await makeFolder(files.fs, at.dir, [])
    await files.writeDurably(at.file, entry.file as Uint8Array)
    await files.syncParents(at.dir)
  }
}
