// Retention on a real folder and the real S3 gateway: `wf gc` as a real process over many ended
// workflows (10,000 on the folder, 1,000 on S3) beside active ones that must stay and still
// finish; a gc SIGKILLed halfway leaves only whole workflows, which the next gc finishes; dry runs
// delete nothing; deleteWorkflows refuses what it must never delete.
// The ended workflows are made through the store's API (copies of real ones, backdated), not by
// running each: 10,000 runs one by one would take minutes on a folder.
// Over 400 lines: making the backdated workflows and checking what stays is most of it.

import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  InvalidOptionsError,
  type PutCondition,
  Runtime,
  step,
  WorkflowExecutionError,
  WorkflowNotFoundError,
  type WorkflowRecord,
  WorkflowStillActiveError,
} from '@wf/core'
import { createdKey, createdKeyOf, mapLimit, storeKeys, type WorkflowStore } from '@wf/core/internal'
import { interceptStorage } from '@wf/core/testing'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { doctorText, problemsLeft } from './cli/doctor.js'
import { WorkflowClient } from './client.js'
import { bin, type CliResult, runWf } from './test-support/cli-run.js'
import { folderStorage, gate } from './test-support/harness.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'
import { atScale } from './test-support/scale.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const DAY = 86_400_000

interface Backend {
  name: string
  available: boolean
  /** Ended workflows and active ones for the big gc, and ended ones for the crash. */
  ended: number
  active: number
  crash: number
  open(): Promise<Place>
}

const folder: Backend = {
  name: 'folder',
  available: true,
  ended: atScale(10_000, 1_000),
  active: atScale(500, 50),
  crash: atScale(3_000, 300),
  open: () => openFolderPlace('wf-gc-'),
}

// 1,000 and 50 on S3: every deletion is several requests to the gateway, which CI shares.
const bucket: Backend = {
  name: 'S3',
  available: s3.available,
  ended: atScale(1_000, 200),
  active: atScale(50, 10),
  crash: atScale(300, 60),
  open: () => openS3Place('wf-gc'),
}

warnIfS3Skipped('retention.test.ts')

const add = step('gc-add', (a: number, b: number) => a + b)
const big = step('gc-big', (n: number) => 'x'.repeat(300 * 1024) + String(n))
const broken = step(
  'gc-broken',
  (_n: number): number => {
    throw new Error('broken on purpose')
  },
  { maxRetries: 1, backoff: { initialDelayMs: 0 } },
)
let held = gate()
const holding = step('gc-holding', async (n: number) => {
  await held.promise
  return n
})

/** Every key of a workflow id: under workflows/<id>/, its index markers, its ended entries. */
async function keysOf(store: WorkflowStore, workflowId: string): Promise<string[]> {
  return [
    ...(await store.workflowKeys(workflowId)),
    ...(await store.listAllKeys(storeKeys.endedPrefix)).filter((k) => k.endsWith(`/${workflowId}`)),
  ]
}

/** Every key under a prefix, grouped by the workflow id that ends it. */
async function idsUnder(store: WorkflowStore, prefix: string): Promise<Set<string>> {
  const ids = new Set<string>()
  for (const key of await store.listAllKeys(prefix)) ids.add(key.slice(key.lastIndexOf('/') + 1))
  return ids
}

interface Template {
  record: WorkflowRecord
  /** Its other keys, relative to `workflows/<id>/`, with their bytes. */
  files: Array<[string, Uint8Array]>
}

/** A real ended workflow, read back as a template for copies. */
async function templateOf(store: WorkflowStore, workflowId: string): Promise<Template> {
  const { record } = await store.requireWorkflow(workflowId)
  const prefix = storeKeys.workflowPrefix(workflowId)
  const files: Array<[string, Uint8Array]> = []
  for (const key of await store.listAllKeys(prefix)) {
    if (key === storeKeys.workflow(workflowId)) continue
    files.push([key.slice(prefix.length), (await store.storage.get(key))?.data as Uint8Array])
  }
  return { record, files }
}

/**
 * Copies of ended workflows, `endedAt` days ago, made through the store's API: the record by
 * `createWorkflow` (its status marker and ended entry with it), the other keys as they were.
 */
