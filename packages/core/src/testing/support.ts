// Helpers shared by the storage conformance suite: byte patterns, byte comparison that stays fast
// on multi-megabyte values, bounded concurrency, and error checks that survive duplicate copies of
// @wf/core (a plugin and an application may each resolve their own).

import { expect } from 'vitest'
import { ConditionFailedError, InvalidKeyError } from '../errors.js'
import { compareKeys, type Storage } from '../storage/storage.js'

/** What each group of contract tests needs: the storage of the running test and the settled options. */
export interface ContractContext {
  /** The fresh storage created for the running test. */
  storage(): Storage
  timeoutMs: number
  largeValueBytes: number
  keyCount: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function utf8(text: string): Uint8Array {
  return encoder.encode(text)
}

export function text(data: Uint8Array): string {
  return decoder.decode(data)
}

/** Bytes from a seeded xorshift: no run repeats, so a shifted or spliced copy is caught. */
export function patternBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed | 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/**
 * Asserts two byte arrays are equal and, if not, says where they first differ. `toEqual` on
 * megabytes is slow and prints the whole array.
 */
export function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array, what = 'value'): void {
  expect(actual, `${what}: missing`).toBeDefined()
  if (actual === undefined) return
  expect(actual, `${what}: not a Uint8Array`).toBeInstanceOf(Uint8Array)
  expect(actual.byteLength, `${what}: length`).toBe(expected.byteLength)
  let firstDifference = -1
  for (let i = 0; i < expected.byteLength; i++) {
    if (actual[i] !== expected[i]) {
      firstDifference = i
      break
    }
  }
  expect(firstDifference, `${what}: first differing byte offset`).toBe(-1)
}

/** The byte that fills `data`, or `undefined` when it holds more than one byte value. */
export function fillByte(data: Uint8Array): number | undefined {
  const first = data[0]
  for (let i = 1; i < data.byteLength; i++) if (data[i] !== first) return undefined
  return first
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let nextIndex = 0
  async function worker(): Promise<void> {
    while (nextIndex < items.length) {
      const index = nextIndex++
      results[index] = await fn(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/** Fisher–Yates with a seeded generator, so a failing order can be replayed. */
export function shuffled<T>(items: readonly T[], seed = 42): T[] {
  const out = [...items]
  let x = seed
  for (let i = out.length - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    const j = x % (i + 1)
    ;[out[i], out[j]] = [out[j] as T, out[i] as T]
  }
  return out
}

function hasCode(error: unknown, code: string): boolean {
  return error instanceof Error && (error as Error & { code?: unknown }).code === code
}

/** True for `ConditionFailedError`, also when thrown by another copy of @wf/core (same stable code). */
export function isConditionFailed(error: unknown): boolean {
  return error instanceof ConditionFailedError || hasCode(error, 'WF_CONDITION_FAILED')
}

/** True for `InvalidKeyError`, also when thrown by another copy of @wf/core (same stable code). */
export function isInvalidKey(error: unknown): boolean {
  return error instanceof InvalidKeyError || hasCode(error, 'WF_INVALID_KEY')
}

/**
 * Awaits `call()` and returns what it rejected with. Fails when it resolves, and when it throws
 * synchronously: the contract's methods return promises, callers `await` or `.catch()` them.
 */
export async function rejectionOf(call: () => Promise<unknown>, what: string): Promise<unknown> {
  let promise: Promise<unknown>
  try {
    promise = call()
  } catch (error) {
    throw new Error(`${what} threw synchronously instead of returning a rejected promise`, { cause: error })
  }
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error(`${what} resolved, but it should have rejected`)
}

export async function expectConditionFailed(call: () => Promise<unknown>, what: string): Promise<void> {
  const error = await rejectionOf(call, what)
  expect(isConditionFailed(error), `${what} rejected with ${String(error)}, not ConditionFailedError`).toBe(
    true,
  )
}

export async function expectInvalidKey(call: () => Promise<unknown>, what: string): Promise<void> {
  const error = await rejectionOf(call, what)
  expect(isInvalidKey(error), `${what} rejected with ${String(error)}, not InvalidKeyError`).toBe(true)
}

/**
 * Every key under `prefix`, following `next` until it is absent. Fails on a page longer than
 * `limit`, on keys out of order or repeated across pages, and on a `next` that does not move forward.
 */
export async function listAllPages(
  storage: Storage,
  prefix: string,
  limit?: number,
  start?: string,
): Promise<string[]> {
  const keys: string[] = []
  let after: string | undefined = start
  for (let pages = 0; ; pages++) {
    expect(pages, 'list pages followed without reaching the end').toBeLessThan(100_000)
    const page = await storage.list(prefix, limit === undefined ? { after } : { after, limit })
    if (limit !== undefined) expect(page.keys.length, 'page length').toBeLessThanOrEqual(limit)
    for (const key of page.keys) {
      const previous = keys[keys.length - 1]
      if (previous !== undefined) {
        expect(
          compareKeys(key, previous) > 0,
          `"${key}" listed after "${previous}": not ascending or repeated`,
        ).toBe(true)
      }
      keys.push(key)
    }
    if (page.next === undefined) return keys
    if (after !== undefined) {
      expect(
        compareKeys(page.next, after) > 0,
        `next "${page.next}" does not move past after "${after}"`,
      ).toBe(true)
    }
    after = page.next
  }
}

/** Sorted as the contract orders keys: by UTF-8 bytes (code points), see `compareKeys`. */
export function contractOrder(keys: readonly string[]): string[] {
  return [...keys].sort(compareKeys)
}
