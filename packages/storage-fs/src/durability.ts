// Which durability a storage folder gets, and keeping it for the folder's life. A new folder gets
// the journal where the journal's assumptions hold (detected below), else 'fsync'; the mode is
// recorded in the folder (MODE_FILE) when it is first opened, and every later open uses it,
// because one folder must not mix 'fsync' and 'journal' writers: a journal replayed after a power
// loss brings back a key that a writer without the journal deleted after the journal's last entry.
//
// 'none' is not a folder's mode but one process's choice: its writes are not synced, so a power
// loss may undo them, but it cannot undo a synced or journaled write of another process (replay
// rewrites only versions the journal knew; a 'none' delete or put is just lost). So 'none' opens
// any folder, and a new folder first opened with 'none' records the mode detection picks: the
// application that opens it next without an option gets a durable mode, not the test's 'none'.

import { join } from 'node:path'
import { DurabilityMismatchError, DurabilityRecordError } from './errors.js'
import type { FileSystem } from './file-system.js'
import { fsyncFolder, linkedAnyway, unlinkQuiet } from './fs.js'
import { errnoOf, unavailable } from './fs-errors.js'
import type { ValueFiles } from './value-files.js'

/** How a put is made durable; see `FileSystemStorageOptions.durability`. */
export type Durability = 'fsync' | 'journal' | 'none'
/** The modes a folder records (see the top of this file for why 'none' is not one). */
export type FolderDurability = 'fsync' | 'journal'

/** The file in the storage root that records the folder's mode (a dot name: never a key). */
export const MODE_FILE = '.wf-storage.json'
const MODE_VERSION = 1

/** A durability and, in words, why it was chosen. */
export interface DurabilityChoice {
  durability: FolderDurability
  reason: string
}

/** The folder's recorded mode, as `.wf-storage.json` holds it. */
export interface FolderMode extends DurabilityChoice {
  /** When the folder was first opened (ISO 8601). */
  recordedAt: string
  /** This process wrote the record (it opened the folder first). */
  created: boolean
}

// What the journal assumes, and so where it is the default (journal/journal.ts has the mechanism):
// - One kernel owns the folder's disk: every writer runs on this machine. A process crash loses
//   nothing its write() calls put in the page cache; only a power loss or an OS crash does, and
//   that changes the kernel's boot id, which is how the next open knows to replay. Writers on
//   another machine (a network filesystem, a folder shared from a VM's host) break this.
// - CLOCK_MONOTONIC orders writes across the processes of one boot (keep writers of one folder in
//   one time namespace).
// - A synced append (O_DSYNC write or fdatasync) of a segment is on stable storage when it
//   returns, and syncfs(2) of the folder's filesystem flushes every file and folder change made
//   on it (a checkpoint). A FUSE daemon decides for itself what those do; an overlay mounted
//   `volatile` makes them no-ops and hides which filesystem holds its upper layer.
// - rename, link and symlink are atomic and hard links exist (a lock is a hard link).
// - Linux: the boot id is /proc/sys/kernel/random/boot_id.
// So the default is the journal only on local disk filesystems known to keep these; anything else
// (unknown included) stays 'fsync', which assumes only that fsync works. `durability` overrides.

/** statfs `f_type` magic numbers of local filesystems where the journal is the default. */
const JOURNAL_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0xef53, 'ext2/ext3/ext4'],
  [0x58465342, 'xfs'],
  [0x9123683e, 'btrfs'],
  // Lost on any reboot anyway; the journal costs nothing there and keeps process crashes safe.
  [0x01021994, 'tmpfs'],
])

const REMOTE =
  'a network filesystem: other machines may write the folder, and their reboots are not this kernel'
/** Filesystems known to break an assumption above, and which. */
const NOT_FOR_JOURNAL: ReadonlyMap<number, string> = new Map([
  [0x6969, `NFS, ${REMOTE}`],
  [0x517b, `SMB, ${REMOTE}`],
  [0xff534d42, `CIFS, ${REMOTE}`],
  [0xfe534d42, `SMB2, ${REMOTE}`],
  [0x00c36400, `Ceph, ${REMOTE}`],
  [0x5346414f, `AFS, ${REMOTE}`],
  [0x0bd00bd0, `Lustre, ${REMOTE}`],
  [0x47504653, `GPFS, ${REMOTE}`],
  [0x01021997, '9p, a folder shared from another machine or the host of this VM or WSL'],
  [0x786f4256, "vboxsf, a folder shared from this VM's host"],
  [0x65735546, 'FUSE: its daemon decides what a sync does'],
  [0x794c7630, 'overlayfs: its upper layer may be any filesystem, and a volatile mount skips every sync'],
])

/** What `detectDurability` knows of the process beyond the folder (tests pass other machines). */
export interface Machine {
  platform: NodeJS.Platform
  /** The kernel's boot id (boot.ts), `undefined` where there is none. */
  boot: string | undefined
}

/**
 * The durability a new folder at `root` (which exists) gets by default: `'journal'` on a local
 * disk of a Linux machine (ext2/3/4, xfs, btrfs, tmpfs), else `'fsync'`, with the reason.
 */
