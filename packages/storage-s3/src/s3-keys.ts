// How a wf key travels to S3 and back. The object name is the key exactly as given, below the
// prefix: S3 lists in UTF-8 byte order, which is the contract's order (`compareKeys`). Only XML
// needs care: XML 1.0 cannot carry U+FFFE and U+FFFF, which wf keys may hold.

// XML 1.0 allows #x9, #xA, #xD, #x20–#xD7FF, #xE000–#xFFFD and above #xFFFF. validateKey already
// refuses control characters and lone surrogates, so these two are all that is left.
const NOT_IN_XML = /[\ufffe\uffff]/

/**
 * Whether a key can go inside an XML request body (DeleteObjects). RGW answers 400 to the whole
 * batch when one key holds U+FFFE or U+FFFF; such keys are deleted one by one, by URL.
 */
export function fitsInXml(key: string): boolean {
  return !NOT_IN_XML.test(key)
}

/**
 * An object name from a `ListObjectsV2` answer. Listings are asked for with `EncodingType=url`,
 * so that every name survives the XML answer; a server that ignores the parameter says so by
 * leaving `EncodingType` out, and its names are taken as they are. AWS encodes a space as `+`
 * (and `+` as `%2B`), RGW as `%20`: decoding `+` first reads both.
 */
export function decodeListedName(name: string, encodingType: string | undefined): string {
  if (encodingType?.toLowerCase() !== 'url') return name
  return decodeURIComponent(name.replace(/\+/g, ' '))
}
