// The `wf` command, spawned, on a folder with an unreadable workflow record and the leftovers of
// one deleted by hand: `list` and `resume-all` go on and name what they skipped (exit 3),
// `delete --force` clears it, `wf doctor [--fix]` reports and repairs; and the project config
// file (wf.config.json, package.json's `wf`), TypeScript step modules, and readable messages.

import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type Storage, storeKeys } from '@wf/core'
import { fromUri } from '@wf/storage-fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { main } from './cli/program.js'
import { type CliResult, runFixture, runWf } from './test-support/cli-run.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const _bin = join(here, '../bin/wf.js')
const fixtures = join(here, 'test-support/fixtures')
const steps = join(fixtures, 'steps.mjs')
const GARBLE = new TextEncoder().encode('{"v":1,"workflowId":"w-')

let app: string
let data: string

function wf(args: string[], env: Record<string, string> = {}, cwd = app): Promise<CliResult> {
  return runWf(args, { cwd, env })
}

async function create(folder: string, ...scenarios: string[]): Promise<void> {
  await runFixture('create.mjs', [folder, ...scenarios])
}

async function open(folder: string): Promise<Storage> {
  return fromUri(pathToFileURL(folder).href)
}

describe('the wf command and unreadable records', { timeout: 60_000 }, () => {
  beforeAll(async () => {
    app = await mkdtemp(join(tmpdir(), 'wf-cli-corrupt-'))
    await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(app, 'node_modules/@wf/storage-fs'), 'dir')
  })
  afterAll(() => rm(app, { recursive: true, force: true }))
  beforeEach(async () => {
    data = await mkdtemp(join(app, 'data-'))
    await create(data, 'ok', 'failed')
    // w-failed's record garbled; w-ok kept; a third one whose record was deleted by hand.
    const storage = await open(data)
    await storage.put(storeKeys.workflow('w-failed'), GARBLE)
    await storage.close?.()
  })

  it('lists the readable workflows and names the unreadable ones on stderr, exiting 3', async () => {
    const text = await wf(['--storage', data, 'list', '-l'])
    expect(text.code).toBe(3)
    expect(text.stdout).toMatch(/^w-ok +SUCCESSFUL/m)
    expect(text.stdout).not.toMatch(/w-failed/)
    expect(text.stderr).toMatch(
      /^wf: skipped workflows\/w-failed\/workflow \(workflow w-failed\): .*not valid JSON/m,
    )
    expect(text.stderr).toMatch(/`wf doctor` lists them all, `wf delete w-failed --force` removes a workflow/)
    const json = await wf(['--storage', data, '--json', 'list', '--status', 'FAILED,SUCCESSFUL', '-l'])
    expect(json.code).toBe(3)
    expect(JSON.parse(json.stdout).map((w: { workflowId: string }) => w.workflowId)).toEqual(['w-ok'])
    expect(JSON.parse(json.stderr)).toEqual({
      errors: [
        {
          workflowId: 'w-failed',
          key: 'workflows/w-failed/workflow',
          code: 'WF_CORRUPT_RECORD',
          message: expect.stringMatching(/corrupt/),
        },
      ],
    })
  })

  it('resumes the readable workflows and reports the unreadable one', async () => {
    const storage = await open(data)
    await create(data, 'failed')
    await storage.put(storeKeys.workflow('w-failed'), GARBLE)
    await storage.close?.()
    const all = await wf(['--storage', data, 'resume-all', '--include-failed', '--import', steps])
    expect(all.code).toBe(3)
    expect(all.stdout).toBe('no workflows to resume\n')
    expect(all.stderr).toMatch(/skipped workflows\/w-failed\/workflow/)
  })

  it('refuses to delete an unreadable workflow but with --force, which removes every key of it', async () => {
    const refused = await wf(['--storage', data, 'delete', 'w-failed'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/is corrupt.*`wf delete w-failed --force` removes that workflow/)
    const forced = await wf(['--storage', data, 'delete', 'w-failed', '--force'])
    expect(forced).toMatchObject({ code: 0, stdout: 'deleted w-failed\n' })
    const storage = await open(data)
    expect((await storage.list('workflows/w-failed/')).keys).toEqual([])
    expect((await storage.list('index/FAILED/')).keys).toEqual([])
    await storage.close?.()
    expect(await wf(['--storage', data, 'list'])).toMatchObject({ code: 0, stderr: '' })
  })

  it('wf doctor reports, and with --fix repairs the index and removes old orphans only', async () => {
    const storage = await open(data)
    // Deleted by hand long ago: a step record of an old run is all that is left, with its marker.
    const old = {
      v: 1,
      name: 'cli-num',
      kind: 'value',
      output: { inline: '1' },
      startTime: 1000,
      endTime: 2000,
      attempts: 1,
    }
    await storage.put(storeKeys.step('w-gone', 'cli-num'), new TextEncoder().encode(JSON.stringify(old)))
    await storage.put(storeKeys.index('SUCCESSFUL', 'w-gone'), new Uint8Array())
    // Deleted by hand just now: its steps are young, a submission may be in flight.
    const young = { ...old, startTime: Date.now(), endTime: Date.now() }
    await storage.put(storeKeys.step('w-young', 'cli-num'), new TextEncoder().encode(JSON.stringify(young)))
    await storage.put(storeKeys.index('RUNNING', 'w-young'), new Uint8Array())
    // Listed from its marker, unknown to status: the message says how to clear it.
    expect((await wf(['--storage', data, 'list'])).stdout).toMatch(/^w-gone +SUCCESSFUL/m)
    expect((await wf(['--storage', data, 'status', 'w-gone'])).stderr).toMatch(
      /no workflow with id "w-gone".*if `wf list` still shows it.*`wf delete w-gone --force` or `wf doctor --fix`/,
    )
    // A marker beside the right one.
    await storage.put(storeKeys.index('FAILED', 'w-ok'), new Uint8Array())
    const report = await wf(['--storage', data, 'doctor'])
    expect(report.code).toBe(3)
    expect(report.stdout).toMatch(
      /unreadable records \(1\)\n {2}workflows\/w-failed\/workflow: .*\n {4}`wf delete w-failed --force`/,
    )
    expect(report.stdout).toMatch(/^ {2}w-gone: 2 keys, last written .*: removable: run `wf doctor --fix`$/m)
    expect(report.stdout).toMatch(/^ {2}w-young: 2 keys, .*kept: written less than 10 lease periods ago/m)
    expect(report.stdout).toMatch(
      /^ {2}w-ok: markers FAILED, SUCCESSFUL, its record says SUCCESSFUL: run `wf doctor --fix`$/m,
    )
    const fixed = JSON.parse((await wf(['--storage', data, '--json', 'doctor', '--fix'])).stdout)
    expect(
      fixed.orphans.map((o: { workflowId: string; removed?: boolean }) => [o.workflowId, o.removed ?? false]),
    ).toEqual([
      ['w-gone', true],
      ['w-young', false],
    ])
    expect(fixed.staleIndex).toMatchObject([{ workflowId: 'w-ok', repaired: true }])
    expect((await storage.list('workflows/w-gone/')).keys).toEqual([])
    expect((await storage.list('index/FAILED/')).keys).toEqual(['index/FAILED/w-failed'])
    expect(await storage.get(storeKeys.workflow('w-failed'))).toBeDefined()
    await storage.close?.()
    expect((await wf(['--storage', data, 'status', 'w-ok'])).stdout).toBe('SUCCESSFUL\n')
  })
})

