// Replay after a power loss or an OS crash: the segments an earlier boot of this machine left
// (their writes may be missing from the files, whose data was never synced) are applied, for
// each key its newest entry not covered by that boot's last checkpoint. See journal.ts for why
// timestamps order the writes of every process and what a checkpoint proves.

import { join } from 'node:path'
import type { FileSystem } from '../file-system.js'
import { unlinkIfPresent } from '../fs.js'
import { HOST_TAG, isOwnerDead } from '../owner.js'
import {
  decodeSegment,
  type Entry,
  EntryKind,
  listSegments,
  parseCheckpointName,
  type SegmentName,
  versionOfFile,
} from './format.js'

/**
 * What replay does to bring one key back to its newest journaled state. `known` holds every state
 * the journal saw the key in (versions, and `null` for absent): a file in one of those states, or
 * torn, lost the newest write in the crash; a file in another state was written since by a
 * process that does not journal, and is left alone.
 */
export type ApplyEntry = (entry: Entry, known: ReadonlySet<string | null>) => Promise<void>

/**
 * Replays the segments left by an earlier boot of this machine (a power loss or an OS crash came
 * between their writes and a checkpoint): for each key, the newest entry not covered by that
 * boot's last checkpoint is applied durably; then the segments and marks are deleted. Call it
 * under the recovery lock, before this process writes anything. Returns how many keys it set.
 */
export async function replayOtherBoots(
  fs: FileSystem,
  dir: string,
  boot: string,
  apply: ApplyEntry,
): Promise<number> {
  const segments = (await listSegments(fs, dir)).filter((s) => s.host === HOST_TAG && s.boot !== boot)
  if (segments.length === 0) return 0
  const names = await fs.readdir(dir)
  const covered = new Map<string, bigint>()
  for (const name of names) {
    const mark = parseCheckpointName(name)
    if (mark !== undefined && mark.at > (covered.get(mark.boot) ?? -1n)) covered.set(mark.boot, mark.at)
  }
  const newest = new Map<string, Entry>()
  const known = new Map<string, Set<string | null>>()
  for (const segment of segments) {
    const path = join(dir, segment.name)
    const since = covered.get(segment.boot) ?? 0n
    for (const entry of decodeSegment(path, await fs.readFile(path))) {
      let states = known.get(entry.key)
      if (states === undefined) {
        states = new Set()
        known.set(entry.key, states)
      }
      if (entry.prev !== undefined) states.add(entry.prev)
      states.add(entry.kind === EntryKind.Delete ? null : versionOfFile(entry.file))
      if (entry.at < since) continue
      const seen = newest.get(entry.key)
      if (seen === undefined || entry.at > seen.at) newest.set(entry.key, entry)
    }
  }
  for (const entry of newest.values()) await apply(entry, known.get(entry.key) as Set<string | null>)
  for (const segment of segments) await unlinkIfPresent(fs, join(dir, segment.name))
  for (const name of names) {
    const mark = parseCheckpointName(name)
    if (mark !== undefined && mark.boot !== boot) await unlinkIfPresent(fs, join(dir, name))
  }
  return newest.size
}

/** Tells whether a segment's writer is gone: another boot of this machine, or a dead process of this one. */
export function isAbandoned(segment: SegmentName, boot: string): boolean {
  if (segment.host !== HOST_TAG) return false
  return segment.boot !== boot || isOwnerDead(segment.owner)
}
