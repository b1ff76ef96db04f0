// The storages the benchmark runs on, opened inside a worker process from plain options (a folder,
// an S3 prefix), plus a counter of what each scenario writes.
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

/** Name → label in the tables. `fs-fsync-before` exists only with `--compare-fs=<dist/index.js>`. */
export const BACKEND_LABELS = {
  memory: 'memory',
  'fs-fsync': 'folder, fsync',
  'fs-fsync-before': 'folder, fsync (before)',
  'fs-journal': 'folder, journal',
  'fs-none': 'folder, no fsync',
  s3: 'S3 (Ceph RGW)',
  's3-20ms': 'S3 (Ceph RGW) + 20 ms per request',
}

/** Milliseconds `s3-20ms` adds before each request: a round trip to a distant region. */
const S3_ADDED_LATENCY_MS = 20

/** The S3 settings from the environment, or undefined when no gateway is configured. */
export function s3FromEnv() {
  // Not a turbo task: `pnpm bench` runs node directly, so turbo.json need not list these.
  const { WF_S3_ENDPOINT: endpoint, WF_S3_ACCESS_KEY_ID: id, WF_S3_SECRET_ACCESS_KEY: secret } = process.env
  if (!endpoint) return undefined
  return { endpoint, credentials: { accessKeyId: id ?? 'S3RVER', secretAccessKey: secret ?? 'S3RVER' } }
}

/** `@aws-sdk/client-s3`, from storage-s3's dependencies (the root does not depend on it). */
export async function importS3Client(root) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
  const require = createRequire(join(root, 'packages/storage-s3/package.json'))
  return import(pathToFileURL(require.resolve('@aws-sdk/client-s3')).href)
}

/**
 * Opens backend `name`. `where` holds `dir` (a folder of its own, for folder backends), and for S3
 * `s3` (endpoint, credentials), `bucket` and `prefix`.
 */
export async function openBackend(root, name, where) {
  const core = await import(join(root, 'packages/core/dist/index.js'))
  if (name === 'memory') return new core.MemoryStorage()
  if (name === 'fs-fsync' || name === 'fs-none' || name === 'fs-journal' || name === 'fs-fsync-before') {
    fs.mkdirSync(where.dir, { recursive: true })
    const entry =
      name === 'fs-fsync-before' ? where.compareFs : join(root, 'packages/storage-fs/dist/index.js')
    const { createFileSystemStorage } = await import(pathToFileURL(entry).href)
    return createFileSystemStorage({
      root: where.dir,
      durability: name === 'fs-none' ? 'none' : name === 'fs-journal' ? 'journal' : 'fsync',
      fs: syncCountingFs(where.syncs),
    })
  }
  if (name === 's3-20ms') return withLatency(await openBackend(root, 's3', where), S3_ADDED_LATENCY_MS)
  if (name === 's3') {
    const { createS3Storage } = await import(join(root, 'packages/storage-s3/dist/index.js'))
    const storage = createS3Storage({
      bucket: where.bucket,
      prefix: where.prefix,
      endpoint: where.s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: where.s3.credentials,
    })
    await storage.probe() // its five requests once, outside the measured part
    return storage
  }
  throw new Error(`unknown backend ${name}`)
}

/** `storage` with `ms` added before each of its requests (the real server answers them). */
function withLatency(storage, ms) {
  const later =
    (call) =>
    async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, ms))
      return call(...args)
    }
  return {
    get: later((key) => storage.get(key)),
    put: later((key, data, condition) => storage.put(key, data, condition)),
    delete: later((key) => storage.delete(key)),
    deleteMany: later((keys) => storage.deleteMany(keys)),
    list: later((prefix, options) => storage.list(prefix, options)),
    close: () => storage.close(),
  }
}

/**
 * `node:fs/promises` in the shape storage-fs takes (its `fs` option), counting the fdatasyncs of
 * files (and the writes to files opened with O_DSYNC) and the fsyncs (of folders: storage-fs fsyncs
 * nothing else) into `syncs`.
 */
function syncCountingFs(syncs) {
  return {
    async open(path, flags, mode) {
      const handle = await fsp.open(path, flags, mode)
      const { sync, datasync } = handle
      handle.sync = () => {
        syncs.folder++
        return sync.call(handle)
      }
      handle.datasync = () => {
        syncs.file++
        return datasync.call(handle)
      }
      // A file opened with O_DSYNC (the journal's segments) syncs on every write: count those.
      if (typeof flags === 'number' && (flags & fs.constants.O_DSYNC) !== 0) {
        const { write, writev } = handle
        handle.write = (...args) => {
          syncs.file++
          return write.apply(handle, args)
        }
        handle.writev = (...args) => {
          syncs.file++
          return writev.apply(handle, args)
        }
      }
      return handle
    },
    readFile: (path) => fsp.readFile(path),
    rename: fsp.rename,
    link: fsp.link,
    symlink: (target, path) => fsp.symlink(target, path),
    readlink: (path) => fsp.readlink(path),
    unlink: fsp.unlink,
    mkdir: (path) => fsp.mkdir(path),
    rmdir: (path) => fsp.rmdir(path),
    readdir: (path) => fsp.readdir(path),
    stat: (path) => fsp.stat(path),
    lstat: (path) => fsp.lstat(path),
    // The journal's synchronous fast path (no syncs go through it).
    sync: fs,
  }
}

/**
 * Wraps `storage.put`, `storage.putStaged` (a write too: pipelined records, and blobs on the
 * folder) and `storage.delete` to count writes and bytes; `reset()` zeroes them.
 */
export function countWrites(storage, syncs) {
  const stats = { puts: 0, deletes: 0, bytes: 0 }
  const put = storage.put.bind(storage)
  const del = storage.delete.bind(storage)
  storage.put = (key, data, condition) => {
    stats.puts++
    stats.bytes += data.byteLength
    return put(key, data, condition)
  }
  if (storage.putStaged !== undefined) {
    const putStaged = storage.putStaged.bind(storage)
    storage.putStaged = (key, data, condition) => {
      stats.puts++
      stats.bytes += data.byteLength
      return putStaged(key, data, condition)
    }
  }
  storage.delete = (key) => {
    stats.deletes++
    return del(key)
  }
  return {
    stats,
    reset() {
      stats.puts = 0
      stats.deletes = 0
      stats.bytes = 0
      syncs.file = 0
      syncs.folder = 0
    },
  }
}