async function copies(
  store: WorkflowStore,
  templates: Template[],
  ids: string[],
  daysAgo: number,
): Promise<void> {
  const endedAt = Date.now() - daysAgo * DAY
  await mapLimit(ids, 32, async (workflowId) => {
    const { record, files } = templates[ids.indexOf(workflowId) % templates.length] as Template
    for (const [rel, data] of files)
      await store.storage.put(`${storeKeys.workflowPrefix(workflowId)}${rel}`, data)
    const copy: WorkflowRecord = {
      ...record,
      workflowId,
      startBatch: undefined,
      createdAt: endedAt - 1000,
      startedAt: endedAt - 1000,
      updatedAt: endedAt,
      endedAt,
    }
    delete copy.startBatch
    await store.createWorkflow(copy)
  })
}

/** Real ended workflows to copy: SUCCESSFUL (a step record), FAILED (failures), CANCELED. */
async function templates(runtime: Runtime, tag: string): Promise<{ ids: string[]; templates: Template[] }> {
  const ids = [`${tag}-ok`, `${tag}-failed`, `${tag}-canceled`]
  await runtime.run(add(add(1, 2), 3), { workflowId: ids[0] })
  await expect(runtime.run(broken(1), { workflowId: ids[1] })).rejects.toBeInstanceOf(WorkflowExecutionError)
  await runtime.submit(add(1, 1), { workflowId: ids[2] })
  await runtime.cancel(ids[2] as string)
  const store = await runtime.store()
  return { ids, templates: await Promise.all(ids.map((id) => templateOf(store, id))) }
}

