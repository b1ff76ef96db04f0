// listAll and listWorkflows on memory and on a real folder: filters in every form, stable order,
// no record reads for settled statuses, paging, and the status index after a crash between writes.

import { InvalidOptionsError, type Storage, type StoredStatus, step, storeKeys } from '@wf/core'
import { describe, expect, it } from 'vitest'
import type { WorkflowClient } from './index.js'
import { backends, eachTestOn, gate, type Probe } from './test-support/harness.js'

const double = step('ls-double', (n: number) => n * 2)
const fail = step(
  'ls-fail',
  (_n: number): number => {
    throw new Error('nope')
  },
  { maxRetries: 0 },
)
let held = gate()
const slow = step('ls-slow', async () => {
  await held.promise
  return 1
})
let taking = gate()
const waiting = step('ls-waiting', async () => {
  await taking.promise
  return 1
})

describe.each(backends)('on $name storage', (backend) => {
  let storage: Storage
  let probe: Probe
  let client: WorkflowClient

  eachTestOn(backend, (bed) => {
    ;({ storage, probe, client } = bed)
  })

  async function seed(): Promise<void> {
    await client.runtime.run(double(1), { workflowId: 'c-ok', metadata: { team: 'a', n: 1 } })
    await client.runtime.run(double(2), { workflowId: 'a-ok', metadata: { team: 'b' } })
    await expect(client.runtime.run(fail(3), { workflowId: 'b-failed' })).rejects.toThrow()
    // The storage refuses the final record (its SUCCESSFUL marker is written first): left RESUMABLE.
    probe.failWrites = (key) => key.startsWith('index/SUCCESSFUL/')
    await expect(client.runtime.run(double(4), { workflowId: 'd-resumable' })).rejects.toThrow()
    probe.failWrites = () => false
    await client.runtime.run(double(5), { workflowId: 'e-canceled' })
    // A SUCCESSFUL workflow cannot be canceled: make one CANCELED from a FAILED one.
    await expect(client.runtime.run(fail(6), { workflowId: 'f-canceled' })).rejects.toThrow()
    await client.cancel('f-canceled')
  }

  const markersOf = async (id: string): Promise<StoredStatus[]> => {
    const out: StoredStatus[] = []
    for (const status of ['PENDING', 'RUNNING', 'FAILED', 'CANCELED', 'SUCCESSFUL'] as const) {
      if (await storage.get(storeKeys.index(status, id))) out.push(status)
    }
    return out
  }

  describe('listAll', () => {
    it('lists every workflow with its status, ordered by id', async () => {
      await seed()
      expect(await client.listAll()).toEqual([
        { workflowId: 'a-ok', status: 'SUCCESSFUL' },
        { workflowId: 'b-failed', status: 'FAILED' },
        { workflowId: 'c-ok', status: 'SUCCESSFUL' },
        { workflowId: 'd-resumable', status: 'RESUMABLE' },
        { workflowId: 'e-canceled', status: 'SUCCESSFUL' },
        { workflowId: 'f-canceled', status: 'CANCELED' },
      ])
    })

    it('filters by one status, an array or a Set', async () => {
      await seed()
      expect(await client.listAll('FAILED')).toEqual([{ workflowId: 'b-failed', status: 'FAILED' }])
      const ids = (list: { workflowId: string }[]) => list.map((w) => w.workflowId)
      expect(ids(await client.listAll(['RESUMABLE', 'CANCELED']))).toEqual(['d-resumable', 'f-canceled'])
      expect(ids(await client.listAll(new Set(['SUCCESSFUL'] as const)))).toEqual([
        'a-ok',
        'c-ok',
        'e-canceled',
      ])
      expect(await client.listAll('RUNNING')).toEqual([])
      expect(await client.listAll([])).toEqual([])
    })

    it('rejects an unknown status, naming the valid ones', async () => {
      await expect(client.listAll('DONE' as never)).rejects.toThrow(InvalidOptionsError)
      await expect(client.listAll(['RUNNING', 'done'] as never)).rejects.toThrow(
        /RESUMABLE.*SUCCESSFUL|SUCCESSFUL.*RESUMABLE/,
      )
      await expect(client.listAll(42 as never)).rejects.toBeInstanceOf(InvalidOptionsError)
    })

    it('reads the records of RUNNING workflows only, not of settled ones', async () => {
      await seed()
      probe.gets.length = 0
      await client.listAll()
      const recordReads = probe.gets.filter((k) => k.endsWith('/workflow'))
      expect(recordReads).toEqual([storeKeys.workflow('d-resumable')])
    })

    it('orders ids as storage lists keys (UTF-8 bytes), merging the markers of one id', async () => {
      // U+FF01 sorts before U+1F600 by code point, after it by UTF-16 code unit (what `<` uses).
      const wide = 'x-\uff01'
      const astral = 'x-\u{1f600}'
      await storage.put(storeKeys.index('SUCCESSFUL', wide), new Uint8Array())
      await storage.put(storeKeys.index('FAILED', astral), new Uint8Array())
      await storage.put(storeKeys.index('SUCCESSFUL', astral), new Uint8Array())
      const listed = await client.listAll(['SUCCESSFUL', 'FAILED'])
      // Two markers and no record (a crashed submission): read, and dropped.
      expect(listed).toEqual([{ workflowId: wide, status: 'SUCCESSFUL' }])
      expect(probe.gets).toContain(storeKeys.workflow(astral))
    })

    it('pages through more index entries than one storage list page returns', async () => {
      const ids = Array.from({ length: 1205 }, (_, i) => `bulk-${String(i).padStart(5, '0')}`)
      // Markers alone are what listAll reads for terminal statuses.
      for (const id of ids) await storage.put(storeKeys.index('SUCCESSFUL', id), new Uint8Array())
      const listed = await client.listAll('SUCCESSFUL')
      expect(listed.map((w) => w.workflowId)).toEqual(ids)
    }, 30_000) // 1,205 files made: seconds on this disk after many deletes
  })

  describe('the status index after a crash between its writes', () => {
    it('gives the record status for a workflow with two markers, and repairs the index', async () => {
      await client.runtime.run(double(1), { workflowId: 'crash-1' })
      // A resume that crashed after writing its RUNNING marker, before the record changed.
      await storage.put(storeKeys.index('RUNNING', 'crash-1'), new Uint8Array())
      expect(await markersOf('crash-1')).toEqual(['RUNNING', 'SUCCESSFUL'])
      expect(await client.listAll()).toEqual([{ workflowId: 'crash-1', status: 'SUCCESSFUL' }])
      expect(await markersOf('crash-1')).toEqual(['SUCCESSFUL'])
    })

    it('does not list a workflow under the status of a stale marker', async () => {
      await expect(client.runtime.run(fail(1), { workflowId: 'crash-2' })).rejects.toThrow()
      // A cancel that crashed after writing its CANCELED marker.
      await storage.put(storeKeys.index('CANCELED', 'crash-2'), new Uint8Array())
      expect(await client.listAll('CANCELED')).toEqual([])
      expect(await markersOf('crash-2')).toEqual(['FAILED'])
      await storage.put(storeKeys.index('CANCELED', 'crash-2'), new Uint8Array())
      expect(await client.listAll('FAILED')).toEqual([{ workflowId: 'crash-2', status: 'FAILED' }])
      expect(await client.getStatus('crash-2')).toBe('FAILED')
    })

    it('drops a RUNNING marker whose record was never created', async () => {
      await storage.put(storeKeys.index('RUNNING', 'never-created'), new Uint8Array())
      expect(await client.listAll()).toEqual([])
      expect(await client.listAll(['RUNNING', 'RESUMABLE'])).toEqual([])
    })

    it('lists a submitted workflow a runner took as RUNNING, though it keeps its PENDING marker', async () => {
      taking = gate()
      await client.runtime.submit(waiting(), { workflowId: 'taken' })
      expect(await client.listAll('PENDING')).toEqual([{ workflowId: 'taken', status: 'PENDING' }])
      const handle = await client.runtime.resumeAsync('taken')
      expect(await markersOf('taken')).toEqual(['PENDING'])
      expect(await client.listAll('RUNNING')).toEqual([{ workflowId: 'taken', status: 'RUNNING' }])
      expect(await client.listAll('PENDING')).toEqual([])
      expect((await client.listWorkflows({ status: 'RUNNING' })).workflows).toMatchObject([
        { workflowId: 'taken', status: 'RUNNING' },
      ])
      taking.open()
      await handle.result()
      expect(await markersOf('taken')).toEqual(['SUCCESSFUL'])
      expect(await client.listAll('SUCCESSFUL')).toEqual([{ workflowId: 'taken', status: 'SUCCESSFUL' }])
    })

    it('leaves the markers of a workflow a live runner is moving alone', async () => {
      // A gate of its own: the one of the previous backend's run is open already.
      held = gate()
      const { open: release } = held
      const handle = await client.runtime.runAsync(slow(), { workflowId: 'moving' })
      // The runner is about to finish: its SUCCESSFUL marker is written, its record not yet. Its
      // start batch stands for its RUNNING marker meanwhile.
      await storage.put(storeKeys.index('SUCCESSFUL', 'moving'), new Uint8Array())
      expect(await client.listAll()).toEqual([{ workflowId: 'moving', status: 'RUNNING' }])
      expect(await client.listAll('SUCCESSFUL')).toEqual([])
      expect(await markersOf('moving')).toEqual(['SUCCESSFUL'])
      expect((await storage.list(storeKeys.startBatchesPrefix)).keys).toHaveLength(1)
      release()
      await handle.result()
      expect(await markersOf('moving')).toEqual(['SUCCESSFUL'])
      expect((await storage.list(storeKeys.startBatchesPrefix)).keys).toEqual([])
    })
  })

  describe('listWorkflows', () => {
    it('returns pages with createdAt and metadata, and a cursor until the last page', async () => {
      await seed()
      const first = await client.listWorkflows({ limit: 4 })
      expect(first.workflows.map((w) => w.workflowId)).toEqual(['a-ok', 'b-failed', 'c-ok', 'd-resumable'])
      expect(first.workflows[0]).toMatchObject({ status: 'SUCCESSFUL', metadata: { team: 'b' } })
      expect(typeof first.workflows[0]?.createdAt).toBe('number')
      expect(first.cursor).toBeTypeOf('string')
      const second = await client.listWorkflows({ limit: 4, cursor: first.cursor })
      expect(second.workflows.map((w) => w.workflowId)).toEqual(['e-canceled', 'f-canceled'])
      expect(second.cursor).toBeUndefined()
    })

    it('filters by status, metadata and creation time', async () => {
      await seed()
      const ids = (page: { workflows: { workflowId: string }[] }) => page.workflows.map((w) => w.workflowId)
      expect(ids(await client.listWorkflows({ status: ['FAILED', 'RESUMABLE'] }))).toEqual([
        'b-failed',
        'd-resumable',
      ])
      expect(ids(await client.listWorkflows({ metadata: { team: 'a' } }))).toEqual(['c-ok'])
      expect(ids(await client.listWorkflows({ metadata: { team: 'a', n: 2 } }))).toEqual([])
      const future = Date.now() + 60_000
      expect(ids(await client.listWorkflows({ createdAfter: future }))).toEqual([])
      expect(ids(await client.listWorkflows({ createdBefore: new Date(future) })).length).toBe(6)
    })

    it('validates its options', async () => {
      await expect(client.listWorkflows({ limit: 0 })).rejects.toBeInstanceOf(InvalidOptionsError)
      await expect(client.listWorkflows({ cursor: 'garbage' })).rejects.toThrow(/cursor/)
      await expect(client.listWorkflows({ status: 'NOPE' as never })).rejects.toThrow(/NOPE/)
      await expect(client.listWorkflows({ createdAfter: Number.NaN })).rejects.toThrow(/createdAfter/)
    })
  })
})
