// Who wrote a lock or a temp file, and whether that process is gone. Locks and temp files carry
// pid, host and a per-process token so that one left by a process killed with SIGKILL can be
// recognised as stale at once instead of after a long timeout.

import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { crc32 } from 'node:zlib'

/** Short, file-name-safe tag of this machine (a hash of the host name). */
export const HOST_TAG = (crc32(hostname()) >>> 0).toString(36)

/**
 * Random per-process token. A pid alone is not an identity: in a container the restarted
 * process often gets the very pid of the one that crashed.
 */
export const PROCESS_TOKEN = randomBytes(6).toString('base64url').replace(/[-_]/g, 'x')

/** `pid.host.token`: the owner stamp written into lock and temp file names. */
export const OWNER_STAMP = `${process.pid}.${HOST_TAG}.${PROCESS_TOKEN}`

/**
 * Tells whether the process that left a stamp is certainly dead: it ran on this machine and
 * either its pid is gone or the pid is ours but the token is not (a previous incarnation).
 * A stamp from another machine is never "certainly dead": callers fall back on age.
 */
export function isOwnerDead(stamp: string): boolean {
  const [pidText, host, token] = stamp.split('.')
  if (host !== HOST_TAG || token === undefined) return false
  const pid = Number(pidText)
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  if (pid === process.pid) return token !== PROCESS_TOKEN
  try {
    process.kill(pid, 0)
    return false
  } catch (error) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (error as { code?: unknown }).code === 'ESRCH'
  }
}
