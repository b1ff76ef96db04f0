// Test support: a real child process whose stdout the test follows line by line, waiting for a
// line that matches (a "ready", an event), and its exit. Children are SIGKILLed by `killAll`
// (afterAll) so a failing test leaves none behind.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'

export interface Child {
  proc: ChildProcessWithoutNullStreams
  /** The lines printed on stdout so far. */
  lines(): string[]
  /** What it printed on stderr so far. */
  err(): string
  /**
   * Resolves with the first line that starts with `match` (a string), matches it (a RegExp) or
   * satisfies it (a function); rejects when the child exits first or after `timeoutMs`.
   */
  line(match: string | RegExp | ((line: string) => boolean), timeoutMs?: number): Promise<string>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const children = new Set<Child>()

/** Starts `node args…` (the same Node as the tests) in `cwd` with `env` added to this process's. */
export function spawnChild(
  args: string[],
  options: { cwd?: string; env?: Record<string, string | undefined> } = {},
): Child {
  const proc = spawn(process.execPath, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
  })
  let out = ''
  let err = ''
  let ended = false
  const waiting = new Set<() => void>()
  const wake = () => {
    for (const w of [...waiting]) w()
  }
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    wake()
  })
  proc.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  // 'close', not 'exit': it comes once stdout and stderr are drained too, so what the child
  // printed last is in `lines()` and `err()` when `exited` resolves or a `line()` rejects.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => {
      ended = true
      children.delete(made)
      wake()
      resolve({ code, signal })
    }),
  )
  // Only complete lines: the last piece may still be arriving.
  const lines = () => out.split('\n').slice(0, -1).filter(Boolean)
  const made: Child = {
    proc,
    lines,
    err: () => err,
    exited,
    line: (match, timeoutMs = 30_000) =>
      new Promise<string>((resolve, reject) => {
        const test =
          typeof match === 'string'
            ? (l: string) => l.startsWith(match)
            : match instanceof RegExp
              ? (l: string) => match.test(l)
              : match
        const timer = setTimeout(() => {
          waiting.delete(check)
          reject(new Error(`no line ${String(match)} after ${timeoutMs} ms:\n${out}\n${err}`))
        }, timeoutMs)
        const check = () => {
          const found = lines().find(test)
          if (found !== undefined || ended) {
            waiting.delete(check)
            clearTimeout(timer)
            if (found !== undefined) resolve(found)
            else reject(new Error(`the child exited without a line ${String(match)}:\n${out}\n${err}`))
          }
        }
        waiting.add(check)
        check()
      }),
  }
  children.add(made)
  return made
}

/** Stops a child with `signal` and resolves once it exited. */
export async function stopChild(
  child: Child,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.proc.exitCode === null && child.proc.signalCode === null) child.proc.kill(signal)
  return child.exited
}

/** SIGKILLs every child still running (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)))
}
