export const placeholder = 'storage-fs'
