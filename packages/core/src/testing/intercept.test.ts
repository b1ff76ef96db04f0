// interceptStorage: the one storage wrapper of wf's tests (and of anyone's, from @wf/core/testing).
import { describe, expect, it } from 'vitest'
import {
  ConditionFailedError,
  InvalidOptionsError,
  MemoryStorage,
  type Storage,
  StorageUnavailableError,
} from '../index.js'
import { interceptStorage, type StorageHooks } from './index.js'

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array | undefined) =>
  data === undefined ? undefined : new TextDecoder().decode(data)

/** `inner`'s four required methods alone: a storage without the optional deleteMany and close. */
const withoutDeleteMany = (inner: MemoryStorage): Storage => ({
  get: (key) => inner.get(key),
  put: (key, data, condition) => inner.put(key, data, condition),
  delete: (key) => inner.delete(key),
  list: (prefix, options) => inner.list(prefix, options),
})

describe('interceptStorage', () => {
  it('passes every call it does not wrap through to the inner storage, deleteMany and close included', async () => {
    const inner = new MemoryStorage()
    let closed = 0
    Object.assign(inner, { close: async () => void closed++ })
    const storage = interceptStorage(inner, {})
    const { version } = await storage.put('a/1', bytes('one'))
    await storage.put('a/2', bytes('two'))
    await storage.put('a/3', bytes('three'))
    await expect(storage.put('a/1', bytes('again'), { ifAbsent: true })).rejects.toBeInstanceOf(
      ConditionFailedError,
    )
    expect(text((await inner.get('a/1'))?.data)).toBe('one')
    expect(await storage.get('a/1')).toMatchObject({ version })
    expect(await storage.list('a/', { limit: 2 })).toEqual({ keys: ['a/1', 'a/2'], next: 'a/2' })
    await storage.delete('a/1')
    await storage.deleteMany?.(['a/2'])
    expect((await inner.list('a/')).keys).toEqual(['a/3'])
    await storage.close?.()
    expect(closed).toBe(1)
  })

  it('calls a hook instead of its method with the inner method and the arguments, and gives back what the hook returns', async () => {
    const inner = new MemoryStorage()
    await inner.put('k', bytes('stored'))
    const seen: string[] = []
    const storage = interceptStorage(inner, {
      get: async (next, key) => {
        seen.push(`get ${key}`)
        const value = await next(key)
        return value && { ...value, data: bytes(`${text(value.data)}, seen`) }
      },
      put: async (next, key, data, condition) => {
        if (key === 'down') throw new StorageUnavailableError('injected')
        seen.push(`put ${key} ${JSON.stringify(condition)}`)
        return next(key, data, condition)
      },
      list: (next, prefix, options) => {
        seen.push(`list ${prefix} ${options?.limit}`)
        return next(prefix, options)
      },
    })
    expect(text((await storage.get('k'))?.data)).toBe('stored, seen')
    await storage.put('j', bytes('new'), { ifAbsent: true })
    await expect(storage.put('down', bytes('x'))).rejects.toBeInstanceOf(StorageUnavailableError)
    expect((await storage.list('', { limit: 5 })).keys).toEqual(['j', 'k'])
    expect(seen).toEqual(['get k', 'put j {"ifAbsent":true}', 'list  5'])
    expect(await inner.get('down')).toBeUndefined()
  })

  it('has deleteMany only when the inner storage has it', () => {
    const inner = new MemoryStorage()
    expect(interceptStorage(inner, {}).deleteMany).toBeTypeOf('function')
    expect(interceptStorage(withoutDeleteMany(inner), {}).deleteMany).toBeUndefined()
  })

  it('refuses with InvalidOptionsError what is not a storage, a hook that is not a function or wraps no storage method, and a deleteMany hook on a storage without it', () => {
    const inner = new MemoryStorage()
    const partial = { get: inner.get.bind(inner), put: inner.put.bind(inner) } as unknown as Storage
    const refused = (run: () => unknown, message: RegExp) => {
      expect(run).toThrow(InvalidOptionsError)
      expect(run).toThrow(message)
    }
    refused(
      () => interceptStorage(undefined as unknown as Storage, {}),
      /has no get, put, delete, list method/,
    )
    refused(() => interceptStorage(partial, {}), /has no delete, list method/)
    refused(() => interceptStorage(inner, null as unknown as StorageHooks), /hooks must be an object/)
    refused(
      () => interceptStorage(inner, { close: () => {} } as unknown as StorageHooks),
      /hooks\.close is not/,
    )
    refused(
      () => interceptStorage(inner, { get: 'no' } as unknown as StorageHooks),
      /hooks\.get must be a function/,
    )
    refused(
      () => interceptStorage(withoutDeleteMany(inner), { deleteMany: (next, keys) => next(keys) }),
      /hooks\.deleteMany wraps/,
    )
  })
})
