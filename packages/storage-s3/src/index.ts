// @wf/storage-s3: wf storage in an S3 bucket (AWS S3 or an S3-compatible store that enforces
// conditional PUTs). The public API.

export type { S3StorageOptions } from './options.js'
export { DEFAULT_MAX_SINGLE_PUT_BYTES } from './options.js'
export { createS3Storage, S3Storage } from './s3-storage.js'
export { fromUri, parseS3Uri } from './uri.js'