describe('the wf command in a project', { timeout: 60_000 }, () => {
  let project: string
  beforeAll(async () => {
    project = await mkdtemp(join(tmpdir(), 'wf-cli-project-'))
    await mkdir(join(project, 'node_modules/@wf'), { recursive: true })
    await symlink(join(here, '../../storage-fs'), join(project, 'node_modules/@wf/storage-fs'), 'dir')
    await create(join(project, 'store'), 'ok', 'failed')
    await mkdir(join(project, 'src/deep'), { recursive: true })
  })
  afterAll(() => rm(project, { recursive: true, force: true }))

  it('reads storage and import from wf.config.json up the tree, says which storage on stderr, and lets WF_STORAGE and --storage win', async () => {
    await writeFile(join(project, 'wf.config.json'), JSON.stringify({ storage: './store', import: [steps] }))
    const listed = await wf(['list'], {}, join(project, 'src/deep'))
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(/^w-ok +SUCCESSFUL/m)
    expect(listed.stderr.split('\n')[0]).toBe(
      `wf: storage ${join(project, 'store')} (from ${join(project, 'wf.config.json')})`,
    )
    // Not with --json: stderr stays one JSON error object for scripts.
    const json = await wf(['--json', 'list'], {}, project)
    expect(json).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(json.stdout)).toHaveLength(2)
    const other = await mkdtemp(join(project, 'other-'))
    const env = await wf(['list'], { WF_STORAGE: other }, project)
    expect(env).toMatchObject({ code: 0, stdout: 'no workflows\n' })
    expect(env.stderr).toBe(`wf: storage ${other} (from WF_STORAGE)\n`)
    expect(
      await wf(['--storage', other, 'list'], { WF_STORAGE: join(project, 'store') }, project),
    ).toMatchObject({
      stdout: 'no workflows\n',
      stderr: '',
    })
    // The config's import stands in for --import.
    const resumed = await wf(['--json', 'resume-all', '--include-failed'], {}, project)
    expect(JSON.parse(resumed.stdout)).toEqual([
      { workflowId: 'w-failed', status: 'SUCCESSFUL', output: 5, jsonable: true },
    ])
    await rm(join(project, 'wf.config.json'))
  })

  it('reads the wf field of the nearest package.json, and names the default storage when there is no config', async () => {
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'p', wf: { storage: 'store' } }))
    const listed = await wf(['list'], {}, join(project, 'src'))
    expect(listed.stdout).toMatch(/^w-ok +SUCCESSFUL/m)
    expect(listed.stderr).toBe(
      `wf: storage ${join(project, 'store')} (from ${join(project, 'package.json')})\n`,
    )
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'p', wf: { storage: 3 } }))
    const bad = await wf(['list'], {}, project)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/"storage" in the "wf" field of .*package.json must be a non-empty string/)
    await rm(join(project, 'package.json'))
    // TMPDIR moves the default folder into this test's own.
    const fallback = await wf(['list'], { TMPDIR: project }, project)
    expect(fallback.stderr.split('\n')[0]).toMatch(
      /^wf: storage .*wf[/\\]workflow_data \(the default: no --storage, WF_STORAGE or wf.config.json/,
    )
  })

  it('says how to load TypeScript step modules, and uses the project tsx when there is one', async () => {
    const ts = join(project, 'steps.ts')
    // Plain JavaScript in a .ts file: the stand-in loader below does not strip types.
    await writeFile(ts, `export * from ${JSON.stringify(pathToFileURL(steps).href)}\n`)
    const store = join(project, 'store')
    const missing = await wf(['--storage', store, 'show', 'w-ok', '--import', './steps.ts'], {}, project)
    // Node 22.18+ and 24 strip types themselves (process.features.typescript): no loader needed.
    if ((process.features as { typescript?: string | false }).typescript) {
      expect(missing.code).toBe(0)
      expect(missing.stderr).not.toMatch(/cannot load TypeScript/)
    } else {
      expect(missing.code).toBe(1)
      expect(missing.stderr).toMatch(
        /could not import \.\/steps\.ts: Node .* cannot load TypeScript by itself.*npm i -D tsx.*NODE_OPTIONS='--import tsx'/,
      )
    }
    // A stand-in for tsx (not installable offline here): its esm/api registers a loader for .ts files.
    const tsx = join(project, 'node_modules/tsx')
    await mkdir(join(tsx, 'esm'), { recursive: true })
    await writeFile(
      join(tsx, 'package.json'),
      JSON.stringify({
        name: 'tsx',
        exports: { './esm/api': { require: './esm/api.cjs', import: './esm/api.cjs' } },
      }),
    )
    await writeFile(
      join(tsx, 'esm/api.cjs'),
      "const { register } = require('node:module'); const { pathToFileURL } = require('node:url')\nexports.register = () => register('./hooks.mjs', pathToFileURL(__filename))\n",
    )
    await writeFile(
      join(tsx, 'esm/hooks.mjs'),
      "import { readFileSync } from 'node:fs'\nexport async function load(url, context, next) {\n  if (url.endsWith('.ts')) return { format: 'module', source: readFileSync(new URL(url)), shortCircuit: true }\n  return next(url, context)\n}\n",
    )
    const loaded = await wf(['--storage', store, 'show', 'w-ok', '--import', './steps.ts'], {}, project)
    expect(loaded.stderr).toBe('')
    expect(loaded.code).toBe(0)
  })

  it('names --import when a step is not registered, and shortens long ids in messages', async () => {
    const store = await mkdtemp(join(project, 'failed-'))
    await create(store, 'failed')
    const without = await wf(['--storage', store, 'resume', 'w-failed'], {}, project)
    expect(without.code).toBe(1)
    expect(without.stderr).toMatch(
      /not registered.*pass the module that registers it with --import .*"import" in wf.config.json/,
    )
    const long = `order-${'x'.repeat(150)}-end`
    const unknown = await wf(['--storage', store, 'status', long], {}, project)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain(`"order-${'x'.repeat(34)}…${'x'.repeat(35)}-end"`)
    expect(unknown.stderr).not.toContain(long)
    const json = await wf(['--storage', store, '--json', 'status', long], {}, project)
    expect(JSON.parse(json.stderr).error.workflowId).toBe(long)
  })
})

