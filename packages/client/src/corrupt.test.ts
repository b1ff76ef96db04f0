// One unreadable workflow record must not block the rest, on memory and on a real folder: listings
// show every readable workflow and report the unreadable ones, resumeAll resumes the others,
// `delete(id, { force: true })` removes every key of it, and `checkStorage` (wf doctor) finds
// corrupt records, orphans and stale markers, and with `fix` repairs only what is safe.

import { CorruptRecordError, type Storage, step, storeKeys, WorkflowNotFoundError } from '@wf/core'
import { describe, expect, it } from 'vitest'
import type { WorkflowClient } from './index.js'
import { backends, eachTestOn, type Probe } from './test-support/harness.js'

const inc = step('cr-inc', (n: number) => n + 1)
const add = step('cr-add', (a: number, b: number) => a + b)
const utf8 = (text: string) => new TextEncoder().encode(text)
const GARBLE = utf8('{"v":1,"workflowId":"x","sta')

describe.each(backends)('on $name storage', (backend) => {
  let storage: Storage
  let probe: Probe
  let client: WorkflowClient

  eachTestOn(backend, (bed) => {
    ;({ storage, probe, client } = bed)
  })

  /** A workflow left RESUMABLE: the storage refused its final record. */
  async function resumable(workflowId: string): Promise<void> {
    probe.failWrites = (key) => key.startsWith('index/SUCCESSFUL/')
    await expect(client.runtime.run(add(inc(1), inc(2)), { workflowId })).rejects.toThrow()
    probe.failWrites = () => false
  }
  const keysOf = async (prefix: string) => (await storage.list(prefix)).keys

  it('lists every readable workflow and reports the unreadable ones in errors', async () => {
    await client.runtime.run(inc(1), { workflowId: 'a-ok' })
    await resumable('b-resumable')
    await resumable('c-garbled')
    await storage.put(storeKeys.workflow('c-garbled'), GARBLE)
    const all = await client.listAll()
    expect(all.map((w) => w.workflowId)).toEqual(['a-ok', 'b-resumable'])
    expect(all.errors).toEqual([
      {
        workflowId: 'c-garbled',
        key: storeKeys.workflow('c-garbled'),
        code: 'WF_CORRUPT_RECORD',
        message: expect.stringMatching(/not valid JSON/),
      },
    ])
    const wanted = await client.listAll('RESUMABLE')
    expect(wanted).toEqual([{ workflowId: 'b-resumable', status: 'RESUMABLE' }])
    expect(wanted.errors.map((e) => e.workflowId)).toEqual(['c-garbled'])
    const page = await client.listWorkflows()
    expect(page.workflows.map((w) => w.workflowId)).toEqual(['a-ok', 'b-resumable'])
    expect(page.errors.map((e) => e.key)).toEqual([storeKeys.workflow('c-garbled')])
  })

  it('resumes the readable workflows and reports the unreadable ones', async () => {
    await resumable('b-resumable')
    await resumable('c-garbled')
    await storage.put(storeKeys.workflow('c-garbled'), GARBLE)
    const resumed = await client.resumeAll()
    expect(resumed.map((r) => r.workflowId)).toEqual(['b-resumable'])
    expect(await resumed[0]?.result).toBe(5)
    expect(resumed.errors.map((e) => e.workflowId)).toEqual(['c-garbled'])
  })

  it('deletes a workflow whose record is unreadable only with force, and then every key of it', async () => {
    await resumable('garbled')
    await client.runtime.run(inc(1), { workflowId: 'kept' })
    await storage.put(storeKeys.workflow('garbled'), GARBLE)
    // Listed by a start batch too, as a workflow started with others would be.
    await client.runtime
      .store()
      .then((s) =>
        s.writeStartBatch('gone.1', { v: 1, runnerId: 'gone', createdAt: 1, workflowIds: ['garbled', 'x'] }),
      )
    expect(await keysOf(storeKeys.stepsPrefix('garbled'))).not.toEqual([])
    await expect(client.delete('garbled')).rejects.toThrow(CorruptRecordError)
    await client.delete('garbled', { force: true })
    expect(await keysOf(storeKeys.workflowPrefix('garbled'))).toEqual([])
    expect(await keysOf('index/')).toEqual([storeKeys.index('SUCCESSFUL', 'kept')])
    const batch = await (await client.runtime.store()).readStartBatch('gone.1')
    expect(batch?.record.workflowIds).toEqual(['x'])
    await expect(client.delete('garbled', { force: true })).rejects.toThrow(WorkflowNotFoundError)
    expect(await client.getStatus('kept')).toBe('SUCCESSFUL')
  })

  it('deletes with force what a record deleted by hand left behind: steps and markers', async () => {
    await client.runtime.run(add(inc(1), inc(2)), { workflowId: 'by-hand' })
    await storage.delete(storeKeys.workflow('by-hand'))
    await expect(client.delete('by-hand')).rejects.toThrow(WorkflowNotFoundError)
    expect((await client.listAll()).map((w) => w.workflowId)).toEqual(['by-hand'])
    await client.delete('by-hand', { force: true })
    expect(await keysOf(storeKeys.workflowPrefix('by-hand'))).toEqual([])
    expect(await client.listAll()).toEqual([])
  })

  it('rejects delete options that are not booleans', async () => {
    await expect(client.delete('x', { force: 'yes' as unknown as boolean })).rejects.toThrow(
      /force must be a boolean/,
    )
  })

  describe('checkStorage (wf doctor)', () => {
    const later = Date.now() + 10 * 15_000 + 60_000

    async function seed(): Promise<void> {
      await client.runtime.run(inc(1), { workflowId: 'a-ok' })
      await resumable('b-garbled')
      await storage.put(storeKeys.workflow('b-garbled'), GARBLE)
      await client.runtime.run(add(inc(1), inc(2)), { workflowId: 'c-by-hand' })
      await storage.delete(storeKeys.workflow('c-by-hand'))
      // A marker left beside the right one (a crash mid status change).
      await client.runtime.run(inc(2), { workflowId: 'd-two-markers' })
      await storage.put(storeKeys.index('FAILED', 'd-two-markers'), new Uint8Array())
      // A lone final marker, and a lone RUNNING one (a submission may be writing its record now).
      await storage.put(storeKeys.index('CANCELED', 'e-lone-final'), new Uint8Array())
      await storage.put(storeKeys.index('RUNNING', 'f-lone-running'), new Uint8Array())
    }

    it('reports corrupt records, orphans and stale markers without changing anything', async () => {
      await seed()
      const before = await keysOf('')
      const report = await client.checkStorage()
      expect(report.corrupt.map((c) => c.workflowId)).toEqual(['b-garbled'])
      expect(report.staleIndex).toEqual([
        {
          workflowId: 'd-two-markers',
          status: 'SUCCESSFUL',
          markers: ['FAILED', 'SUCCESSFUL'],
          expected: 'SUCCESSFUL',
        },
      ])
      expect(report.orphans.map((o) => [o.workflowId, o.removable])).toEqual([
        ['c-by-hand', false],
        ['e-lone-final', true],
        ['f-lone-running', false],
      ])
      const byHand = report.orphans[0]
      expect(byHand?.reason).toMatch(/less than 10 lease periods/)
      expect(byHand?.keys).toContain(storeKeys.index('SUCCESSFUL', 'c-by-hand'))
      expect(byHand?.lastWrittenAt).toBeLessThanOrEqual(Date.now())
      expect(await keysOf('')).toEqual(before)
    })

    it('with fix, repairs the index and removes old orphans, never a readable workflow nor a corrupt record', async () => {
      await seed()
      const report = await client.checkStorage({ fix: true, now: later })
      expect(report.staleIndex[0]?.repaired).toBe(true)
      expect(report.orphans.filter((o) => o.removed).map((o) => o.workflowId)).toEqual([
        'c-by-hand',
        'e-lone-final',
      ])
      expect(await keysOf(storeKeys.workflowPrefix('c-by-hand'))).toEqual([])
      expect(await keysOf('index/')).toEqual([
        storeKeys.index('RUNNING', 'f-lone-running'),
        storeKeys.index('SUCCESSFUL', 'a-ok'),
        storeKeys.index('SUCCESSFUL', 'd-two-markers'),
      ])
      expect(await storage.get(storeKeys.workflow('b-garbled'))).toBeDefined()
      expect(await client.getOutput('a-ok')).toBe(2)
      const again = await client.checkStorage({ now: later })
      expect(again.staleIndex).toEqual([])
      expect(again.orphans.map((o) => o.workflowId)).toEqual(['f-lone-running'])
    })

    it('keeps the keys of a start batch whose runner lives, however old', async () => {
      const store = await client.runtime.store()
      const runnerId = client.runtime.runner.runnerId
      await store.writeRunner({
        v: 1,
        runner: client.runtime.runner,
        leaseExpiresAt: later + 60_000,
        updatedAt: Date.now(),
      })
      await store.writeStartBatch(`${runnerId}.9`, {
        v: 1,
        runnerId,
        createdAt: 1,
        workflowIds: ['in-flight'],
      })
      await store.writeStartBatch('dead.1', { v: 1, runnerId: 'dead', createdAt: 1, workflowIds: ['lost'] })
      const report = await client.checkStorage({ fix: true, now: later })
      expect(report.orphans.map((o) => [o.workflowId, o.removed ?? false])).toEqual([
        ['in-flight', false],
        ['lost', true],
      ])
      expect(report.orphans[0]?.reason).toMatch(/may still be submitting/)
      expect(await store.listStartBatches()).toEqual([`${runnerId}.9`])
    })
  })
})
