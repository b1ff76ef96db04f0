// The key-to-path mapping must be one-to-one and keep every name portable and inside the root.

import { describe, expect, it } from 'vitest'
import { decodePiece, encodePiece, keyToParts, MAX_PIECE_CHARS, parseName } from './key-path.js'

function randomSegment(seed: number): string {
  const alphabet = ['a', 'Z', '0', '.', '-', '_', '~', '+', '%', ' ', ':', 'é', '日', '😀', '\u00a0', '*']
  let x = seed
  let out = ''
  const length = 1 + (seed % 40)
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff
    out += alphabet[x % alphabet.length]
  }
  return out
}

describe('key to path mapping', () => {
  it('round-trips 2 000 random segments and never produces a name starting with "." or holding a marker', () => {
    for (let seed = 1; seed <= 2000; seed++) {
      const segment = randomSegment(seed)
      const name = encodePiece(segment)
      expect(decodePiece(name)).toBe(segment)
      expect(name.startsWith('.')).toBe(false)
      expect(name.endsWith('.')).toBe(false)
      expect(name).toMatch(/^[A-Za-z0-9._%-]+$/)
    }
  })

  it('maps different keys to different paths', () => {
    const keys = ['a', 'a~', 'a+', 'a/b', 'a%7E', '.a', '%2Ea', 'A', 'a.', 'a..b']
    const paths = keys.map((key) => keyToParts(key).join('/'))
    expect(new Set(paths).size).toBe(keys.length)
  })

  it('refuses names that are not the canonical spelling of a key', () => {
    expect(decodePiece('%2e')).toBeUndefined() // lowercase hex
    expect(decodePiece('%41')).toBeUndefined() // "A" needs no encoding
    expect(decodePiece('%C3')).toBeUndefined() // cut UTF-8
    expect(decodePiece('.a')).toBeUndefined()
    expect(parseName('.tmp.1.2.3.4')).toBeUndefined()
    expect(parseName('.lk.a~')).toBeUndefined()
  })

  it('keeps every file name short enough for NAME_MAX, however long the segment', () => {
    for (const segment of ['x'.repeat(900), '😀'.repeat(225), `.${'.'.repeat(400)}`]) {
      const parts = keyToParts(segment)
      expect(parts.length).toBeGreaterThan(1)
      for (const part of parts) expect(part.length).toBeLessThanOrEqual(MAX_PIECE_CHARS + 1)
    }
  })
})
