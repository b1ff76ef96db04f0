// The key range `list(prefix)` reads: `key >= prefix AND key < prefixUpperBound(prefix)`. SQLite's
// default BINARY collation compares TEXT by its UTF-8 bytes, which is code point order: exactly
// `compareKeys` from @wf/core, so `ORDER BY key` needs no collation. Writing this example showed
// that every range-scanning backend needs the bound, so @wf/core exports it now.

export { prefixUpperBound } from '@wf/core'