describe.each([folder, bucket])('wf gc on $name', (backend) => {
  let app: string
  let place: Place
  let runtime: Runtime
  let store: WorkflowStore

  beforeAll(async () => {
    if (!backend.available) return
    app = await mkdtemp(join(tmpdir(), 'wf-gc-app-'))
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    await symlink(s3.packageDir, join(app, 'node_modules/@wf/storage-s3'), 'dir')
    place = await backend.open()
    runtime = new Runtime(place.storage)
    store = await runtime.store()
  }, 60_000)
  afterAll(async () => {
    if (!backend.available) return
    await runtime.idle()
    await runtime.retire()
    await place.close()
    await rm(app, { recursive: true, force: true })
  })

  function wf(args: string[]): Promise<CliResult> {
    return runWf(['--storage', place.uri, ...args], { cwd: app, timeout: 400_000 })
  }

  it.skipIf(!backend.available)(
    `deletes ${backend.ended} ended workflows with every key they own, and leaves ${backend.active} active ones untouched, which still finish`,
    { timeout: 600_000 },
    async () => {
      const made = await templates(runtime, 'big-tmpl')
      const ended = Array.from({ length: backend.ended }, (_, i) => `old-${String(i).padStart(5, '0')}`)
      await copies(store, made.templates, ended, 40)
      // Active ones: a tenth RUNNING here (held), the rest PENDING for a worker; and a recent
      // ended one, younger than the cutoff.
      held = gate()
      const running = Array.from({ length: backend.active / 10 }, (_, i) => `run-${i}`)
      const pending = Array.from({ length: backend.active - running.length }, (_, i) => `wait-${i}`)
      const handles = await Promise.all(
        running.map((workflowId, i) => runtime.runAsync(holding(i), { workflowId })),
      )
      await mapLimit(pending, 16, (workflowId) => runtime.submit(add(1, 2), { workflowId }))
      await copies(store, made.templates, ['recent'], 2)
      const before = new Map(
        await mapLimit(
          [...running, ...pending, 'recent'],
          16,
          async (id) => [id, (await keysOf(store, id)).sort()] as const,
        ),
      )

      const dry = await wf([
        '--json',
        'gc',
        '--status',
        'SUCCESSFUL,FAILED,CANCELED',
        '--older-than',
        '30d',
        '--dry-run',
      ])
      expect(dry.code).toBe(0)
      expect(JSON.parse(dry.stdout)).toMatchObject({ workflows: backend.ended, dryRun: true })
      expect((await keysOf(store, 'old-00000')).length).toBeGreaterThan(2)

      const started = Date.now()
      const gc = await wf([
        '--json',
        'gc',
        '--status',
        'SUCCESSFUL,FAILED,CANCELED',
        '--older-than',
        '30d',
        '--yes',
      ])
      const took = Date.now() - started
      expect(gc).toMatchObject({ code: 0, stderr: '' })
      const result = JSON.parse(gc.stdout)
      expect(result).toMatchObject({ workflows: backend.ended, skipped: 0, dryRun: false })
      expect(result.keys).toBeGreaterThanOrEqual(backend.ended * 3)
      console.log(`wf gc on ${backend.name}: ${backend.ended} workflows, ${result.keys} keys in ${took} ms`)

      // No key of an ended workflow is left, anywhere.
      const goneIds = new Set(ended)
      for (const prefix of ['workflows/', 'index/', 'ended/', 'due/']) {
        const left = [...(await idsUnder(store, prefix))].filter((id) => goneIds.has(id))
        expect(left, prefix).toEqual([])
      }
      for (const key of await store.listAllKeys(storeKeys.workflowsPrefix))
        expect(goneIds.has(key.split('/')[1] as string), key).toBe(false)
      // The active ones and the recent one, untouched.
      for (const [id, keys] of before) expect((await keysOf(store, id)).sort(), id).toEqual(keys)

      held.open()
      expect(await Promise.all(handles.map((h) => h.result()))).toEqual(running.map((_, i) => i))
      const worker = new Runtime(place.storage)
      await mapLimit(pending, 16, (id) => worker.resume(id))
      const client = new WorkflowClient({ runtime })
      for (const id of pending) expect(await client.getStatus(id)).toBe('SUCCESSFUL')
      await worker.retire()
    },
  )

  it.skipIf(!backend.available)(
    'a gc SIGKILLed halfway leaves only whole workflows; the next gc finishes the ones it marked',
    { timeout: 600_000 },
    async () => {
      const made = await templates(runtime, 'crash-tmpl')
      const ended = Array.from({ length: backend.crash }, (_, i) => `crash-${String(i).padStart(5, '0')}`)
      await copies(store, made.templates, ended, 40)
      const expected = new Map(made.templates.map((t, i) => [i, t.files.map(([rel]) => rel).sort()]))

      const child = spawn(
        process.execPath,
        [
          bin,
          '--storage',
          place.uri,
          'gc',
          '--status',
          'SUCCESSFUL,FAILED,CANCELED',
          '--older-than',
          '30d',
          '--yes',
        ],
        { cwd: app, stdio: 'ignore', env: { ...process.env, WF_STORAGE: '' } },
      )
      const exited = new Promise((resolve) => child.once('exit', resolve))
      // Killed once some, not all, are gone.
      await vi.waitFor(
        async () => {
          const left = (await store.listAllKeys(storeKeys.endedPrefix)).filter((k) => k.includes('/crash-'))
          expect(left.length).toBeLessThan(backend.crash * 0.9)
        },
        { timeout: 300_000, interval: 20 },
      )
      child.kill('SIGKILL')
      await exited

      const client = new WorkflowClient({ runtime })
      let whole = 0
      let gone = 0
      let marked = 0
      await mapLimit(ended, 16, async (id) => {
        const i = ended.indexOf(id) % made.templates.length
        const stored = await store.readStoredWorkflow(id)
        const rest = (await store.listAllKeys(storeKeys.workflowPrefix(id)))
          .filter((k) => k !== storeKeys.workflow(id))
          .map((k) => k.slice(storeKeys.workflowPrefix(id).length))
          .sort()
        if (stored === undefined) {
          // Gone: every key under it went before its record.
          expect(rest, id).toEqual([])
          await expect(client.getStatus(id)).rejects.toBeInstanceOf(WorkflowNotFoundError)
          gone++
        } else if (stored.record.deleting !== undefined) {
          // Marked: gone for every reader, whatever of it is left.
          await expect(client.getStatus(id)).rejects.toBeInstanceOf(WorkflowNotFoundError)
          await expect(client.getMetadata(id)).rejects.toBeInstanceOf(WorkflowNotFoundError)
          marked++
        } else {
          // Untouched: readable and complete.
          expect(rest, id).toEqual(expected.get(i))
          expect(await client.getStatus(id)).toBe(made.templates[i]?.record.status)
          await client.getGraph(id)
          whole++
        }
      })
      expect(gone).toBeGreaterThan(0)
      expect(whole).toBeGreaterThan(0)
      console.log(`killed gc on ${backend.name}: ${gone} gone, ${marked} marked, ${whole} whole`)

      const again = await wf(['--json', 'gc', '--status', 'SUCCESSFUL', '--older-than', '30d', '--yes'])
      expect(again.code).toBe(0)
      // Every marked one is finished, whatever its status; the unmarked FAILED and CANCELED stay.
      await mapLimit(ended, 16, async (id) => {
        const stored = await store.readStoredWorkflow(id)
        expect(stored?.record.deleting, id).toBeUndefined()
        if (stored === undefined) expect(await keysOf(store, id), id).toEqual([])
        else expect(stored.record.status).not.toBe('SUCCESSFUL')
      })
    },
  )
})

