// @wf/core: durable workflows for TypeScript. The public API.

export * from './errors.js'
export { MemoryStorage } from './memory-storage.js'
export type { ListOptions, ListPage, PutCondition, Storage, StoredValue } from './storage.js'
export { MAX_KEY_BYTES, validateKey, validatePrefix } from './storage.js'
