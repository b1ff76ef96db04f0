// Durable functions (`workflow()`) across real processes, on a real folder and on the real S3
// gateway (when WF_S3_ENDPOINT is set): runners are child processes (fixtures/durable-child.mjs, on
// the built packages) SIGKILLed at random moments and followed by new ones until the workflow ends.
// Step bodies log when they start, so the test sees that no call whose record was committed before
// a kill starts again; what each key holds is read back from storage and compared with an
// uninterrupted run of the same function.
// Over 400 lines: each case needs its own fixture, kill schedule and read-back on both backends.

import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { defaultCodec } from '@wf/core'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { WorkflowClient } from './client.js'
import { openFolderPlace, openS3Place, type Place, s3, warnIfS3Skipped } from './test-support/places.js'
import { atScale } from './test-support/scale.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const childScript = join(here, 'test-support/fixtures/durable-child.mjs')

const LOOP = 'durable-child.loop'
const RACE = 'durable-child.race'
const NAP = 'durable-child.nap'
/** The calls side by side of each round of the race. */
const RACERS = 6

interface Backend {
  name: string
  available: boolean
  /** Rounds of the loop, each killed at random moments until it ends. */
  loopRounds: number
  /** Rounds of the race. */
  raceRounds: number
  /** Rounds of the function awaiting others. */
  childRounds: number
  /** Rounds run at once (each its own workflow and processes): S3's requests mostly wait. */
  parallel: number
  open(): Promise<Place>
}

const folder: Backend = {
  name: 'folder',
  available: true,
  loopRounds: atScale(30, 6),
  raceRounds: atScale(5, 2),
  childRounds: atScale(6, 2),
  parallel: 2,
  open: () => openFolderPlace('wf-durable-'),
}

const bucket: Backend = {
  name: 'S3',
  available: s3.available,
  loopRounds: atScale(10, 3),
  raceRounds: atScale(3, 1),
  childRounds: atScale(3, 1),
  parallel: 5,
  open: () => openS3Place('wf-durable'),
}

warnIfS3Skipped('durable-processes.test.ts')

interface Child {
  proc: ChildProcess
  out(): string
  err(): string
  /** Resolves once the child printed a line starting with `prefix` (rejects if it exits first). */
  printed(prefix: string, timeoutMs?: number): Promise<string>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILLs it and waits until it is gone. */
  kill(): Promise<void>
}

/** One line of a step log. */
interface Line {
  what: 'start' | 'end'
  stepId: string
  pid: number
  workflowId: string
  arg: string
}

/** What a run of a function committed at its keys: each key's step name and call hash. */
type Calls = Map<string, { name: string; call: string | undefined; value: unknown }>

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `round(0)` … `round(count - 1)`, at most `parallel` of them at once. */
async function rounds(count: number, parallel: number, round: (n: number) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < count) await round(next++)
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, lane))
}

