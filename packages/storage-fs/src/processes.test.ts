// Crash safety and cross-process races with real child processes: writers killed with SIGKILL
// at random moments, and 20 processes racing one conditional write. The children import the
// built package (dist), exactly as an application does.

import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MODE_FILE } from './durability.js'
import { createFileSystemStorage, type FileSystemStorage } from './index.js'
import { JOURNAL_FOLDER } from './journal/format.js'
import { ensureBuilt } from './test-support/build-once.js'

const here = dirname(fileURLToPath(import.meta.url))
const crashWriter = join(here, 'test-support', 'crash-writer.mjs')
const raceWriter = join(here, 'test-support', 'race-writer.mjs')
const text = (data: Uint8Array) => new TextDecoder().decode(data)

const roots: string[] = []
async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'wf-storage-fs-proc-'))
  roots.push(root)
  return root
}

beforeAll(() => ensureBuilt(), 120_000)
afterAll(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })))
})

/** Every internal (temp or lock) file name under `dir`. */
async function internalFiles(dir: string): Promise<string[]> {
  const found: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === JOURNAL_FOLDER) continue // the journal's own files, checked apart
    if (entry.name === MODE_FILE) continue // the folder's durability mode, kept for life
    if (entry.name.startsWith('.')) found.push(join(dir, entry.name))
    else if (entry.isDirectory()) found.push(...(await internalFiles(join(dir, entry.name))))
  }
  return found
}

/** Lines a child prints, as they arrive. */
function lines(child: ChildProcess, onLine: (line: string) => void): void {
  let buffered = ''
  child.stdout?.setEncoding('utf8')
  child.stdout?.on('data', (chunk: string) => {
    buffered += chunk
    let newline = buffered.indexOf('\n')
    while (newline >= 0) {
      onLine(buffered.slice(0, newline))
      buffered = buffered.slice(newline + 1)
      newline = buffered.indexOf('\n')
    }
  })
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })
}

/** Acknowledged writes a writer makes before the random moment it is killed at begins. */
const ACKS_BEFORE_KILL = 4

