// The key rules core enforces before a key reaches any backend.

import { describe, expect, it } from 'vitest'
import { InvalidKeyError } from '../errors.js'
import { MAX_KEY_BYTES, validateKey, validatePrefix } from './storage.js'

function reasonFor(check: () => void): InvalidKeyError {
  try {
    check()
  } catch (error) {
    if (error instanceof InvalidKeyError) return error
    throw error
  }
  throw new Error('expected an InvalidKeyError, but the check passed')
}

describe('validateKey', () => {
  it.each([
    'a',
    'workflows/wf-1/steps/fetch',
    'a/b/c/d/e/f',
    '...',
    '.hidden/a..b/c.',
    'with space/100%/a%2Fb/plus+sign/tilde~/under_score',
    'ünïcødé/日本語/😀',
    'x'.repeat(MAX_KEY_BYTES),
    'é'.repeat(MAX_KEY_BYTES / 2),
    '日'.repeat(MAX_KEY_BYTES / 3),
  ])('accepts %j', (key) => {
    expect(() => validateKey(key)).not.toThrow()
  })

  it.each([
    ['the empty string', ''],
    ['a leading slash', '/a'],
    ['a trailing slash', 'a/'],
    ['a lone slash', '/'],
    ['an empty segment', 'a//b'],
    ['a ".." key', '..'],
    ['a "." key', '.'],
    ['a ".." segment', 'a/../b'],
    ['a "." segment', 'a/./b'],
    ['a leading "." segment', './a'],
    ['a trailing ".." segment', 'a/..'],
    ['a NUL', 'a\u0000b'],
    ['a newline', 'a\nb'],
    ['a tab', 'a\tb'],
    ['a DEL', 'a\u007fb'],
    ['a C1 control character', 'a\u0085b'],
    ['a lone high surrogate', 'a\ud83d'],
    ['a lone low surrogate', 'a\ude00b'],
    ['a high surrogate followed by a non-surrogate', '\ud83dx'],
    ['a backslash', 'a\\b'],
    ['one byte over MAX_KEY_BYTES', 'x'.repeat(MAX_KEY_BYTES + 1)],
    [
      'multi-byte characters over MAX_KEY_BYTES in UTF-8 but not in length',
      'é'.repeat(MAX_KEY_BYTES / 2 + 1),
    ],
  ])('rejects %s with InvalidKeyError', (_, key) => {
    const error = reasonFor(() => validateKey(key))
    expect(error.code).toBe('WF_INVALID_KEY')
    expect(error.key).toBe(key)
  })

  it('rejects a non-string with InvalidKeyError', () => {
    const notAString: unknown = 42
    expect(() => validateKey(notAString as string)).toThrow(InvalidKeyError)
  })

  it('says why in the message', () => {
    expect(reasonFor(() => validateKey('a//b')).message).toMatch(/empty segments/)
    expect(reasonFor(() => validateKey('x'.repeat(MAX_KEY_BYTES + 1))).message).toMatch(String(MAX_KEY_BYTES))
  })

  it.each([
    [
      'the byte limit before anything else',
      `${'x'.repeat(MAX_KEY_BYTES)}/\u0000`,
      new RegExp(`at most ${MAX_KEY_BYTES} bytes`),
    ],
    ['a control character before a backslash', 'a\\b/\u0001', /control characters/],
    ['a lone surrogate before an empty segment', 'a//\ud800', /lone surrogates/],
    ['a backslash before an empty segment', 'a//b\\', /backslashes/],
    ['a backslash before a ".." segment', '../b\\', /backslashes/],
    ['the first bad segment: empty', 'a//../b', /empty segments/],
    ['the first bad segment: ".."', 'a/../b//', /"\." and "\.\." segments/],
  ])('reports %s when a key has several faults', (_, key, message) => {
    expect(reasonFor(() => validateKey(key)).message).toMatch(message)
  })
})

describe('validatePrefix', () => {
  it.each(['', 'a', 'a/', 'a/b', 'a/b/', 'workflows/wf-', '日本/', 'a.'])('accepts %j', (prefix) => {
    expect(() => validatePrefix(prefix)).not.toThrow()
  })

  it.each([
    ['a lone slash', '/'],
    ['a leading slash', '/a'],
    ['two trailing slashes', 'a//'],
    ['an empty segment', 'a//b/'],
    ['a ".." segment', '../'],
    ['a ".." prefix', '..'],
    ['a "." segment before the trailing slash', 'a/./'],
    ['a control character', 'a\u0000'],
    ['a backslash', 'a\\'],
    ['more than MAX_KEY_BYTES before the trailing slash', `${'x'.repeat(MAX_KEY_BYTES + 1)}/`],
  ])('rejects %s with InvalidKeyError', (_, prefix) => {
    expect(() => validatePrefix(prefix)).toThrow(InvalidKeyError)
  })

  it('rejects a non-string with InvalidKeyError', () => {
    const notAString: unknown = undefined
    expect(() => validatePrefix(notAString as string)).toThrow(InvalidKeyError)
  })
})
