// Lists keys by walking the folders in key order, so a page reads only the folders it needs and
// stops once it has `limit` keys. Folder names sort differently from keys (percent-encoding), so
// each folder's entries are decoded and sorted by the keys they stand for (see compareKeys).

import { join } from 'node:path'
import { compareKeys, type ListOptions, type ListPage } from '@wf/core'
import type { FileSystem } from './file-system.js'
import { errnoOf, unavailable } from './fs-errors.js'
import { keyToParts, parseName, segmentFolderNames } from './key-path.js'

interface Walk {
  fs: FileSystem
  prefix: string
  after: string | undefined
  /** Stop once this many keys are collected. */
  budget: number
}

/**
 * An entry of a folder with the keys it covers: a value file covers exactly `sortKey`; a folder
 * covers keys starting with `sortKey` (its text plus '/'); a continuation folder covers keys
 * strictly longer than `sortKey` (the segment goes on in the next folder level).
 */
interface Entry {
  kind: 'value' | 'folder' | 'continuation'
  name: string
  sortKey: string
}

export async function listKeys(
  fs: FileSystem,
  root: string,
  prefix: string,
  options: ListOptions,
): Promise<ListPage> {
  const limit = options.limit ?? Number.POSITIVE_INFINITY
  if (limit <= 0) return { keys: [] }
  // Start in the folder of the prefix's complete segments: 'a/b/c' starts in a/b, matching c*.
  const slash = prefix.lastIndexOf('/')
  const base = prefix.slice(0, slash + 1)
  const baseParts = base === '' ? [] : base.slice(0, -1).split('/').flatMap(segmentFolderNames)
  const walk: Walk = { fs, prefix, after: options.after, budget: limit + 1 }
  const keys: string[] = []
  await walkFolder(walk, join(root, ...baseParts), baseParts, base, keys)
  if (keys.length <= limit) return { keys }
  const page = keys.slice(0, limit)
  return { keys: page, next: page[page.length - 1] as string }
}

// A value file is listed only if the key's canonical path is the path it was found at: a file
// dropped by hand under another spelling must not show up as a second copy of a key.
function isCanonical(key: string, parts: string[], name: string): boolean {
  const expected = keyToParts(key)
  if (expected.length !== parts.length + 1 || expected[parts.length] !== name) return false
  return parts.every((part, i) => expected[i] === part)
}

async function walkFolder(
  walk: Walk,
  path: string,
  parts: string[],
  keyPrefix: string,
  out: string[],
): Promise<void> {
  let names: string[]
  try {
    names = await walk.fs.readdir(path)
  } catch (error) {
    const code = errnoOf(error)
    // A missing folder is an empty listing; ENOTDIR is a foreign file where we expect a folder.
    if (code === 'ENOENT' || code === 'ENOTDIR') return
    throw unavailable(error, 'listing', path)
  }
  const { prefix, after } = walk
  const entries: Entry[] = []
  for (const name of names) {
    const parsed = parseName(name)
    if (parsed === undefined) continue
    const text = keyPrefix + parsed.text
    if (parsed.kind === 'value') {
      if (text.startsWith(prefix) && (after === undefined || compareKeys(text, after) > 0)) {
        entries.push({ kind: 'value', name, sortKey: text })
      }
      continue
    }
    const covers = parsed.kind === 'folder' ? `${text}/` : text
    if (!covers.startsWith(prefix) && !prefix.startsWith(covers)) continue
    // Every key under `covers` is below `after` unless `after` itself starts with `covers`.
    if (after !== undefined && compareKeys(covers, after) < 0 && !after.startsWith(covers)) continue
    entries.push({ kind: parsed.kind, name, sortKey: covers })
  }
  entries.sort((a, b) => compareKeys(a.sortKey, b.sortKey))

  for (let i = 0; i < entries.length && out.length < walk.budget; i++) {
    const entry = entries[i] as Entry
    if (entry.kind === 'value') {
      if (isCanonical(entry.sortKey, parts, entry.name)) out.push(entry.sortKey)
      continue
    }
    if (entry.kind === 'folder') {
      await walkFolder(walk, join(path, entry.name), [...parts, entry.name], entry.sortKey, out)
      continue
    }
    // A continuation folder's keys can interleave with the entries that follow it whose sort key
    // starts with its text (only possible with segments longer than one file name, so rare):
    // collect that whole group and sort it.
    let end = i + 1
    while (end < entries.length && (entries[end] as Entry).sortKey.startsWith(entry.sortKey)) end++
    const group: string[] = []
    const unbounded: Walk = { ...walk, budget: Number.POSITIVE_INFINITY }
    for (const member of entries.slice(i, end)) {
      if (member.kind === 'value') {
        if (isCanonical(member.sortKey, parts, member.name)) group.push(member.sortKey)
      } else {
        await walkFolder(unbounded, join(path, member.name), [...parts, member.name], member.sortKey, group)
      }
    }
    group.sort(compareKeys)
    for (const key of group) {
      if (out.length >= walk.budget) break
      out.push(key)
    }
    i = end - 1
  }
}