describe.each([folder, bucket])('durable functions across processes, on $name', (backend) => {
  let place: Place
  let work: string
  let client: WorkflowClient
  let seq = 0
  const spawned: ChildProcess[] = []

  beforeAll(async () => {
    if (!backend.available) return
    place = await backend.open()
    work = await mkdtemp(join(tmpdir(), 'wf-durable-work-'))
    client = new WorkflowClient({ storage: place.storage })
  })
  // A failed test leaves its processes behind: they would run the next test's workflows.
  afterEach(async () => {
    const alive = spawned.splice(0).filter((proc) => proc.exitCode === null && proc.signalCode === null)
    await Promise.all(
      alive.map((proc) => {
        const gone = new Promise((resolve) => proc.once('close', resolve))
        proc.kill('SIGKILL')
        return gone
      }),
    )
  })
  afterAll(async () => {
    if (!backend.available) return
    await client.close()
    await place.close()
    await rm(work, { recursive: true, force: true })
  })

  /** A fresh step log: `read()` gives its whole lines, oldest first. */
  function stepLog(): { path: string; read(): Line[] } {
    const path = join(work, `steps-${++seq}.log`)
    writeFileSync(path, '')
    const read = (): Line[] =>
      readFileSync(path, 'utf8')
        .split('\n')
        .map((line) => line.split(' '))
        // A process killed in the middle of a write leaves a line cut short.
        .filter((fields) => fields.length === 5)
        .map(([what, stepId, pid, workflowId, arg]) => ({
          what: what as Line['what'],
          stepId: stepId as string,
          pid: Number(pid),
          workflowId: workflowId as string,
          arg: arg as string,
        }))
    return { path, read }
  }

  function child(args: string[], log: string, env: Record<string, string> = {}): Child {
    const proc = spawn(process.execPath, [childScript, args[0] as string, place.uri, ...args.slice(1)], {
      env: {
        ...process.env,
        WF_DURABLE_LOG: log,
        ...s3.childEnv,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    spawned.push(proc)
    let out = ''
    let err = ''
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
    })
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString()
    })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once('close', (code, signal) => resolve({ code, signal })),
    )
    const printed = async (prefix: string, timeoutMs = 30_000): Promise<string> => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const line = out.split('\n').find((l) => l.startsWith(prefix))
        if (line !== undefined) return line
        if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline)
          throw new Error(`the child did not print "${prefix}": stdout ${out} stderr ${err}`)
        await pause(10)
      }
    }
    const kill = async () => {
      proc.kill('SIGKILL')
      await exited
    }
    return { proc, out: () => out, err: () => err, printed, exited, kill }
  }

  /** The committed records of `workflowId` under function `fn`: each call's name, hash and outcome. */
  async function callsOf(workflowId: string, fn: string): Promise<Calls> {
    const store = await client.runtime.store()
    const calls: Calls = new Map()
    const ids = (await store.listStepIds(workflowId)).filter((id) => id.startsWith(`${fn}~`))
    await Promise.all(
      ids.map(async (id) => {
        const record = await store.readStep(workflowId, id)
        if (record === undefined) throw new Error(`no record at ${id}`)
        const inline = (record.output as { inline?: string } | undefined)?.inline
        calls.set(id, {
          name: record.name,
          call: record.call,
          value: inline === undefined ? undefined : defaultCodec.decode(inline),
        })
      }),
    )
    return new Map([...calls.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }

  /** The output a child printed (`output <json>`), failing on `error …` or no output. */
  async function outputOf(runner: Child): Promise<unknown> {
    await runner.exited
    const line = runner
      .out()
      .split('\n')
      .find((l) => l.startsWith('output ') || l.startsWith('error '))
    if (line === undefined || !line.startsWith('output '))
      throw new Error(`the runner did not end with an output: ${runner.out()} ${runner.err()}`)
    return JSON.parse(line.slice('output '.length))
  }

  /**
   * Runs `args` (a `run` of the workflow) in a new process, SIGKILLs it when `killWhen` resolves,
   * and follows it with new processes (`resume`, or `run` again when the first was killed before
   * the workflow was stored) until one ends, at most `kills` of them killed. After each kill, the
   * calls then committed are noted: none of them may start again in a later process.
   */
  async function untilItEnds(
    workflowId: string,
    args: string[],
    log: { path: string; read(): Line[] },
    kills: number,
    killWhen: (runner: Child) => Promise<unknown>,
  ): Promise<{ output: unknown; killed: number; lines: Line[] }> {
    /** Each committed call and the number of log lines written when it was seen committed. */
    const committedAt = new Map<string, number>()
    const store = await client.runtime.store()
    let killed = 0
    for (;;) {
      const stored = killed > 0 && (await store.readWorkflow(workflowId)) !== undefined
      const runner = child(stored ? ['resume', workflowId] : args, log.path)
      if (killed < kills) {
        const ended = await Promise.race([runner.exited.then(() => true), killWhen(runner).then(() => false)])
        // Gone by itself meanwhile: it ended, and its output is checked below.
        if (!ended && runner.proc.exitCode === null && runner.proc.signalCode === null) {
          await runner.kill()
          killed++
          // The process is gone: what it committed is final, and its log lines are all written.
          const lines = log.read().length
          for (const id of await store.listStepIds(workflowId))
            if (!committedAt.has(id)) committedAt.set(id, lines)
          continue
        }
      }
      const output = await outputOf(runner)
      const lines = log.read()
      const again = lines.filter(
        (line, at) =>
          line.what === 'start' &&
          committedAt.has(line.stepId) &&
          at >= (committedAt.get(line.stepId) as number),
      )
      expect(again, `calls committed before a kill started again in ${workflowId}`).toEqual([])
      return { output, killed, lines }
    }
  }

  /**
   * Resolves at a random point of `runner`'s run, whatever the machine's speed: once its runtime is
   * ready (a kill while Node starts would test nothing) and 0 to `steps` of its steps have ended
   * (or it has exited), a random moment later.
   */
  async function afterSomeSteps(runner: Child, log: { read(): Line[] }, steps: number): Promise<void> {
    await runner.printed('started')
    const ended = Math.floor(Math.random() * (steps + 1))
    await vi.waitFor(
      () => {
        if (runner.proc.exitCode !== null || runner.proc.signalCode !== null) return
        const mine = log.read().filter((l) => l.what === 'end' && l.pid === runner.proc.pid)
        expect(mine.length).toBeGreaterThanOrEqual(ended)
      },
      { timeout: 60_000, interval: 5 },
    )
    await pause(Math.random() * 30)
  }

  it.skipIf(!backend.available)(
    `a loop of 20 awaited steps with a branch, calls side by side and a call of a graph, SIGKILLed at random moments over ${backend.loopRounds} rounds and resumed by new processes: no committed call starts again, the result and every key are as an uninterrupted run's`,
    { timeout: 150_000 },
    async () => {
      const expected = {
        total: 1190,
        parts: ['x:1190', 'y:1190', 'z:1190'],
        pair: ['p:1190', 'q:1190'],
      }
      const referenceLog = stepLog()
      const reference = child(['run', 'loop-reference', 'loop', '20'], referenceLog.path)
      expect(await outputOf(reference)).toEqual(expected)
      const want = await callsOf('loop-reference', LOOP)
      const names = (n: number) =>
        n === 24
          ? 'wf:call'
          : n === 10
            ? 'durable-child.bonus'
            : n > 20
              ? 'durable-child.part'
              : 'durable-child.inc'
      const topLevel = [...want.keys()].filter((id) => id.split('~').length === 2)
      expect(topLevel).toEqual(Array.from({ length: 25 }, (_, n) => `${LOOP}~${n}`).sort())
      for (const [n] of topLevel.entries()) expect(want.get(`${LOOP}~${n}`)?.name).toBe(names(n))
      // The graph call's two nodes and its collecting node.
      expect(want.size).toBe(25 + 3)
      // What each step was given, by its id (the loop's steps log their index, the others their label).
      const argOf = new Map(referenceLog.read().map((line) => [line.stepId, line.arg]))
      for (let n = 0; n < 24; n++) {
        const arg = n === 10 ? '45' : n > 20 ? ['x', 'y', 'z'][n - 21] : String(n > 10 ? n - 1 : n)
        expect(argOf.get(`${LOOP}~${n}`), `~${n}`).toBe(arg)
      }
      expect(
        new Set([...argOf.entries()].filter(([id]) => id.startsWith(`${LOOP}~24~`)).map(([, arg]) => arg)),
      ).toEqual(new Set(['p', 'q']))
      expect(argOf.size).toBe(26)

      let kills = 0
      await rounds(backend.loopRounds, backend.parallel, async (round) => {
        const workflowId = `loop-${round}`
        const log = stepLog()
        const ended = await untilItEnds(workflowId, ['run', workflowId, 'loop', '20'], log, 2, (runner) =>
          afterSomeSteps(runner, log, 26),
        )
        kills += ended.killed
        expect(ended.output).toEqual(expected)
        expect(await client.getStatus(workflowId)).toBe('SUCCESSFUL')
        // Each key holds the call the body asked for there, and each body saw the arguments of its key.
        expect(await callsOf(workflowId, LOOP)).toEqual(want)
        for (const line of ended.lines)
          expect(line.arg, `${line.what} ${line.stepId}`).toBe(argOf.get(line.stepId))
        // Every step ran (at least its last start is in the log) and ended.
        expect(new Set(ended.lines.filter((l) => l.what === 'end').map((l) => l.stepId)).size).toBe(26)
      })
      // Random moments: most rounds were killed at least once.
      expect(kills).toBeGreaterThanOrEqual(Math.ceil(backend.loopRounds / 2))
    },
  )

  it.skipIf(!backend.available)(
    'calls side by side that finish in a random order keep their keys on every replay: each key holds the call the body made there, and the workflow ends SUCCESSFUL',
    { timeout: 60_000 },
    async () => {
      const labels = Array.from({ length: RACERS }, (_, i) => `r${i}`)
      const expected = labels.map((label) => `${label}:1:2`)
      const argAt = (n: number) => (n < RACERS ? labels[n] : `${labels[n - RACERS]}:1`)
      const reference = child(['run', 'race-reference', 'race', String(RACERS)], stepLog().path)
      expect(await outputOf(reference)).toEqual(expected)
      const want = await callsOf('race-reference', RACE)
      expect(want.size).toBe(2 * RACERS)
      for (let n = 0; n < 2 * RACERS; n++)
        expect(want.get(`${RACE}~${n}`)).toMatchObject({
          name: 'durable-child.part',
          value: { ok: true, value: `${argAt(n)}:${n < RACERS ? 1 : 2}` },
        })

      let outOfOrder = false
      await rounds(backend.raceRounds, backend.parallel, async (round) => {
        const workflowId = `race-${round}`
        const log = stepLog()
        // Each process is killed once some of its calls have ended (and maybe committed) and others
        // have not; one with fewer calls left than that ends first.
        const after = 1 + Math.floor(Math.random() * (2 * RACERS - 2))
        const ended = await untilItEnds(
          workflowId,
          ['run', workflowId, 'race', String(RACERS)],
          log,
          2,
          (runner) =>
            vi.waitFor(
              () => {
                // Gone by itself: nothing more to wait for (it ended, and is not killed).
                if (runner.proc.exitCode !== null || runner.proc.signalCode !== null) return
                expect(
                  log.read().filter((l) => l.what === 'end' && l.pid === runner.proc.pid).length,
                ).toBeGreaterThanOrEqual(after)
              },
              { timeout: 30_000, interval: 5 },
            ),
        )
        expect(ended.killed).toBeGreaterThanOrEqual(1)
        expect(ended.output).toEqual(expected)
        expect(await client.getStatus(workflowId)).toBe('SUCCESSFUL')
        expect(await callsOf(workflowId, RACE)).toEqual(want)
        for (const line of ended.lines)
          expect(line.arg, `${line.what} ${line.stepId}`).toBe(
            argAt(Number(line.stepId.slice(`${RACE}~`.length))),
          )
        const ends = ended.lines
          .filter((l) => l.what === 'end')
          .map((l) => Number(l.stepId.slice(RACE.length + 1)))
        if (ends.some((n, at) => at > 0 && n < (ends[at - 1] as number))) outOfOrder = true
      })
      // The calls did finish out of order: their keys are not the order they came back in.
      expect(outOfOrder).toBe(true)
    },
  )

  it.skipIf(!backend.available)(
    `a durable function awaiting others (one, then two side by side), SIGKILLed at random moments over ${backend.childRounds} rounds: no committed call of parent or children starts again, and every key holds what an uninterrupted run's does`,
    { timeout: 90_000 },
    async () => {
      const expected = [10, 15, 21]
      const OUTER = 'durable-child.outer'
      const referenceLog = stepLog()
      expect(await outputOf(child(['run', 'outer-reference', 'outer', '5'], referenceLog.path))).toEqual(
        expected,
      )
      const want = await callsOf('outer-reference', OUTER)
      // Each child's calls are keyed under the parent's call of it: <parent>~<n>~<m>.
      const keys = [
        ...[0, 1, 2].map((n) => `${OUTER}~${n}`),
        ...[0, 1, 2].flatMap((n) => Array.from({ length: 5 + n }, (_, m) => `${OUTER}~${n}~${m}`)),
      ].sort()
      expect([...want.keys()]).toEqual(keys)
      for (const n of [0, 1, 2]) expect(want.get(`${OUTER}~${n}`)?.name).toBe('durable-child.inner')
      const argOf = new Map(referenceLog.read().map((line) => [line.stepId, line.arg]))
      for (const [id, arg] of argOf) expect(arg).toBe(id.slice(id.lastIndexOf('~') + 1))

      let kills = 0
      await rounds(backend.childRounds, backend.parallel, async (round) => {
        const workflowId = `outer-${round}`
        const log = stepLog()
        const ended = await untilItEnds(workflowId, ['run', workflowId, 'outer', '5'], log, 2, (runner) =>
          afterSomeSteps(runner, log, 18),
        )
        kills += ended.killed
        expect(ended.output).toEqual(expected)
        expect(await client.getStatus(workflowId)).toBe('SUCCESSFUL')
        expect(await callsOf(workflowId, OUTER)).toEqual(want)
        for (const line of ended.lines)
          expect(line.arg, `${line.what} ${line.stepId}`).toBe(argOf.get(line.stepId))
      })
      expect(kills).toBeGreaterThanOrEqual(1)
    },
  )

  it.skipIf(!backend.available)(
    'a durable function parked in a 2 s sleep (parkAfterMs: 0) whose process is SIGKILLed is woken by a worker process, and the steps before the sleep do not run again',
    { timeout: 45_000 },
    async () => {
      const workflowId = 'nap'
      const log = stepLog()
      const first = child(['run', workflowId, 'nap', '2000'], log.path, { WF_DURABLE_PARK: '0' })
      const store = await client.runtime.store()
      await vi.waitFor(
        async () => expect((await store.requireWorkflow(workflowId)).record.parkedUntil).toBeGreaterThan(0),
        { timeout: 20_000, interval: 20 },
      )
      await first.kill()
      const until = (await store.requireWorkflow(workflowId)).record.parkedUntil as number
      expect(await client.getStatus(workflowId)).toBe('PENDING')
      expect(log.read().map((l) => `${l.what} ${l.arg}`)).toEqual([
        'start before-1',
        'end before-1',
        'start before-2',
        'end before-2',
      ])

      const worker = child(['worker', '200', '4'], log.path)
      await worker.printed('ready')
      expect(await client.runtime.waitForResult(workflowId, 50)).toEqual({ woke: until, after: 'after' })
      const lines = log.read()
      expect(lines.filter((l) => l.arg.startsWith('before')).map((l) => l.pid)).toEqual(
        Array(4).fill(first.proc.pid),
      )
      expect(lines.filter((l) => l.arg === 'after').map((l) => `${l.what} ${l.stepId} ${l.pid}`)).toEqual([
        `start ${NAP}~3 ${worker.proc.pid}`,
        `end ${NAP}~3 ${worker.proc.pid}`,
      ])
      expect(await client.getStatus(workflowId)).toBe('SUCCESSFUL')
      await worker.kill()
    },
  )
})
