// The pieces of the `wf` output that a spawned process cannot show: colour only on a TTY and
// never with NO_COLOR, table alignment with colour codes, values, the resume progress line, and
// flags that commander rejects (run in this process, on streams that claim to be a TTY).

import { stripVTControlCharacters } from 'node:util'
import { MemoryStorage, Runtime, step } from '@wf/core'
import { isJsonable } from '@wf/core/internal'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  duration,
  firstColumnWidth,
  formatValue,
  paint,
  shorten,
  shortenQuoted,
  table,
  useColor,
} from './cli/format.js'
import { main } from './cli/program.js'
import { showProgress } from './cli/progress.js'
import { gate } from './test-support/harness.js'

const tty = { isTTY: true } as NodeJS.WriteStream
const pipe = { isTTY: false } as NodeJS.WriteStream

describe('colour', () => {
  const saved = process.env.NO_COLOR
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved
  })

  it('is on for a TTY only, and off with NO_COLOR or --no-color', () => {
    delete process.env.NO_COLOR
    expect(useColor(tty, true)).toBe(true)
    expect(useColor(pipe, true)).toBe(false)
    expect(useColor(tty, false)).toBe(false)
    process.env.NO_COLOR = '1'
    expect(useColor(tty, true)).toBe(false)
  })

  it('paints for the TTY wf writes to, even when the stdout of the test process is no terminal', () => {
    expect(process.stdout.isTTY).not.toBe(true)
    const red = paint({ color: true }, 'red', 'FAILED')
    expect(red).not.toBe('FAILED')
    expect(stripVTControlCharacters(red)).toBe('FAILED')
    expect(paint({ color: false }, 'red', 'FAILED')).toBe('FAILED')
  })

  it('does not break table alignment', () => {
    const text = table(
      ['ID', 'STATUS'],
      [
        ['\u001b[32mlong-id\u001b[0m', 'X'],
        ['a', 'Y'],
      ],
      { color: true },
    )
    const plain = stripVTControlCharacters(text)
    expect(plain.split('\n')).toEqual(['ID       STATUS', 'long-id  X', 'a        Y'])
  })
})

/** Runs `wf` in this process with streams that say they are a TTY; resolves to the exit code and stderr. */
async function wfInProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = ''
  const stdout = { isTTY: true, columns: 80, write: () => true } as unknown as NodeJS.WriteStream
  const write = (t: string) => {
    stderr += t
    return true
  }
  const io = { stdout, stderr: { isTTY: true, write } as unknown as NodeJS.WriteStream }
  const code = await main(['node', 'wf', ...args], io)
  return { code, stderr }
}

describe('flags read by commander', () => {
  const saved = process.env.NO_COLOR
  afterEach(() => {
    if (saved === undefined) delete process.env.NO_COLOR
    else process.env.NO_COLOR = saved
  })

  it('rejects a value of --on-code-change outside its choices, as a usage error', async () => {
    const bad = await wfInProcess(['worker', '--import', 'x', '--on-code-change', 'maybe'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/Allowed choices are warn, error, ignore/)
  })

  it('does not colour a bad number with --no-color, on a TTY', async () => {
    delete process.env.NO_COLOR
    const bad = await wfInProcess(['--no-color', 'worker', '--import', 'x', '--concurrency', 'lots'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toBe('wf: --concurrency must be a whole number of at least 1, got "lots"\n')
  })
})

describe('values', () => {
  it('are JSON only when JSON keeps them unchanged', () => {
    expect(isJsonable({ a: [1, 'x', null, true] })).toBe(true)
    for (const value of [undefined, Number.NaN, -0, 1n, new Date(), new Map(), { f: () => 1 }]) {
      expect(isJsonable(value)).toBe(false)
    }
    const cyclic: { self?: unknown } = {}
    cyclic.self = cyclic
    expect(isJsonable(cyclic)).toBe(false)
    expect(formatValue({ a: 1 }, { color: false })).toBe('{\n  "a": 1\n}')
    expect(formatValue(new Set([1]), { color: false })).toBe('Set(1) { 1 }')
  })

  it('durations read at a glance', () => {
    expect([
      duration(5),
      duration(1500),
      duration(125_000),
      duration(3_720_000),
      duration(undefined),
    ]).toEqual(['5ms', '1.5s', '2m05s', '1h02m', '-'])
  })
})

const hold = gate()
const first = step('fmt-first', (n: number) => n)
const second = step('fmt-second', async (n: number) => {
  await hold.promise
  return n
})
const expand = step('fmt-expand', (n: number) => second(first(n)))

describe('resume progress', () => {
  it('counts committed steps over the steps known, continuations included', async () => {
    const runtime = new Runtime(new MemoryStorage())
    const handle = await runtime.runAsync(expand(1), { workflowId: 'p' })
    const lines: string[] = []
    const stop = showProgress(await runtime.store(), 'p', (t) => lines.push(t))
    await vi.waitFor(() => expect(lines.some((l) => l.endsWith('steps 2/3'))).toBe(true), { timeout: 5000 })
    hold.open()
    await handle.result()
    stop()
    expect(lines.at(-1)).toBe('\r\u001b[2K')
  })
})

describe('readable ids', () => {
  it('shortens text past the limit with an ellipsis in the middle, keeping both ends', () => {
    expect(shorten('short')).toBe('short')
    const long = `${'a'.repeat(50)}${'b'.repeat(50)}`
    expect(shorten(long)).toBe(`${'a'.repeat(40)}…${'b'.repeat(39)}`)
    expect(shorten(long)).toHaveLength(80)
    expect(shorten('abcdefghij', 5)).toBe('ab…ij')
  })

  it('shortens only the quoted ids and keys of a message that are too long', () => {
    const id = `w-${'x'.repeat(100)}`
    expect(shortenQuoted(`no workflow with id "${id}" (see "wf list")`)).toBe(
      `no workflow with id "${shorten(id)}" (see "wf list")`,
    )
  })

  it('gives the id column what the terminal has left, and nothing to fit without a terminal', () => {
    expect(firstColumnWidth(100, 12)).toBe(86)
    expect(firstColumnWidth(20, 12)).toBe(12)
    expect(firstColumnWidth(undefined, 12)).toBeUndefined()
  })
})
