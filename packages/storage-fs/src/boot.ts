// Facts about the machine that the journal needs: which boot this is (a journal segment of another
// boot was cut short by a power loss or an OS crash) and a way to sync a whole filesystem at once.

import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

/**
 * A short id of the current boot of this machine (Linux's `boot_id`), or `undefined` where the
 * kernel does not tell (the journal is then not available).
 */
export function currentBoot(): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    return (
      readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')
        .replace(/[^0-9a-f]/g, '')
        .slice(0, 12) || undefined
    )
  } catch {
    return undefined
  }
}

/**
 * Flushes every file and folder of the filesystem holding `path` to the disk, with one syncfs(2)
 * (through coreutils' `sync -f`: Node has no binding for it). Resolves false when that is not
 * possible here, so the caller falls back on an fsync per file; rejects never.
 */
export function syncFileSystem(path: string): Promise<boolean> {
  if (process.platform !== 'linux') return Promise.resolve(false)
  return new Promise((resolve) => {
    let child: ReturnType<typeof spawn>
    try {
      child = spawn('sync', ['-f', path], { stdio: 'ignore' })
    } catch {
      resolve(false)
      return
    }
    child.on('error', () => resolve(false))
    child.on('close', (code) => resolve(code === 0))
  })
}

/** Filesystem types (statfs `f_type`) where the journal's guarantees do not hold: network filesystems. */
export const NETWORK_FILESYSTEMS: ReadonlyMap<number, string> = new Map([
  [0x6969, 'NFS'],
  [0x517b, 'SMB'],
  [0xff534d42, 'CIFS'],
  [0xfe534d42, 'SMB2'],
])