describe.each([
  ['fsync', 50],
  ['journal', 30],
] as const)('crash safety (durability %s)', (durability, rounds) => {
  it(`after SIGKILL at ${rounds} random moments every key holds a whole value a writer wrote, acknowledged writes included`, async () => {
    const root = await freshRoot()
    const storage = await createFileSystemStorage({ root, durability })
    // The highest sequence number acknowledged (put resolved) per key, over all rounds.
    const acknowledged = new Map<string, number>()
    let sawLeftovers = 0
    let writesSeen = 0

    for (let round = 0; round < rounds; round++) {
      const child = spawn(process.execPath, [crashWriter, root, String(round * 10_000_000), durability], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      // Killed at a random moment after its first few acknowledged writes: on a slow disk a fixed
      // delay after start-up could kill writers before they wrote anything.
      let writing!: () => void
      const isWriting = new Promise<void>((resolve) => {
        writing = resolve
      })
      let acksThisRound = 0
      lines(child, (line) => {
        // "ack <seq> <key>": the key last, as it may contain spaces.
        const [word, seq] = line.split(' ', 2)
        const key = line.slice(`${word} ${seq} `.length)
        if (word === 'ack') {
          acknowledged.set(key, Math.max(acknowledged.get(key) ?? -1, Number(seq)))
          writesSeen++
          if (++acksThisRound === ACKS_BEFORE_KILL) writing()
        }
      })
      await Promise.race([isWriting, exited(child)])
      await sleep(Math.random() * 40)
      child.kill('SIGKILL')
      await exited(child)
      expect(child.signalCode, 'the writer died of something else than our SIGKILL').toBe('SIGKILL')

      if ((await internalFiles(root)).length > 0) sawLeftovers++
      const { keys } = await storage.list('')
      for (const key of keys) {
        const value = await storage.get(key)
        expect(value, key).toBeDefined()
        const [head = '', body = ''] = text(value?.data ?? new Uint8Array()).split('\n')
        const { key: writtenKey, seq } = JSON.parse(head) as { key: string; seq: number }
        expect(writtenKey).toBe(key)
        expect(body).toBe(String(seq % 97).repeat(1 + ((seq * 7919) % 4000)))
        expect(seq, `${key} lost an acknowledged write`).toBeGreaterThanOrEqual(acknowledged.get(key) ?? -1)
      }
      for (const key of acknowledged.keys()) expect(keys, `acknowledged ${key} is missing`).toContain(key)
    }

    // The writers really wrote, and kills left temp or lock files at least once that list and get
    // had to ignore; cleanup() removes them, as their owners are dead.
    expect(writesSeen).toBeGreaterThan(100)
    expect(sawLeftovers).toBeGreaterThan(0)
    await storage.cleanup()
    expect(await internalFiles(root)).toEqual([])
    // The journal's segments of the killed writers are checkpointed and deleted by close().
    await storage.close()
    const journal = await readdir(join(root, JOURNAL_FOLDER)).catch(() => [] as string[])
    expect(journal.filter((name) => name.endsWith('.wal'))).toEqual([])
  }, 240_000) // 50 child processes: slow on a loaded 2-core machine
})

interface RaceResult {
  id: string
  won: boolean
  version?: string
  code?: string
}

describe('cross-process races', () => {
  let storage: FileSystemStorage
  let root: string
  let children: ChildProcess[] = []
  let pending: ((result: RaceResult) => void)[] = []

  // 20 processes started once; each race sends one command to all of them at the same moment.
  beforeAll(async () => {
    root = await freshRoot()
    // An fsync folder: the children open it in its recorded mode (and leave no owner links).
    storage = await createFileSystemStorage({ root, durability: 'fsync' })
    children = Array.from({ length: 20 }, (_, i) =>
      spawn(process.execPath, [raceWriter, root, String(i)], { stdio: ['pipe', 'pipe', 'inherit'] }),
    )
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) =>
            lines(child, (line) => {
              if (line === 'ready') resolve()
              else pending.shift()?.(JSON.parse(line) as RaceResult)
            }),
          ),
      ),
    )
  }, 240_000) // 50 child processes: slow on a loaded 2-core machine
  afterAll(async () => {
    for (const child of children) child.stdin?.end()
    await Promise.all(children.map(exited))
  })

  async function race(key: string, condition: string): Promise<RaceResult[]> {
    const results = Array.from(
      { length: children.length },
      () => new Promise<RaceResult>((resolve) => pending.push(resolve)),
    )
    const command = `${JSON.stringify({ key, condition })}\n`
    for (const child of children) child.stdin?.write(command)
    const settled = await Promise.all(results)
    pending = []
    return settled
  }

  it('20 processes creating one key with ifAbsent: exactly one wins, the others get ConditionFailedError', async () => {
    const results = await race('race/absent', 'absent')
    const winners = results.filter((r) => r.won)
    expect(winners).toHaveLength(1)
    expect(results.filter((r) => !r.won).map((r) => r.code)).toEqual(Array(19).fill('WF_CONDITION_FAILED'))
    const stored = await storage.get('race/absent')
    expect(text(stored?.data ?? new Uint8Array())).toBe(`writer ${winners[0]?.id}`)
    expect(stored?.version).toBe(winners[0]?.version)
  }, 30_000)

  it('20 processes swapping from one version: exactly one wins and its body is stored', async () => {
    for (let round = 0; round < 3; round++) {
      const { version } = await storage.put('race/cas', new TextEncoder().encode('start'))
      const results = await race('race/cas', version)
      const winners = results.filter((r) => r.won)
      expect(winners).toHaveLength(1)
      expect(results.filter((r) => !r.won).map((r) => r.code)).toEqual(Array(19).fill('WF_CONDITION_FAILED'))
      const stored = await storage.get('race/cas')
      expect(text(stored?.data ?? new Uint8Array())).toBe(`writer ${winners[0]?.id}`)
      expect(stored?.version).toBe(winners[0]?.version)
    }
    expect(await internalFiles(root)).toEqual([])
  }, 30_000)
})
