import { MemoryStorage } from '@wf/core'

console.log('wf quickstart: engine not landed yet', typeof MemoryStorage)
