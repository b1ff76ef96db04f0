export const placeholder = 'storage-s3'
