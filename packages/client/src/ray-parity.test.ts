// Ray parity: user metadata is JSON, refused before anything is written when it is not (for a run
// and for a step, also for nodes a continuation builds), and the step fingerprints recorded at
// submission are readable: `getMetadata(id).runtime.steps` and each step of the graph view.
// On memory and a real folder.

import {
  InvalidOptionsError,
  type Runtime,
  type StepNode,
  type Storage,
  step,
  storeKeys,
  WorkflowExecutionError,
} from '@wf/core'
import { describe, expect, it } from 'vitest'
import type { WorkflowClient } from './index.js'
import { backends, eachTestOn } from './test-support/harness.js'

class Owner {
  name = 'ada'
}
const cycle: { [key: string]: unknown } = { a: 1 }
cycle.self = cycle

/** Each kind of value JSON cannot hold, where it sits, and what the message names. */
const REFUSED: [string, unknown, RegExp][] = [
  ['a class instance', { owner: new Owner() }, /metadata\.owner is an instance of Owner/],
  ['a Date', { owner: { since: new Date(0) } }, /metadata\.owner\.since is an instance of Date/],
  ['a Map', { tags: new Map() }, /metadata\.tags is an instance of Map/],
  ['a function', { hook: () => 1 }, /metadata\.hook is a function/],
  ['a symbol', { kind: Symbol('k') }, /metadata\.kind is a symbol/],
  ['an undefined value', { note: undefined }, /metadata\.note is undefined/],
  ['NaN', { score: Number.NaN }, /metadata\.score is NaN/],
  ['Infinity', { list: [1, Number.POSITIVE_INFINITY] }, /metadata\.list\[1\] is Infinity/],
  ['a cycle', { loop: cycle }, /metadata\.loop\.self refers back/],
  ['a BigInt', { big: 10n }, /metadata\.big is a bigint/],
]

const plain = step('rp-plain', (n: number) => n + 1)
let innerAttempts = 0
const builder = step(
  'rp-builder',
  (n: number): StepNode<number> => {
    innerAttempts++
    return plain(n).options({ metadata: { at: new Date(0) } as never })
  },
  { maxRetries: 3 },
)
const wide = step('rp-wide', (...xs: number[]) => xs.length)
const leaf = step('rp-leaf', (n: number) => n * 2)
const middle = step('rp-middle', (n: number) => leaf(n))
const top = step('rp-top', (n: number) => middle(leaf(n)))

for (const backend of backends) {
  describe(`metadata and fingerprints (${backend.name})`, () => {
    let storage: Storage
    let runtime: Runtime
    let client: WorkflowClient
    eachTestOn(backend, (bed) => {
      ;({ storage, runtime, client } = bed)
    })

    for (const [kind, metadata, message] of REFUSED) {
      it(`refuses run metadata holding ${kind}, naming its path, with nothing written`, async () => {
        const error = await runtime
          .run(plain(1), { workflowId: 'rp-run', metadata: metadata as never })
          .catch((e: unknown) => e)
        expect(error).toBeInstanceOf(InvalidOptionsError)
        expect((error as Error).message).toMatch(message)
        expect(await storage.get(storeKeys.workflow('rp-run'))).toBeUndefined()
      })

      it(`refuses step metadata holding ${kind}, at step() and at .options()`, () => {
        expect(() =>
          step(`rp-bad-${kind.replaceAll(' ', '-')}`, () => 1, { metadata: metadata as never }),
        ).toThrow(message)
        expect(() => plain(1).options({ metadata: metadata as never })).toThrow(InvalidOptionsError)
        expect(() => plain.options({ metadata: metadata as never })).toThrow(message)
      })
    }

    it('takes nested plain objects, arrays, strings, finite numbers, booleans and null', async () => {
      const metadata = {
        team: 'data',
        tags: ['a', 'b'],
        limits: { n: 3, on: true, off: null },
        bare: Object.create(null),
      }
      await expect(
        runtime.run(plain(1).options({ metadata }), { workflowId: 'rp-ok', metadata }),
      ).resolves.toBe(2)
      expect((await client.getMetadata('rp-ok')).userMetadata).toEqual(metadata)
    })

    it('fails a step that builds a node with bad metadata, without retries', async () => {
      innerAttempts = 0
      const error = await runtime.run(builder(1), { workflowId: 'rp-inner' }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WorkflowExecutionError)
      expect((error as WorkflowExecutionError).cause).toBeInstanceOf(InvalidOptionsError)
      expect(innerAttempts).toBe(1)
      expect(await client.getStatus('rp-inner')).toBe('FAILED')
    })

    it('gives the fingerprints recorded at submission, and each step its own, continuations included', async () => {
      await expect(runtime.run(top(2), { workflowId: 'rp-fp' })).resolves.toBe(8)
      const { runtime: info } = await client.getMetadata('rp-fp')
      expect(Object.keys(info?.steps ?? {})).toEqual(['rp-top'])
      for (const fingerprint of Object.values(info?.steps ?? {}))
        expect(fingerprint).toMatch(/^[0-9a-f]{16}$/)
      const graph = await client.getGraph('rp-fp')
      const views = [...graph.byId.values()]
      // rp-top's continuation holds rp-leaf and rp-middle, whose continuation holds rp-leaf again.
      expect(views.map((v) => v.name).sort()).toEqual(['rp-leaf', 'rp-leaf', 'rp-middle', 'rp-top'])
      for (const view of views) expect(view.fingerprint).toMatch(/^[0-9a-f]{16}$/)
      expect(graph.byId.get('rp-top')?.fingerprint).toBe(info?.steps?.['rp-top'])
    })

    it('keeps the fingerprints in the record when the graph is stored apart from it', async () => {
      const graph = wide(...Array.from({ length: 400 }, (_, i) => plain(i)))
      await expect(runtime.run(graph, { workflowId: 'rp-wide' })).resolves.toBe(400)
      const stored = JSON.parse(
        new TextDecoder().decode((await storage.get(storeKeys.workflow('rp-wide')))?.data),
      )
      expect(typeof stored.graph).toBe('string')
      const { runtime: info } = await client.getMetadata('rp-wide')
      expect(Object.keys(info?.steps ?? {}).sort()).toEqual(['rp-plain', 'rp-wide'])
    })
  })
}
