// MemoryStorage is the reference backend: it must pass the whole storage contract.

import { describeStorageContract } from '../testing/index.js'
import { MemoryStorage } from './memory-storage.js'

describeStorageContract('MemoryStorage', () => new MemoryStorage())
