// Fork: a new workflow that keeps the results not downstream of the fork point and runs the rest
// again, on memory and on a real folder; `wf fork` on the command line.

import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  InvalidOptionsError,
  type StepNode,
  step,
  WorkflowAlreadyExistsError,
  WorkflowExecutionError,
  WorkflowStillActiveError,
} from '@wf/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { StepNotFoundError, WorkflowClient } from './index.js'
import { runWf } from './test-support/cli-run.js'
import { backends, folderStorage } from './test-support/harness.js'

const ran: string[] = []
let broken = new Set<number>()

const inc = step(
  'fork-test.inc',
  (previous: number, i: number) => {
    ran.push(`inc ${i}`)
    if (broken.has(i)) throw new Error(`step ${i} is broken`)
    return previous + i
  },
  { maxRetries: 0 },
)
const leaf = step(
  'fork-test.leaf',
  (i: number) => {
    ran.push(`leaf ${i}`)
    if (broken.has(i)) throw new Error(`leaf ${i} is broken`)
    return i * 10
  },
  { maxRetries: 0 },
)
const sum = step('fork-test.sum', (...values: number[]) => {
  ran.push('sum')
  return values.reduce((a, b) => a + b, 0)
})
const nested = step('fork-test.nested', (n: number) => {
  ran.push('nested')
  return sum(leaf(n), leaf(n + 1))
})
const big = step('fork-test.big', () => {
  ran.push('big')
  return 'x'.repeat(300 * 1024)
})
const size = step(
  'fork-test.size',
  (text: string, n: number) => {
    ran.push('size')
    if (broken.has(n)) throw new Error('size is broken')
    return text.length + n
  },
  { maxRetries: 0 },
)

function chain(length: number): StepNode<number> {
  let node: StepNode<number> | number = 0
  for (let i = 1; i <= length; i++) node = inc(node, i)
  return node as StepNode<number>
}

describe.each(backends)('fork on $name storage', (backend) => {
  let client: WorkflowClient
  let cleanup: () => Promise<void>

  beforeEach(async () => {
    const opened = await backend.open()
    cleanup = opened.cleanup
    client = new WorkflowClient({ storage: opened.storage })
    ran.length = 0
    broken = new Set()
  })
  afterEach(async () => {
    await client.runtime.close()
    await cleanup()
  })

  it('reruns a 20-step chain from the step that failed, once it is fixed, and nothing before it', async () => {
    broken = new Set([14])
    await expect(client.runtime.run(chain(20), { workflowId: 'chain' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    expect(ran).toEqual(Array.from({ length: 14 }, (_, i) => `inc ${i + 1}`))
    ran.length = 0
    broken = new Set()
    const forked = await client.fork<number>('chain')
    expect(forked.workflowId).toBe('chain-fork-1')
    expect(forked.forkedFrom).toEqual({ workflowId: 'chain', stepId: 'fork-test.inc_13' })
    expect(forked.kept).toHaveLength(13)
    expect(await forked.result()).toBe(210)
    expect(ran).toEqual(Array.from({ length: 7 }, (_, i) => `inc ${i + 14}`))
    expect((await client.getMetadata('chain-fork-1')).forkedFrom).toEqual(forked.forkedFrom)
    expect(await client.getStatus('chain')).toBe('FAILED')
    // A second fork gets the next id; a taken id is refused.
    expect((await client.fork('chain', { detach: true })).workflowId).toBe('chain-fork-2')
    await expect(client.fork('chain', { workflowId: 'chain-fork-1' })).rejects.toBeInstanceOf(
      WorkflowAlreadyExistsError,
    )
  })

  it('keeps the siblings of a step in a fan-out, and runs what joins them again', async () => {
    expect(await client.runtime.run(sum(leaf(1), leaf(2), leaf(3)), { workflowId: 'fan' })).toBe(60)
    ran.length = 0
    const forked = await client.fork<number>('fan', { fromStep: 'fork-test.leaf_1' })
    expect(await forked.result()).toBe(60)
    expect(ran.sort()).toEqual(['leaf 2', 'sum'])
  })

  it('forks from a step inside a continuation: the parent and the steps beside it are kept', async () => {
    expect(await client.runtime.run(sum(nested(1), leaf(7)), { workflowId: 'cont' })).toBe(100)
    ran.length = 0
    const graph = await client.getGraph('cont')
    const inner = [...graph.byId.values()].find(
      (v) => v.parentStepId !== undefined && v.name === 'fork-test.leaf',
    )
    expect(inner).toBeDefined()
    const forked = await client.fork<number>('cont', { fromStep: inner?.stepId as string })
    expect(await forked.result()).toBe(100)
    // `nested` is not run again, nor the other leaf of its continuation, nor leaf(7).
    expect(ran.filter((r) => r !== 'sum')).toHaveLength(1)
    expect(ran).not.toContain('nested')
    expect(ran).not.toContain('leaf 7')
  })

  it('copies kept results that live in blobs, so deleting the original breaks nothing', async () => {
    broken = new Set([1])
    await expect(client.runtime.run(size(big(), 1), { workflowId: 'blob' })).rejects.toBeInstanceOf(
      WorkflowExecutionError,
    )
    broken = new Set()
    ran.length = 0
    const forked = await client.fork<number>('blob', { workflowId: 'blob-2', detach: true })
    await client.delete('blob')
    expect(await client.resume('blob-2')).toBe(300 * 1024 + 1)
    expect(ran).toEqual(['size'])
    expect(forked.kept).toEqual(['fork-test.big'])
  })

  it('refuses a running workflow, an unknown step, and a SUCCESSFUL one without a step', async () => {
    expect(await client.runtime.run(leaf(1), { workflowId: 'done' })).toBe(10)
    await expect(client.fork('done')).rejects.toBeInstanceOf(InvalidOptionsError)
    await expect(client.fork('done', { fromStep: 'nope' })).rejects.toBeInstanceOf(StepNotFoundError)
    await client.runtime.submit(leaf(2), { workflowId: 'waiting' })
    await expect(client.fork('waiting', { fromStep: 'fork-test.leaf' })).rejects.toBeInstanceOf(
      WorkflowStillActiveError,
    )
    await expect(client.fork('done', { fromStep: 'fork-test.leaf', workflowId: 'bad/id' })).rejects.toThrow(
      /workflow id/,
    )
  })
})

describe('wf fork', () => {
  it('forks from the failed step, runs it and prints the output', async () => {
    const here = fileURLToPath(new URL('.', import.meta.url))
    const app = await mkdtemp(join(tmpdir(), 'wf-fork-cli-'))
    const data = join(app, 'data')
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
    const client = new WorkflowClient({ storage: await folderStorage(data) })
    try {
      await client.runtime.submit(leaf(4), { workflowId: 'cli-fork' })
      await client.cancel('cli-fork')
      const steps = join(here, 'test-support/fixtures/fork-steps.mjs')
      const forked = await runWf(['--storage', data, 'fork', 'cli-fork', '--import', steps], { cwd: app })
      expect(forked).toMatchObject({ code: 0 })
      expect(forked.stderr).toMatch(
        /forked cli-fork-fork-1 from cli-fork at step fork-test.leaf \(0 results kept\)/,
      )
      expect(forked.stdout).toBe('40\n')
    } finally {
      await client.runtime.close()
      await rm(app, { recursive: true, force: true })
    }
  })
})
