// This process's host and whether a process on it still exists: how a runner on the same machine
// is known to be gone at once, without waiting for its lease to run out.

import { hostname } from 'node:os'

export const HOST = hostname()

/** Signal 0 checks that the process exists; EPERM means it does, under another user. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
