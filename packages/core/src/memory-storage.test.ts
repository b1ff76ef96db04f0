// MemoryStorage is the reference backend: it must pass the whole storage contract.

import { MemoryStorage } from './memory-storage.js'
import { describeStorageContract } from './testing/index.js'

describeStorageContract('MemoryStorage', () => new MemoryStorage())
