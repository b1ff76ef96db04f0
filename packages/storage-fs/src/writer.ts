// What the storage front (file-system-storage.ts) hands its writes to: one writer per durability
// mode, chosen when the storage is made. `'fsync'` and `'none'` share FsyncWriter (fsync-writer.ts;
// 'none' skips the syncs), `'journal'` is JournaledWriter (journal/journaled-writer.ts). The front
// validates keys and values and locates the file; a writer makes the change and its durability.

import type { PutCondition } from '@wf/core'
import type { Location } from './value-files.js'

export interface Writer {
  /**
   * Gets the folder ready for this process's writes: replays what a power loss cut short (see
   * journal/recovery.ts) and, for the journal, checks the filesystem.
   */
  open(): Promise<void>
  /** Stores `header` + `data` as the key's file once `condition` holds (ConditionFailedError if not). */
  put(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition?: PutCondition,
  ): Promise<void>
  /**
   * Optional (`Storage.putStaged`): `put` in two steps, `accepted` when decided and `durable` when
   * synced, a put accepted before another starts being durable no later than it.
   */
  putStaged?(
    key: string,
    at: Location,
    header: Uint8Array,
    data: Uint8Array,
    condition?: PutCondition,
  ): { accepted: Promise<void>; durable: Promise<void> }
  /** Removes the key's file if there is one. */
  delete(key: string, at: Location): Promise<void>
  /** How many deletes of a `deleteMany` run at once (the journal's share its fdatasyncs). */
  readonly deleteWidth: number
  /** Makes everything durable and lets go of what the writer holds open. */
  close(): Promise<void>
}