export async function detectDurability(
  root: string,
  fs: FileSystem,
  machine: Machine,
): Promise<DurabilityChoice> {
  const fsync = (why: string): DurabilityChoice => ({ durability: 'fsync', reason: why })
  if (machine.platform !== 'linux') {
    return fsync(
      `the journal needs Linux (it tells reboots apart by the kernel's boot id), and this is ${machine.platform}`,
    )
  }
  if (machine.boot === undefined)
    return fsync('the kernel does not tell its boot id here, which the journal needs')
  if (fs.sync === undefined)
    return fsync('the given fs has no synchronous calls (fs.sync), which the journal needs')
  if (fs.statfs === undefined)
    return fsync('the given fs cannot tell which filesystem holds the folder (no fs.statfs)')
  let type: number
  try {
    type = Number((await fs.statfs(root)).type) >>> 0
  } catch (error) {
    return fsync(
      `statfs of the folder failed (${errnoOf(error) ?? String(error)}), so its filesystem is unknown`,
    )
  }
  const local = JOURNAL_FILESYSTEMS.get(type)
  if (local !== undefined)
    return { durability: 'journal', reason: `${local}, a local disk of this Linux machine` }
  const unsafe = NOT_FOR_JOURNAL.get(type)
  if (unsafe !== undefined) return fsync(`the folder is on ${unsafe}`)
  return fsync(
    `the folder is on a filesystem wf does not know the journal to be safe on (statfs type 0x${type.toString(16)})`,
  )
}

/**
 * The folder's durability mode: the recorded one, or, in a folder that has none yet, the one this
 * open records (create-if-absent: of processes opening a new folder at once one record wins and
 * every process uses it). `requested` is the `durability` option: `'fsync'` or `'journal'` must
 * match the record (else `DurabilityMismatchError`); a new folder records it instead of detecting.
 */
export async function settleFolderMode(
  files: ValueFiles,
  requested: Durability | undefined,
  detect: () => Promise<DurabilityChoice>,
): Promise<FolderMode> {
  const file = join(files.root, MODE_FILE)
  let mode = await readMode(files.fs, file)
  if (mode === undefined) {
    const explicit = requested === 'none' ? undefined : requested
    const choice = await proposeMode(files, explicit, detect)
    mode = await createMode(files, file, choice)
  }
  if ((requested === 'fsync' || requested === 'journal') && requested !== mode.durability) {
    throw new DurabilityMismatchError(files.root, mode.durability, requested)
  }
  return mode
}

/** What a folder without a mode file gets: a folder with keys predates mode files. */
async function proposeMode(
  files: ValueFiles,
  explicit: FolderDurability | undefined,
  detect: () => Promise<DurabilityChoice>,
): Promise<DurabilityChoice> {
  // A crash between making the folder and recording its mode leaves no keys (nothing is written
  // before the record), so a folder with keys was written by a version without mode files.
  if (await hasKeys(files.fs, files.root)) {
    return explicit === undefined
      ? {
          durability: 'fsync',
          reason:
            "the folder held workflows from before wf recorded a folder's mode, written with 'fsync' (the default then)",
        }
      : {
          durability: explicit,
          reason: `the folder held workflows from before wf recorded a folder's mode, and was opened with durability '${explicit}'`,
        }
  }
  if (explicit !== undefined) {
    return {
      durability: explicit,
      reason: `durability '${explicit}' was given when the folder was first opened`,
    }
  }
  return detect()
}

/** Whether the folder holds a key: anything but internal files (every name starting with "."). */
async function hasKeys(fs: FileSystem, root: string): Promise<boolean> {
  try {
    return (await fs.readdir(root)).some((name) => !name.startsWith('.'))
  } catch (error) {
    throw unavailable(error, 'listing', root)
  }
}

async function readMode(fs: FileSystem, file: string): Promise<FolderMode | undefined> {
  let text: string
  try {
    text = new TextDecoder().decode(await fs.readFile(file))
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined
    throw unavailable(error, 'reading', file)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new DurabilityRecordError(file, 'it is not JSON', { cause: error })
  }
  const record = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>
  if (typeof record.version === 'number' && record.version > MODE_VERSION) {
    throw new DurabilityRecordError(
      file,
      `its version ${record.version} is newer than this @wf/storage-fs knows`,
    )
  }
  const { durability } = record
  if (record.version !== MODE_VERSION || (durability !== 'fsync' && durability !== 'journal')) {
    throw new DurabilityRecordError(file, `it holds ${text.trim().slice(0, 200)}`)
  }
  return {
    durability,
    reason: typeof record.reason === 'string' ? record.reason : 'recorded without a reason',
    recordedAt: typeof record.recordedAt === 'string' ? record.recordedAt : 'unknown',
    created: false,
  }
}

/**
 * Records the folder's mode, durably, unless another process recorded one first: the record is
 * written and synced whole under a temp name, then link()ed to its name (fails if it exists,
 * atomically, across processes and on NFS), and the root synced. The loser reads the winner's.
 */
async function createMode(files: ValueFiles, file: string, choice: DurabilityChoice): Promise<FolderMode> {
  const { fs, root } = files
  const recordedAt = new Date().toISOString()
  const json = { version: MODE_VERSION, durability: choice.durability, reason: choice.reason, recordedAt }
  const bytes = new TextEncoder().encode(`${JSON.stringify(json, null, 2)}\n`)
  const at = { dir: root, name: MODE_FILE, file }
  const temp = (await files.writeTemp(at, bytes, new Uint8Array(), true, true)) as string
  let won = true
  try {
    await fs.link(temp, file)
  } catch (error) {
    // NFS may report EEXIST for a link whose reply was lost: the temp file's link count tells.
    won = errnoOf(error) === 'EEXIST' && (await linkedAnyway(fs, temp))
    if (!won && errnoOf(error) !== 'EEXIST') {
      await unlinkQuiet(fs, temp)
      throw unavailable(error, 'creating', file)
    }
  }
  await unlinkQuiet(fs, temp)
  if (!won) {
    const theirs = await readMode(fs, file)
    if (theirs === undefined)
      throw unavailable(new Error('it vanished after it was created'), 'reading', file)
    return theirs
  }
  await fsyncFolder(fs, root)
  return { ...choice, recordedAt, created: true }
}
