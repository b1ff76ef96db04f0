// MemoryStorage is the reference backend: it must pass the whole storage contract.

import { describe, expect, it, vi } from 'vitest'
import { describeStorageContract } from '../testing/index.js'
import { MemoryStorage } from './memory-storage.js'

describeStorageContract('MemoryStorage', () => new MemoryStorage())

describe('MemoryStorage listings between writes', () => {
  const put = (storage: MemoryStorage, key: string) => storage.put(key, new Uint8Array([1]))
  const listAll = async (storage: MemoryStorage, prefix = '') => (await storage.list(prefix)).keys

  it('lists a few keys created after a listing in their place among the keys listed before', async () => {
    const storage = new MemoryStorage()
    for (let i = 0; i < 100; i++) await put(storage, `steps/${String(i).padStart(3, '0')}`)
    expect(await listAll(storage)).toHaveLength(100)
    await put(storage, 'runners/r1')
    await put(storage, 'steps/050a')
    await put(storage, 'zeta')
    const keys = await listAll(storage)
    expect(keys).toEqual([...keys].sort())
    expect(keys).toHaveLength(103)
    expect(keys.slice(0, 1)).toEqual(['runners/r1'])
    expect(keys.indexOf('steps/050a')).toBe(keys.indexOf('steps/050') + 1)
    expect(await listAll(storage, 'runners/')).toEqual(['runners/r1'])
  })

  it('does not sort every key again to list after a few new keys (a runner record among many steps)', async () => {
    const storage = new MemoryStorage()
    for (let i = 0; i < 1000; i++) await put(storage, `steps/${i}`)
    await listAll(storage)
    await put(storage, 'runners/r1')
    const sort = vi.spyOn(Array.prototype, 'sort')
    try {
      expect(await listAll(storage, 'runners/')).toEqual(['runners/r1'])
      const sorted = sort.mock.contexts.map((array) => (array as unknown[]).length)
      expect(Math.max(0, ...sorted)).toBeLessThanOrEqual(1)
    } finally {
      sort.mockRestore()
    }
  })

  it('lists many keys created after a listing in order, and pages through them', async () => {
    const storage = new MemoryStorage()
    for (let i = 0; i < 50; i += 2) await put(storage, `k/${String(i).padStart(2, '0')}`)
    await listAll(storage)
    // More new keys than the few put in place one by one: merged in one pass.
    for (let i = 49; i > 0; i -= 2) await put(storage, `k/${String(i).padStart(2, '0')}`)
    const expected = Array.from({ length: 50 }, (_, i) => `k/${String(i).padStart(2, '0')}`)
    expect(await listAll(storage)).toEqual(expected)
    const first = await storage.list('k/', { limit: 20 })
    await put(storage, 'k/50')
    const rest = await storage.list('k/', { after: first.next })
    expect([...first.keys, ...rest.keys]).toEqual([...expected, 'k/50'])
  })

  it('leaves out a key deleted after a listing, and keeps order for keys created after the delete', async () => {
    const storage = new MemoryStorage()
    for (const key of ['a', 'c', 'e']) await put(storage, key)
    await listAll(storage)
    await put(storage, 'd')
    await storage.delete('c')
    await put(storage, 'b')
    expect(await listAll(storage)).toEqual(['a', 'b', 'd', 'e'])
    await put(storage, 'c')
    await storage.delete('b')
    expect(await listAll(storage)).toEqual(['a', 'c', 'd', 'e'])
  })

  it('orders keys created after a listing by code point, as the contract says (surrogates above U+E000–U+FFFF)', async () => {
    const storage = new MemoryStorage()
    await put(storage, 'x/\uffff')
    await listAll(storage)
    await put(storage, 'x/\u{1f600}')
    await put(storage, 'x/\ue000')
    expect(await listAll(storage, 'x/')).toEqual(['x/\ue000', 'x/\uffff', 'x/\u{1f600}'])
  })
})

describe('MemoryStorage values kept as bytes', () => {
  it('keeps its own copy of a large Buffer, so changing the Buffer after put changes nothing stored', async () => {
    const storage = new MemoryStorage()
    const data = Buffer.alloc(100_000, 1)
    await storage.put('blob', data)
    data.fill(2)
    const back = await storage.get('blob')
    expect(back?.data.every((b) => b === 1)).toBe(true)
  })
})
