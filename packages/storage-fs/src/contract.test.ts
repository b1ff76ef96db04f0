// Runs the shared storage conformance suite from @wf/core/testing on real temporary folders (with
// and without fsync) and on memfs, the in-memory filesystem tests inject.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeStorageContract } from '@wf/core/testing'
import { createFileSystemStorage, type FileSystemStorage } from './index.js'
import { memoryFileSystem } from './test-support/memory-file-system.js'

async function tempStorage(durability: 'fsync' | 'journal' | 'none'): Promise<FileSystemStorage> {
  return createFileSystemStorage({ root: await mkdtemp(join(tmpdir(), 'wf-storage-fs-')), durability })
}

const removeRoot = (storage: unknown) =>
  rm((storage as FileSystemStorage).root, { recursive: true, force: true })

describeStorageContract('FileSystemStorage on a temp folder (fsync)', () => tempStorage('fsync'), {
  cleanup: removeRoot,
})
describeStorageContract('FileSystemStorage on a temp folder (journal)', () => tempStorage('journal'), {
  cleanup: async (storage) => {
    await (storage as FileSystemStorage).close()
    await removeRoot(storage)
  },
})
describeStorageContract('FileSystemStorage on memfs with the journal', () =>
  createFileSystemStorage({ root: '/data/wf', fs: memoryFileSystem(), durability: 'journal', bootId: 'b1' }),
)
describeStorageContract('FileSystemStorage on memfs', () =>
  createFileSystemStorage({ root: '/data/wf', fs: memoryFileSystem() }),
)
