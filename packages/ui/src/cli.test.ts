// `wf ui` as a real process, in a fixture application where @wf/ui is installed (linked into its
// node_modules) and in one where it is not: it prints the URL with the token, serves the storage
// given by --storage, stops on SIGTERM, and says how to install @wf/ui when it is missing.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Runtime } from '@wf/core'
import { fromUri } from '@wf/storage-fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { request } from './test-support/harness.js'
import { add } from './test-support/steps.mjs'

const packageDir = fileURLToPath(new URL('..', import.meta.url))
const wfBin = fileURLToPath(new URL('../../client/bin/wf.js', import.meta.url))

let root: string
let app: string
let bare: string
let storageDir: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'wf-ui-cli-'))
  app = join(root, 'app')
  bare = join(root, 'bare')
  storageDir = join(root, 'data')
  for (const dir of [app, bare]) {
    await mkdir(dir, { recursive: true })
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'fixture', private: true, type: 'module' }),
    )
  }
  await mkdir(join(app, 'node_modules/@wf'), { recursive: true })
  await symlink(packageDir, join(app, 'node_modules/@wf/ui'), 'dir')
  const storage = await fromUri(`${pathToFileURL(storageDir).href}?durability=none`)
  await new Runtime(storage).run(add(41), { workflowId: 'from-cli' })
  await storage.close?.()
})

/** The environment without NODE_PATH: resolution from a folder then sees only its node_modules. */
function withoutNodePath(): NodeJS.ProcessEnv {
  const { NODE_PATH: _nodePath, ...env } = process.env
  return env
}

afterAll(async () => {
  await rm(root, { recursive: true, force: true, maxRetries: 3 })
})

/** Starts `wf ui …` in `cwd` and resolves with the process and its first stdout line. */
function startWf(args: string[], cwd: string): Promise<{ child: ChildProcess; line: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wfBin, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1', WF_STORAGE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      const end = stdout.indexOf('\n')
      if (end !== -1) resolve({ child, line: stdout.slice(0, end) })
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.on('exit', (code) => reject(new Error(`wf ui exited with ${code} before printing: ${stderr}`)))
  })
}

const exitOf = (child: ChildProcess): Promise<number | null> =>
  new Promise((resolve) => child.once('exit', (code) => resolve(code)))

describe('wf ui', () => {
  it('prints the URL with the token, serves the storage given, and stops on SIGTERM', async () => {
    const { child, line } = await startWf(['ui', '--storage', storageDir, '--port', '0'], app)
    try {
      const match = /^wf ui: (http:\/\/127\.0\.0\.1:(\d+)\/\?token=([\w-]+))$/.exec(line)
      expect(match, line).not.toBeNull()
      const port = Number(match?.[2])
      const token = match?.[3] ?? ''
      expect((await request(port, 'GET', '/api/workflows')).status).toBe(401)
      const reply = await request(port, 'GET', '/api/workflows', { authorization: `Bearer ${token}` })
      expect(reply.status).toBe(200)
      expect(reply.json.workflows).toEqual([
        expect.objectContaining({ workflowId: 'from-cli', status: 'SUCCESSFUL' }),
      ])
      const info = await request(port, 'GET', '/api/info', { authorization: `Bearer ${token}` })
      expect(info.json).toMatchObject({ readOnly: false, canResume: false })
    } finally {
      const exited = exitOf(child)
      child.kill('SIGTERM')
      expect(await exited).toBe(0)
    }
  })

  it('offers resume with --import (the modules that define the steps)', async () => {
    const steps = fileURLToPath(new URL('./test-support/steps.mjs', import.meta.url))
    const { child, line } = await startWf(
      ['ui', '--storage', storageDir, '--port', '0', '--import', steps],
      app,
    )
    try {
      const [, port, token] = /:(\d+)\/\?token=([\w-]+)$/.exec(line) ?? []
      const info = await request(Number(port), 'GET', '/api/info', { authorization: `Bearer ${token}` })
      expect(info.json).toMatchObject({ readOnly: false, canResume: true })
    } finally {
      const exited = exitOf(child)
      child.kill('SIGTERM')
      await exited
    }
  })

  it('takes --token, --read-only and --json', async () => {
    const token = 'a-token-given-on-the-command-line'
    const { child, line } = await startWf(
      ['ui', '--storage', storageDir, '--port', '0', '--token', token, '--read-only', '--json'],
      app,
    )
    try {
      const printed = JSON.parse(line) as { url: string; port: number }
      expect(printed.url).toBe(`http://127.0.0.1:${printed.port}/?token=${token}`)
      const info = await request(printed.port, 'GET', '/api/info', { authorization: `Bearer ${token}` })
      expect(info.json.readOnly).toBe(true)
    } finally {
      const exited = exitOf(child)
      child.kill('SIGTERM')
      await exited
    }
  })

  it('says in its help that --read-only leaves out every action: fork, events and schedules too', async () => {
    const help = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [wfBin, 'ui', '--help'],
        { cwd: app, env: { ...process.env, NO_COLOR: '1' } },
        (error, stdout) => (error ? reject(error) : resolve(stdout)),
      )
    })
    // Commander wraps the help to the terminal's width.
    expect(help.replace(/\s+/g, ' ')).toContain(
      '--read-only no actions: no cancel, resume, fork, delete or event, no pause, resume, trigger, backfill or delete of a schedule',
    )
  })

  it('says how to install @wf/ui, and exits 1, where it is not installed', async () => {
    const result = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [wfBin, 'ui', '--storage', storageDir, '--port', '0'],
        // Without the NODE_PATH pnpm's bin shims set, through which a hoisted @wf/ui resolves.
        { cwd: bare, env: { ...withoutNodePath(), NO_COLOR: '1' } },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr }),
      )
    })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('install @wf/ui: npm i -D @wf/ui')
  })
})
