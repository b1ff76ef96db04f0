// Contract tests for list: the order it returns keys in, `after` and `limit`, pagination over
// thousands of keys, prefixes that are keys themselves, and keys with unusual characters.

import { describe, expect, it } from 'vitest'
import {
  type ContractContext,
  contractOrder,
  listAllPages,
  mapLimit,
  shuffled,
  text,
  utf8,
} from './support.js'

// Slow backends (S3: several ms per request) still create thousands of keys in seconds.
const WRITE_CONCURRENCY = 32

// Characters that URL encoders, shells and file systems treat specially.
const UNUSUAL_KEYS = [
  'u/ünïcødé',
  'u/日本語/キー',
  'u/emoji 😀',
  'u/with space',
  'u/ leading and trailing space ',
  'u/100%',
  'u/%2F',
  'u/a%20b',
  'u/plus+sign',
  'u/dots.in.name',
  'u/.hidden',
  'u/...',
  'u/dash-name',
  'u/under_score',
  'u/tilde~name',
  'u/~',
  'u/equals=and&amp',
  'u/quote\'s "double"',
  'u/(parens)[brackets]{braces}',
  'u/at@hash#dollar$',
  'u/colon:semicolon;comma,',
  'u/question?star*',
]

export function describeList(ctx: ContractContext): void {
  const { timeoutMs } = ctx

  describe('list', () => {
    it(
      'returns an empty page and no next for a prefix nothing starts with, and on an empty storage',
      async () => {
        const storage = ctx.storage()
        expect(await storage.list('')).toEqual({ keys: [] })
        await storage.put('something', utf8('x'))
        expect(await storage.list('nothing/here/')).toEqual({ keys: [] })
        expect(await storage.list('somethinG')).toEqual({ keys: [] })
        expect(await storage.list('something/')).toEqual({ keys: [] })
      },
      timeoutMs,
    )

    it(
      'returns keys in ascending lexicographic order whatever order they were written in',
      async () => {
        const storage = ctx.storage()
        const keys = [
          'o/a',
          'o/A',
          'o/b',
          'o/a/b',
          'o/a-b',
          'o/a.b',
          'o/a_b',
          'o/a~b',
          'o/a b',
          'o/a0',
          'o/a9',
          'o/a10',
          'o/aa',
          'o/0',
          'o/é',
          'o/z',
          'o/日本',
        ]
        for (const key of shuffled(keys)) await storage.put(key, utf8(key))
        expect(await listAllPages(storage, 'o/')).toEqual(contractOrder(keys))
        expect((await storage.list('')).keys).toEqual(contractOrder(keys))
      },
      timeoutMs,
    )

    it(
      'orders by UTF-8 bytes (code points) like S3, so "｡" (U+FF61) comes before "😀" (U+1F600)',
      async () => {
        // JavaScript's < (UTF-16 code units) puts the emoji first: a backend sorting with it
        // disagrees with S3 and file systems, and pagination across them would skip keys.
        const storage = ctx.storage()
        const keys = ['w/\uff61', 'w/😀', 'w/\ue000', 'w/a']
        for (const key of shuffled(keys)) await storage.put(key, utf8(key))
        expect(await listAllPages(storage, 'w/')).toEqual(['w/a', 'w/\ue000', 'w/\uff61', 'w/😀'])
      },
      timeoutMs,
    )

    it(
      'compares `after` with the prefix in code point order too ("\ue000" sorts before "😀")',
      async () => {
        const storage = ctx.storage()
        const keys = ['x/😀', 'x/😀/a', 'x/😀b']
        for (const key of keys) await storage.put(key, utf8(key))
        // In UTF-16 order "x/\ue000" would sort after the prefix and hide every key.
        expect(await listAllPages(storage, 'x/😀', undefined, 'x/\ue000')).toEqual(keys)
      },
      timeoutMs,
    )

    it(
      'returns only keys strictly after `after`, whether or not `after` is itself a key',
      async () => {
        const storage = ctx.storage()
        const keys = Array.from({ length: 10 }, (_, i) => `k/${i}`)
        await Promise.all(keys.map((key) => storage.put(key, utf8(key))))
        await storage.put('j', utf8('before the prefix'))
        await storage.put('l', utf8('after the prefix'))
        expect(await listAllPages(storage, 'k/')).toEqual(keys)
        expect((await storage.list('k/', { after: 'k/4' })).keys).toEqual(keys.slice(5))
        expect((await storage.list('k/', { after: 'k/45' })).keys).toEqual(keys.slice(5))
        expect((await storage.list('k/', { after: 'a' })).keys).toEqual(keys)
        expect((await storage.list('k/', { after: 'k/' })).keys).toEqual(keys)
        expect(await storage.list('k/', { after: 'k/9' })).toEqual({ keys: [] })
        expect(await storage.list('k/', { after: 'z' })).toEqual({ keys: [] })
      },
      timeoutMs,
    )

    it(
      'returns at most `limit` keys and a `next` that continues where the page stopped',
      async () => {
        const storage = ctx.storage()
        const keys = Array.from({ length: 10 }, (_, i) => `n/${i}`)
        await Promise.all(keys.map((key) => storage.put(key, utf8(key))))
        const first = await storage.list('n/', { limit: 3 })
        expect(first.keys.length).toBeLessThanOrEqual(3)
        expect(first.next).toBeDefined()
        expect(keys.slice(0, first.keys.length)).toEqual(first.keys)
        const second = await storage.list('n/', { after: first.next, limit: 3 })
        expect(second.keys.length).toBeLessThanOrEqual(3)
        expect([...first.keys, ...second.keys]).toEqual(keys.slice(0, first.keys.length + second.keys.length))
        expect(await listAllPages(storage, 'n/', 3)).toEqual(keys)
        expect(await listAllPages(storage, 'n/', 1)).toEqual(keys)
        expect(await listAllPages(storage, 'n/', 10)).toEqual(keys)
      },
      timeoutMs,
    )

    it(
      `pages through ${ctx.keyCount} keys by following next until it is absent, with no key repeated or missed`,
      async () => {
        const storage = ctx.storage()
        const width = String(ctx.keyCount).length
        const keys = Array.from({ length: ctx.keyCount }, (_, i) => `many/${String(i).padStart(width, '0')}`)
        // Neighbours on both sides of the prefix must not leak into the listing.
        const outside = ['man', 'many', 'many.', 'manz/0', 'man/0']
        await mapLimit(shuffled([...keys, ...outside]), WRITE_CONCURRENCY, (key) =>
          storage.put(key, utf8(key)),
        )
        expect(await listAllPages(storage, 'many/')).toEqual(keys)
        expect(await listAllPages(storage, 'many/', 97)).toEqual(keys)
        expect(await listAllPages(storage, '')).toEqual(contractOrder([...keys, ...outside]))
      },
      timeoutMs,
    )

    it(
      'treats the prefix as a plain string: a prefix that is itself a key lists it and its siblings',
      async () => {
        const storage = ctx.storage()
        const keys = ['a/b', 'a/b/c', 'a/b/c/d', 'a/bc', 'a/b-', 'a/b.c', 'a/a', 'a/c', 'ab', 'a']
        for (const key of shuffled(keys)) await storage.put(key, utf8(key))
        expect(await listAllPages(storage, 'a/b')).toEqual([
          'a/b',
          'a/b-',
          'a/b.c',
          'a/b/c',
          'a/b/c/d',
          'a/bc',
        ])
        expect(await listAllPages(storage, 'a/b/')).toEqual(['a/b/c', 'a/b/c/d'])
        expect(await listAllPages(storage, 'a/b/c')).toEqual(['a/b/c', 'a/b/c/d'])
        expect(await listAllPages(storage, 'a/')).toEqual(
          contractOrder(keys.filter((k) => k.startsWith('a/'))),
        )
        expect(await listAllPages(storage, 'a')).toEqual(contractOrder(keys))
        expect((await storage.list('a/b', { after: 'a/b' })).keys).toEqual([
          'a/b-',
          'a/b.c',
          'a/b/c',
          'a/b/c/d',
          'a/bc',
        ])
        for (const key of keys) expect(text((await storage.get(key))?.data ?? new Uint8Array())).toBe(key)
      },
      timeoutMs,
    )

    it(
      'stores, reads and lists keys with unicode, ".", "-", "_", "~", spaces, percent signs and punctuation',
      async () => {
        const storage = ctx.storage()
        await mapLimit(UNUSUAL_KEYS, WRITE_CONCURRENCY, (key) => storage.put(key, utf8(key)))
        for (const key of UNUSUAL_KEYS) {
          expect(text((await storage.get(key))?.data ?? new Uint8Array()), key).toBe(key)
        }
        expect(await listAllPages(storage, 'u/')).toEqual(contractOrder(UNUSUAL_KEYS))
        expect(await listAllPages(storage, 'u/a%')).toEqual(['u/a%20b'])
        expect(await listAllPages(storage, 'u/with ')).toEqual(['u/with space'])
        expect(await listAllPages(storage, 'u/日本語/')).toEqual(['u/日本語/キー'])
        // A percent-decoding backend would turn "%2F" into "/" or "a%20b" into "a b".
        expect(await storage.get('u/a b')).toBeUndefined()
        for (const key of UNUSUAL_KEYS) await storage.delete(key)
        expect(await storage.list('u/')).toEqual({ keys: [] })
      },
      timeoutMs,
    )
  })
}
