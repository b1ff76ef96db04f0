// Maps storage keys to relative paths under the root and back. Every key maps to exactly one
// path and every path we write decodes to exactly one key, so listings never show duplicates
// and no key can name a file outside the root or collide with an internal file.

/**
 * Longest file-name component we produce, in characters (all ASCII). NAME_MAX is 255 bytes on
 * common filesystems; internal names add a short prefix and a one-character marker.
 */
export const MAX_PIECE_CHARS = 200

/** Suffix of the file that holds a key's value. `~` never appears in an encoded piece. */
export const VALUE_SUFFIX = '~'
/** Suffix of a folder that continues a segment too long for one file name. */
export const CONTINUATION_SUFFIX = '+'

// Characters kept as they are. Anything else (including '%', '~', '+', ':' and every non-ASCII
// character, as UTF-8 bytes) is percent-encoded, so names are portable, case- and
// normalization-proof for non-ASCII, and the markers above cannot occur inside a piece.
function isSafe(code: number): boolean {
  return (
    (code >= 0x30 && code <= 0x39) || // 0-9
    (code >= 0x41 && code <= 0x5a) || // A-Z
    (code >= 0x61 && code <= 0x7a) || // a-z
    code === 0x2d || // -
    code === 0x5f || // _
    code === 0x2e // . (not first or last: see encodePiece)
  )
}

const utf8 = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

function percentEncode(char: string): string {
  let out = ''
  for (const byte of utf8.encode(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  return out
}

/**
 * Encodes one piece of a segment as a file name. A leading '.' is encoded so that names starting
 * with '.' stay reserved for internal files (temp files, locks); a trailing '.' is encoded
 * because Windows drops it.
 */
export function encodePiece(piece: string): string {
  let out = ''
  let i = 0
  for (const char of piece) {
    const code = char.charCodeAt(0)
    const edgeDot = code === 0x2e && (i === 0 || i + char.length === piece.length)
    out += char.length === 1 && isSafe(code) && !edgeDot ? char : percentEncode(char)
    i += char.length
  }
  return out
}

/** Splits a segment into pieces whose encoded form fits in a file name (greedy, by code point). */
function encodeSegment(segment: string): string[] {
  const whole = encodePiece(segment)
  if (whole.length <= MAX_PIECE_CHARS) return [whole]
  const pieces: string[] = []
  let piece = ''
  let encodedLength = 0
  for (const char of segment) {
    // Length inside a piece; the 4 spare characters leave room for an encoded '.' at either end.
    const charLength = encodePiece(`x${char}x`).length - 2
    if (piece !== '' && encodedLength + charLength + 4 > MAX_PIECE_CHARS) {
      pieces.push(piece)
      piece = ''
      encodedLength = 0
    }
    piece += char
    encodedLength += charLength
  }
  pieces.push(piece)
  return pieces.map(encodePiece)
}

/** Decodes a piece; `undefined` when the name is not one we would have written (a foreign file). */
export function decodePiece(name: string): string | undefined {
  if (name === '') return undefined
  let decoded: string
  try {
    if (!name.includes('%')) decoded = name
    else {
      const bytes: number[] = []
      for (let i = 0; i < name.length; i++) {
        if (name[i] === '%') {
          const hex = name.slice(i + 1, i + 3)
          if (!/^[0-9A-F]{2}$/.test(hex)) return undefined
          bytes.push(Number.parseInt(hex, 16))
          i += 2
        } else bytes.push(name.charCodeAt(i))
      }
      decoded = strictUtf8.decode(new Uint8Array(bytes))
    }
  } catch {
    return undefined
  }
  // Only the canonical spelling is ours: this keeps the mapping one-to-one.
  return encodePiece(decoded) === name ? decoded : undefined
}

/** Folder names for one segment that is not the last one of a key. */
export function segmentFolderNames(segment: string): string[] {
  const pieces = encodeSegment(segment)
  return pieces.map((p, i) => (i < pieces.length - 1 ? p + CONTINUATION_SUFFIX : p))
}

/**
 * The path components of a key's value file, relative to the root: folders, then the file name.
 * The key must already be valid (`validateKey`), so no component is empty, '.' or '..'.
 */
export function keyToParts(key: string): string[] {
  const segments = key.split('/')
  const parts: string[] = []
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s] as string
    if (s < segments.length - 1) parts.push(...segmentFolderNames(segment))
    else {
      const pieces = encodeSegment(segment)
      for (let i = 0; i < pieces.length - 1; i++) parts.push((pieces[i] as string) + CONTINUATION_SUFFIX)
      parts.push((pieces[pieces.length - 1] as string) + VALUE_SUFFIX)
    }
  }
  return parts
}

/** What a name found in a folder stands for. */
export type DirectoryEntry =
  | { kind: 'value'; name: string; text: string }
  | { kind: 'folder'; name: string; text: string }
  | { kind: 'continuation'; name: string; text: string }

/** Classifies a name found on disk; `undefined` for internal files (leading '.') and foreign names. */
export function parseName(name: string): DirectoryEntry | undefined {
  if (name.startsWith('.')) return undefined
  if (name.endsWith(VALUE_SUFFIX)) {
    const text = decodePiece(name.slice(0, -1))
    return text === undefined ? undefined : { kind: 'value', name, text }
  }
  if (name.endsWith(CONTINUATION_SUFFIX)) {
    const text = decodePiece(name.slice(0, -1))
    return text === undefined ? undefined : { kind: 'continuation', name, text }
  }
  const text = decodePiece(name)
  return text === undefined ? undefined : { kind: 'folder', name, text }
}