describe('deleteWorkflows on a folder', () => {
  let dir: string
  let client: WorkflowClient
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wf-gc-api-'))
    client = new WorkflowClient({ storage: await folderStorage(dir) })
  })
  afterAll(async () => {
    await client.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('refuses RUNNING, PENDING and RESUMABLE, a missing cutoff, unknown options and bad metadata, with InvalidOptionsError', async () => {
    const now = Date.now()
    for (const status of ['RUNNING', 'PENDING', 'RESUMABLE', 'NOPE']) {
      await expect(
        client.deleteWorkflows({ status: status as never, endedBefore: now }),
      ).rejects.toBeInstanceOf(InvalidOptionsError)
    }
    await expect(client.deleteWorkflows({ status: 'SUCCESSFUL' } as never)).rejects.toThrow(/endedBefore/)
    await expect(client.deleteWorkflows({ endedBefore: now } as never)).rejects.toThrow(/status/)
    await expect(
      client.deleteWorkflows({ status: 'SUCCESSFUL', endedBefore: now, dryrun: true } as never),
    ).rejects.toThrow(/unknown option "dryrun"/)
    await expect(
      client.deleteWorkflows({ status: 'SUCCESSFUL', endedBefore: new Date(Number.NaN) }),
    ).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(
      client.deleteWorkflows({ status: 'SUCCESSFUL', endedBefore: now, metadata: 'x' as never }),
    ).rejects.toBeInstanceOf(InvalidOptionsError)
  })

  it('deletes by status, cutoff and metadata; a dry run counts the same and deletes nothing', async () => {
    const runtime = client.runtime
    await runtime.run(add(1, 2), { workflowId: 'm-a', metadata: { team: 'a' } })
    await runtime.run(big(1), { workflowId: 'm-b', metadata: { team: 'b' } })
    await expect(runtime.run(broken(1), { workflowId: 'm-f', metadata: { team: 'a' } })).rejects.toThrow()
    const store = await runtime.store()
    const keysBefore = (await store.listAllKeys('')).sort()
    const endedBefore = Date.now() + 1
    const dry = await client.deleteWorkflows({ status: 'SUCCESSFUL', endedBefore, dryRun: true })
    expect(dry).toMatchObject({ workflows: 2, dryRun: true, workflowIds: ['m-a', 'm-b'] })
    expect((await store.listAllKeys('')).sort()).toEqual(keysBefore)
    const some = await client.deleteWorkflows({ status: 'SUCCESSFUL', endedBefore, metadata: { team: 'b' } })
    expect(some).toMatchObject({ workflows: 1, workflowIds: ['m-b'], dryRun: false })
    // Record, blob, SUCCESSFUL marker, ended entry.
    expect(some.keys).toBe(4)
    expect(await keysOf(store, 'm-b')).toEqual([])
    const rest = await client.deleteWorkflows({ status: ['SUCCESSFUL', 'FAILED'], endedBefore })
    expect(rest.workflowIds.sort()).toEqual(['m-a', 'm-f'])
    // m-a as the dry run counted it, m-f's record, failures, marker and entry.
    expect(rest.keys).toBe(dry.keys - some.keys + 4)
    for (const id of ['m-a', 'm-f']) expect(await keysOf(store, id)).toEqual([])
  })

  it('checkStorage reports a deletion cut short and an ended workflow missing from the ended index; fix finishes and indexes them', async () => {
    const runtime = client.runtime
    const store = await runtime.store()
    await runtime.run(add(2, 2), { workflowId: 'doc-cut' })
    await runtime.run(add(3, 3), { workflowId: 'doc-unindexed' })
    // As a crash would leave them: a record marked, and an end whose entry was never written.
    const cut = await store.requireWorkflow('doc-cut')
    await store.storage.put(
      storeKeys.workflow('doc-cut'),
      Buffer.from(JSON.stringify({ ...cut.record, deleting: { at: Date.now() } })),
    )
    const unindexed = await store.requireWorkflow('doc-unindexed')
    const entry = (await store.listAllKeys(storeKeys.endedPrefix)).find((k) => k.endsWith('/doc-unindexed'))
    await store.storage.delete(entry as string)
    expect(unindexed.record.status).toBe('SUCCESSFUL')

    const seen = await client.checkStorage()
    expect(seen).toMatchObject({ unfinishedDeletions: ['doc-cut'], unindexedEnded: ['doc-unindexed'] })
    const fixed = await client.checkStorage({ fix: true })
    expect(fixed).toMatchObject({ unfinishedDeletions: ['doc-cut'], unindexedEnded: ['doc-unindexed'] })
    expect(await keysOf(store, 'doc-cut')).toEqual([])
    expect(await store.listAllKeys(storeKeys.endedPrefix)).toContain(entry)
    expect(await client.checkStorage()).toMatchObject({ unfinishedDeletions: [], unindexedEnded: [] })
  })

  it('checkStorage reports a workflow missing from the creation-time index and an entry of no workflow; fix adds and deletes them', async () => {
    const runtime = client.runtime
    const store = await runtime.store()
    await runtime.run(add(4, 4), { workflowId: 'doc-uncreated' })
    const { record } = await store.requireWorkflow('doc-uncreated')
    // As a crash between the first record and its entry leaves it, and an entry whose workflow is gone.
    const entry = createdKeyOf(record)
    await store.storage.delete(entry)
    const old = Date.now() - 2 * 60 * 60 * 1000
    const stray = createdKey(old, 'doc-gone')
    await store.storage.put(stray, new Uint8Array(0))

    const seen = await client.checkStorage()
    expect(seen.unindexedCreated).toContain('doc-uncreated')
    expect(seen.staleCreated).toContain(stray)
    const stored = await store.listAllKeys('created/')
    expect(stored).not.toContain(entry)
    expect(stored).toContain(stray)
    expect(doctorText(seen, { color: false })).toContain('missing from the creation-time index')
    expect(problemsLeft(seen)).toBe(true)

    const fixed = await client.checkStorage({ fix: true })
    expect(fixed.unindexedCreated).toContain('doc-uncreated')
    const after = await store.listAllKeys('created/')
    expect(after).toContain(entry)
    expect(after).not.toContain(stray)
    const again = await client.checkStorage()
    expect(again).toMatchObject({ unindexedCreated: [], staleCreated: [] })
  })

  it('wf gc refuses to delete without --yes when stdin is not a terminal, and deletes nothing', {
    timeout: 60_000,
  }, async () => {
    const runtime = client.runtime
    await runtime.run(add(4, 4), { workflowId: 'cli-kept' })
    const cwd = await mkdtemp(join(tmpdir(), 'wf-gc-cli-'))
    await mkdir(join(cwd, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(cwd, 'node_modules/@wf/storage-fs'), 'dir')
    const run = await runWf(['--storage', dir, 'gc', '--status', 'SUCCESSFUL', '--older-than', '0s'], { cwd })
    expect(run.code).toBe(2)
    expect(run.stderr).toMatch(/cannot ask \(stdin is not a terminal\): add --yes/)
    expect(await client.getStatus('cli-kept')).toBe('SUCCESSFUL')
    const bad = await runWf(['--storage', dir, 'gc', '--status', 'RUNNING', '--older-than', '0s', '--yes'], {
      cwd,
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/RUNNING.*never/)
    const yes = await runWf(
      ['--storage', dir, '--json', 'gc', '--status', 'SUCCESSFUL', '--older-than', '0s', '--yes'],
      { cwd },
    )
    expect(yes.code).toBe(0)
    expect(JSON.parse(yes.stdout).workflowIds).toContain('cli-kept')
    await rm(cwd, { recursive: true, force: true })
  })
})

let fixed = false
let running = gate()
const flaky = step(
  'gc-flaky',
  async (n: number) => {
    if (!fixed) throw new Error('not fixed yet')
    await running.promise
    return n
  },
  { maxRetries: 0 },
)

describe.each([folder, bucket])('deleting beside readers and resumes, on $name', (backend) => {
  /** A client on the backend behind `hooks`: the calls a test holds or reorders. */
  async function open(hooks: Parameters<typeof interceptStorage>[1]) {
    const place = await backend.open()
    const client = new WorkflowClient({ storage: interceptStorage(place.storage, hooks) })
    return { place, client, store: await client.runtime.store() }
  }
  const isRecordPut = (key: string, workflowId: string, condition?: PutCondition) =>
    key === storeKeys.workflow(workflowId) && condition !== undefined && 'ifVersion' in condition

  it.skipIf(!backend.available)(
    'a reader during a deletion gets WorkflowNotFoundError, never part of the workflow',
    async () => {
      const held = gate()
      const reached = gate()
      let hold = false
      const { place, client, store } = await open({
        deleteMany: async (next, keys) => {
          // Held once the markers went, as the step records are about to.
          if (hold && keys.some((k) => k.includes('/steps/'))) {
            reached.open()
            await held.promise
          }
          return next(keys)
        },
      })
      await client.runtime.run(add(add(1, 2), 3), { workflowId: 'reader' })
      hold = true
      const deleting = client.delete('reader')
      await reached.promise
      expect((await store.listAllKeys(storeKeys.stepsPrefix('reader'))).length).toBe(1)
      await expect(client.getStatus('reader')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      await expect(client.getOutput('reader')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      await expect(client.getGraph('reader')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      expect((await client.listAll()).map((w) => w.workflowId)).not.toContain('reader')
      held.open()
      await deleting
      expect(await keysOf(store, 'reader')).toEqual([])
      await client.runtime.retire()
      await place.close()
    },
  )

  it.skipIf(!backend.available)(
    'a resume that claims first keeps the workflow (the delete then refuses it as RUNNING); one that claims second finds it gone',
    async () => {
      let before: (() => Promise<unknown>) | undefined
      let when: ((key: string, data: Uint8Array, condition?: PutCondition) => boolean) | undefined
      const { place, client, store } = await open({
        put: async (next, key, data, condition) => {
          if (before && when?.(key, data, condition)) {
            const first = before
            before = undefined
            await first()
          }
          return next(key, data, condition)
        },
      })
      fixed = false
      for (const id of ['resume-first', 'delete-first'])
        await expect(client.runtime.run(add(flaky(1), 2), { workflowId: id })).rejects.toThrow()
      fixed = true
      running = gate()

      // The deletion's mark is about to be written: a resume claims the workflow just before.
      let resumed: Promise<unknown> | undefined
      when = (key, data, condition) =>
        isRecordPut(key, 'resume-first', condition) && Buffer.from(data).toString().includes('"deleting"')
      before = async () => {
        resumed = client.resume('resume-first')
        await vi.waitFor(async () => expect(await client.getStatus('resume-first')).not.toBe('FAILED'))
      }
      await expect(client.delete('resume-first')).rejects.toBeInstanceOf(WorkflowStillActiveError)
      running.open()
      await expect(resumed).resolves.toBe(3)
      expect(await client.getStatus('resume-first')).toBe('SUCCESSFUL')
      expect(await client.getOutput('resume-first', { stepId: 'gc-flaky' })).toBe(1)

      // The resume's claim is about to be written: the deletion marks the record just before.
      when = (key, data, condition) =>
        isRecordPut(key, 'delete-first', condition) && Buffer.from(data).toString().includes('"RUNNING"')
      before = () => client.delete('delete-first')
      await expect(client.resume('delete-first')).rejects.toBeInstanceOf(WorkflowNotFoundError)
      expect(await keysOf(store, 'delete-first')).toEqual([])
      await client.runtime.idle()
      await client.runtime.retire()
      await place.close()
    },
  )
})
