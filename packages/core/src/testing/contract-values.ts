// Contract tests for plain reads and writes: round trips of binary and large values, versions,
// delete and deleteMany, and the key rules every method enforces.

import { describe, expect, it } from 'vitest'
import { MAX_KEY_BYTES } from '../storage/storage.js'
import {
  type ContractContext,
  expectInvalidKey,
  expectSameBytes,
  listAllPages,
  patternBytes,
  text,
  utf8,
} from './support.js'

export function describeValues(ctx: ContractContext): void {
  const { timeoutMs } = ctx

  describe('values', () => {
    it(
      'returns undefined for a key that was never written',
      async () => {
        expect(await ctx.storage().get('missing/key')).toBeUndefined()
      },
      timeoutMs,
    )

    it(
      'round-trips an empty value',
      async () => {
        const storage = ctx.storage()
        await storage.put('empty', new Uint8Array(0))
        const value = await storage.get('empty')
        expectSameBytes(value?.data, new Uint8Array(0))
      },
      timeoutMs,
    )

    it(
      'round-trips all 256 byte values, including bytes that are not valid UTF-8',
      async () => {
        const storage = ctx.storage()
        const all = Uint8Array.from({ length: 512 }, (_, i) => (i < 256 ? i : 511 - i))
        await storage.put('bytes/all', all)
        expectSameBytes((await storage.get('bytes/all'))?.data, all)
      },
      timeoutMs,
    )

    it(
      `round-trips a large value of ${ctx.largeValueBytes} bytes unchanged`,
      async () => {
        const storage = ctx.storage()
        const large = patternBytes(ctx.largeValueBytes, 7)
        await storage.put('large/value', large)
        expectSameBytes((await storage.get('large/value'))?.data, large, 'large value')
      },
      timeoutMs,
    )

    it(
      'stores an empty value given as an array without a backing store (new Uint8Array(new ArrayBuffer(0)))',
      async () => {
        // Node 20's zlib.crc32 returns 0 instead of its seed for such an array: a checksum that
        // chains over the value must skip empty bytes.
        const storage = ctx.storage()
        await storage.put('empty/plain', new Uint8Array(new ArrayBuffer(0)))
        await storage.put('empty/created', new Uint8Array(new ArrayBuffer(0)), { ifAbsent: true })
        expect((await storage.get('empty/plain'))?.data.byteLength).toBe(0)
        expect((await storage.get('empty/created'))?.data.byteLength).toBe(0)
      },
      timeoutMs,
    )

    it(
      'stores exactly the bytes of a Uint8Array view with an offset into a larger buffer',
      async () => {
        const storage = ctx.storage()
        const backing = patternBytes(1000, 3)
        const view = backing.subarray(100, 300)
        await storage.put('view', view)
        expectSameBytes((await storage.get('view'))?.data, backing.slice(100, 300))
      },
      timeoutMs,
    )

    it(
      "stores exactly the bytes of views in conditional puts too, as core writes its records (small Buffers from Node's shared pool)",
      async () => {
        const storage = ctx.storage()
        // Two views side by side in one buffer: a backend that reads past the view's end, or from
        // the start of its buffer, stores its neighbour's bytes.
        const backing = patternBytes(1000, 11)
        const first = backing.subarray(10, 210)
        const second = backing.subarray(210, 460)
        const created = await storage.put('view/conditional', first, { ifAbsent: true })
        expectSameBytes(
          (await storage.get('view/conditional'))?.data,
          backing.slice(10, 210),
          'after ifAbsent',
        )
        await storage.put('view/conditional', second, { ifVersion: created.version })
        expectSameBytes(
          (await storage.get('view/conditional'))?.data,
          backing.slice(210, 460),
          'after ifVersion',
        )
        // What core passes: Buffer.from of a short string is a view into a pool shared by every
        // Buffer of the process, usually at a non-zero offset.
        Buffer.from('shift the pool offset')
        const pooled = Buffer.from('{"v":1,"record":"é"}')
        const expected = Uint8Array.from(pooled)
        await storage.put('view/pooled', pooled, { ifAbsent: true })
        Buffer.from('x'.repeat(64)) // later Buffers fill the pool after it
        expectSameBytes((await storage.get('view/pooled'))?.data, expected, 'pooled Buffer')
      },
      timeoutMs,
    )

    it(
      'keeps its own copy: changing the written or the read array afterwards does not change the stored value',
      async () => {
        const storage = ctx.storage()
        const written = utf8('original')
        await storage.put('copy', written)
        written.fill(0)
        const read = await storage.get('copy')
        read?.data.fill(0)
        expect(text((await storage.get('copy'))?.data ?? new Uint8Array())).toBe('original')
      },
      timeoutMs,
    )

    it(
      'overwrites a value: get returns the last value written',
      async () => {
        const storage = ctx.storage()
        await storage.put('over/write', utf8('first, longer value'))
        await storage.put('over/write', utf8('second'))
        expect(text((await storage.get('over/write'))?.data ?? new Uint8Array())).toBe('second')
      },
      timeoutMs,
    )

    it(
      'returns from put the same version that get returns',
      async () => {
        const storage = ctx.storage()
        const { version } = await storage.put('versioned', utf8('v'))
        expect(typeof version).toBe('string')
        expect(version.length).toBeGreaterThan(0)
        expect((await storage.get('versioned'))?.version).toBe(version)
      },
      timeoutMs,
    )

    it(
      'changes the version on every write, even when the same bytes are written again',
      async () => {
        const storage = ctx.storage()
        const versions: string[] = []
        for (let i = 0; i < 5; i++) {
          const { version } = await storage.put('same/bytes', utf8('identical'))
          expect((await storage.get('same/bytes'))?.version).toBe(version)
          versions.push(version)
        }
        expect(new Set(versions).size).toBe(versions.length)
      },
      timeoutMs,
    )

    it(
      'gives a key written again after a delete a version it never had before',
      async () => {
        const storage = ctx.storage()
        const first = await storage.put('reborn', utf8('same'))
        await storage.delete('reborn')
        const second = await storage.put('reborn', utf8('same'))
        expect(second.version).not.toBe(first.version)
      },
      timeoutMs,
    )
  })

  describe('delete', () => {
    it(
      'removes the key from get and list, and leaves keys that share its prefix',
      async () => {
        const storage = ctx.storage()
        for (const key of ['d/a', 'd/a/b', 'd/ab']) await storage.put(key, utf8(key))
        await storage.delete('d/a')
        expect(await storage.get('d/a')).toBeUndefined()
        expect(await listAllPages(storage, 'd/')).toEqual(['d/a/b', 'd/ab'])
        expect(text((await storage.get('d/a/b'))?.data ?? new Uint8Array())).toBe('d/a/b')
      },
      timeoutMs,
    )

    it(
      'succeeds for a key that does not exist, and when called twice',
      async () => {
        const storage = ctx.storage()
        await storage.delete('never/written')
        await storage.put('twice', utf8('x'))
        await storage.delete('twice')
        await storage.delete('twice')
        expect(await storage.get('twice')).toBeUndefined()
      },
      timeoutMs,
    )

    it(
      'deleteMany (when the backend has it) removes the given keys, ignores missing ones and keeps the rest',
      async (test) => {
        const storage = ctx.storage()
        if (storage.deleteMany === undefined) {
          test.skip('this backend has no deleteMany')
          return
        }
        const keys = Array.from({ length: 30 }, (_, i) => `many/${String(i).padStart(2, '0')}`)
        await Promise.all(keys.map((key) => storage.put(key, utf8(key))))
        await storage.deleteMany([])
        await storage.deleteMany([...keys.slice(0, 20), 'many/missing'])
        expect(await listAllPages(storage, 'many/')).toEqual(keys.slice(20))
        expect(await storage.get('many/00')).toBeUndefined()
      },
      timeoutMs,
    )
  })

  describe('keys', () => {
    const invalidKeys: { label: string; key: string }[] = [
      { label: 'the empty string', key: '' },
      { label: 'a leading slash "/a"', key: '/a' },
      { label: 'a trailing slash "a/"', key: 'a/' },
      { label: 'an empty segment "a//b"', key: 'a//b' },
      { label: '".."', key: '..' },
      { label: 'a ".." segment "a/../b"', key: 'a/../b' },
      { label: 'a "." segment "./a"', key: './a' },
      { label: 'a NUL character', key: 'a\u0000b' },
      { label: 'a newline', key: 'a\nb' },
      { label: `a key longer than MAX_KEY_BYTES (${MAX_KEY_BYTES})`, key: 'k'.repeat(MAX_KEY_BYTES + 1) },
    ]

    it.each(invalidKeys)(
      'get, put and delete reject $label with InvalidKeyError and store nothing',
      async ({ key }) => {
        const storage = ctx.storage()
        await expectInvalidKey(() => storage.get(key), 'get')
        await expectInvalidKey(() => storage.put(key, utf8('x')), 'put')
        await expectInvalidKey(() => storage.put(key, utf8('x'), { ifAbsent: true }), 'put with ifAbsent')
        await expectInvalidKey(() => storage.delete(key), 'delete')
        expect((await storage.list('')).keys).toEqual([])
      },
      timeoutMs,
    )

    it(
      'list rejects an invalid prefix with InvalidKeyError',
      async () => {
        const storage = ctx.storage()
        for (const prefix of ['/', '/a', 'a//', '..', 'a/../', 'a\u0000']) {
          await expectInvalidKey(() => storage.list(prefix), `list(${JSON.stringify(prefix)})`)
        }
      },
      timeoutMs,
    )

    it(
      'accepts a key of exactly MAX_KEY_BYTES bytes of UTF-8',
      async () => {
        const storage = ctx.storage()
        // Segments of at most 100 bytes, so a file-system backend can keep each as a directory name;
        // the last one is two-byte UTF-8, so the limit is counted in bytes, not characters.
        const last = 'é'.repeat(50)
        const segments = Math.floor((MAX_KEY_BYTES - 100) / 100)
        let key = [...Array.from({ length: segments }, () => 's'.repeat(99)), last].join('/')
        key = `${'s'.repeat(MAX_KEY_BYTES - Buffer.byteLength(key))}${key}`
        expect(Buffer.byteLength(key)).toBe(MAX_KEY_BYTES)
        await storage.put(key, utf8('longest'))
        expect(text((await storage.get(key))?.data ?? new Uint8Array())).toBe('longest')
        expect((await storage.list('')).keys).toEqual([key])
      },
      timeoutMs,
    )
  })
}
