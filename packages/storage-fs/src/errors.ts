// The errors @wf/storage-fs adds to core's: a folder's recorded durability mode (see
// durability.ts) that a process asked to break, or that cannot be read. Each has a stable `code`.

import { WfError } from '@wf/core'

/** The code of each @wf/storage-fs error, by its class. Stable across releases: branch on `error.code`. */
export const STORAGE_FS_ERROR_CODES = {
  DurabilityMismatchError: 'WF_DURABILITY_MISMATCH',
  DurabilityRecordError: 'WF_DURABILITY_RECORD',
} as const

/** A code of an @wf/storage-fs error. */
export type StorageFsErrorCode = (typeof STORAGE_FS_ERROR_CODES)[keyof typeof STORAGE_FS_ERROR_CODES]

/**
 * The folder keeps one durability mode for life (recorded in `.wf-storage.json` when it was first
 * opened), and this process asked for the other one. Nothing was written.
 */
export class DurabilityMismatchError extends WfError<'WF_DURABILITY_MISMATCH'> {
  /** The storage folder. */
  readonly root: string
  /** The mode the folder records. */
  readonly recorded: 'fsync' | 'journal'
  /** The mode this process asked for. */
  readonly requested: 'fsync' | 'journal'
  constructor(root: string, recorded: 'fsync' | 'journal', requested: 'fsync' | 'journal') {
    super(
      'WF_DURABILITY_MISMATCH',
      `the storage folder ${root} keeps durability '${recorded}' (recorded in its .wf-storage.json when it was first opened), and durability '${requested}' was asked for: leave durability out (and ?durability= from the URL) to open it in its own mode. One folder never mixes 'fsync' and 'journal' writers: a key deleted by one could come back after a power loss. To change the mode of a folder, see "Changing a folder's durability" in the README of @wf/storage-fs`,
    )
    this.root = root
    this.recorded = recorded
    this.requested = requested
  }
}

/** The folder's `.wf-storage.json` cannot be read or holds something this version does not know. */
export class DurabilityRecordError extends WfError<'WF_DURABILITY_RECORD'> {
  /** The file. */
  readonly file: string
  constructor(file: string, detail: string, options?: { cause?: unknown }) {
    super(
      'WF_DURABILITY_RECORD',
      `cannot read the storage folder's mode file ${file}: ${detail}. It records the durability the folder was written with: restore it (it holds {"version":1,"durability":"fsync"} or "journal"), or upgrade @wf/storage-fs if a newer version wrote it`,
      options,
    )
    this.file = file
  }
}
