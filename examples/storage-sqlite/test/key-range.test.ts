// prefixUpperBound: the exclusive end of the key range `list(prefix)` reads. For every key, being
// in [prefix, upperBound) in code point order must be the same as starting with the prefix.

import { compareKeys } from '@wf/core'
import { describe, expect, it } from 'vitest'
import { prefixUpperBound } from '../src/key-range.js'

describe('prefixUpperBound', () => {
  it.each([
    ['workflows/', 'workflows0'],
    ['a', 'b'],
    ['日本', '日札'],
    ['x\ud7ff', 'x\ue000'], // U+D7FF + 1 would be a surrogate: skip to U+E000
    ['x\uffff', 'x\u{10000}'],
    ['x😀', 'x😁'],
    ['x\u{10ffff}', 'y'], // U+10FFFF has no successor: bump the code point before it
    ['\u{10ffff}\u{10ffff}', undefined],
    ['', undefined],
  ])('bounds %j by %j', (prefix, bound) => {
    expect(prefixUpperBound(prefix)).toBe(bound)
  })

  it('puts in [prefix, bound) exactly the keys that start with the prefix, in compareKeys order', () => {
    const alphabet = ['a', 'b', '/', '\ud7ff', '\ue000', '\uffff', '😀', '\u{10ffff}']
    const strings = ['']
    for (let length = 1; length <= 3; length++) {
      for (const s of strings.filter((x) => Array.from(x).length === length - 1)) {
        for (const c of alphabet) strings.push(s + c)
      }
    }
    for (const prefix of strings.filter((s) => s !== '' && Array.from(s).length <= 2)) {
      const bound = prefixUpperBound(prefix)
      for (const key of strings) {
        const inRange = compareKeys(key, prefix) >= 0 && (bound === undefined || compareKeys(key, bound) < 0)
        expect(inRange, `${JSON.stringify(key)} against prefix ${JSON.stringify(prefix)}`).toBe(
          key.startsWith(prefix),
        )
      }
    }
  })
})
