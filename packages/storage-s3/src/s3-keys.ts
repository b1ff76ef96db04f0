// How a wf key becomes an S3 object name. The contract lists keys in JavaScript `<` order (UTF-16
// code units) but S3 lists in UTF-8 byte order; the two disagree only between U+E000–U+FFFF and
// characters above U+FFFF. Escaping that BMP range behind U+10FFFF makes S3's order the contract's.

// U+10FFFF sorts after every other character in UTF-8, so escaped U+E000–U+FFFF land after all
// supplementary characters, where UTF-16 puts them. It is a noncharacter, so rare in real keys.
const ESCAPE = '\u{10FFFF}'
// After the escape: '0' for a literal U+10FFFF (the last supplementary character, so before any
// escaped BMP character), else U+E000–U+FFFF shifted to U+0100–U+20FF. The shift keeps their
// order, keeps U+FFFE/U+FFFF (forbidden in XML, hence in S3 listings) out of object names, and
// '0' < U+0100 keeps the whole mapping order-preserving and prefix-free.
const LITERAL_ESCAPE = '0'
const SHIFT = 0xe000 - 0x100
const NEEDS_ESCAPE = /[\ue000-\uffff]|\u{10FFFF}/u

/** The S3 object name (below the storage prefix) of a key. Order-preserving, prefix-preserving. */
export function encodeKey(key: string): string {
  if (!NEEDS_ESCAPE.test(key)) return key
  let out = ''
  for (const char of key) {
    const cp = char.codePointAt(0) as number
    if (cp >= 0xe000 && cp <= 0xffff) out += ESCAPE + String.fromCharCode(cp - SHIFT)
    else if (cp === 0x10ffff) out += ESCAPE + LITERAL_ESCAPE
    else out += char
  }
  return out
}

/** The key of an S3 object name, or `undefined` for a name this package did not write. */
export function decodeKey(name: string): string | undefined {
  if (!name.includes(ESCAPE)) return name
  let out = ''
  let escaped = false
  for (const char of name) {
    if (escaped) {
      const cp = char.codePointAt(0) as number
      if (char === LITERAL_ESCAPE) out += ESCAPE
      else if (cp >= 0x100 && cp <= 0x20ff) out += String.fromCharCode(cp + SHIFT)
      else return undefined
      escaped = false
    } else if (char === ESCAPE) escaped = true
    else out += char
  }
  return escaped ? undefined : out
}