describe('wf list on a terminal', () => {
  it('cuts long ids to the terminal width, and prints them whole when stdout is not a terminal', async () => {
    const { MemoryStorage, Runtime, step } = await import('@wf/core')
    const storage = new MemoryStorage()
    const one = step('tty-one', () => 1)
    const long = `tenant-${'a'.repeat(80)}-order-42`
    await new Runtime(storage).run(one(), { workflowId: long })
    const { registerStorageScheme } = await import('@wf/core')
    registerStorageScheme('ttytest', () => storage)
    const run = async (isTTY: boolean) => {
      let text = ''
      const stdout = {
        isTTY,
        columns: 60,
        write: (t: string) => {
          text += t
          return true
        },
      } as unknown as NodeJS.WriteStream
      const stderr = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream
      expect(
        await main(['node', 'wf', '--storage', 'ttytest://x', '--no-color', 'list'], { stdout, stderr }),
      ).toBe(0)
      return text.split('\n')
    }
    const tty = await run(true)
    expect(tty[1]).toMatch(/^tenant-a+…a+-order-42 {2}SUCCESSFUL$/)
    expect(tty[1]?.length).toBeLessThanOrEqual(60)
    expect((await run(false))[1]).toBe(`${long}  SUCCESSFUL`)
  })
})
