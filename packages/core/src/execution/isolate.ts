// Isolated steps (`isolate: 'thread' | 'process'`): one attempt runs in a worker thread or a child
// process that imports the step's module and runs the step by name (isolate-entry.ts). Only codec
// text crosses. The attempt settles only once its isolate is gone, so a retry never overlaps it.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { InvalidOptionsError, IsolateDecodeError, IsolateExitedError } from '../errors.js'
import { type Codec, defaultCodec } from '../model/codec.js'
import type { StepOptions } from '../step/step.js'

/** How long an aborted isolate may run after its step's signal aborts before it is ended by force. */
export const ABORT_GRACE_MS = 500

/** @internal What the isolate is asked to run (isolate-entry.ts). */
export interface IsolateRequest {
  /** The `module` option: a file URL or an absolute path. */
  module: string
  stepName: string
  /** The arguments, encoded with the runtime's codec. */
  args: string
  context: { workflowId: string; stepId: string; attempt: number }
}

/** @internal Messages between the runner and an isolate. */
export type IsolateMessage =
  | { type: 'run'; request: IsolateRequest }
  | { type: 'abort'; reason: string | undefined }
  | { type: 'result'; ok: boolean; text: string }
  | { type: 'crash'; text: string }

/** One attempt of an isolated step. */
export interface IsolatedAttempt {
  stepName: string
  options: Readonly<StepOptions>
  /** The arguments, encoded with `codec`. */
  args: string
  context: { workflowId: string; stepId: string; attempt: number }
  /** Aborting it (cancel, timeout) ends the isolate; the attempt then rejects with its reason. */
  signal: AbortSignal
  /** Decodes the error the step threw. */
  codec: Codec
}

// Compiled, this file sits next to isolate-entry.js. Run from source (vitest, tsx) there is no .js
// beside the .ts, and a worker cannot load TypeScript: use the build.
const ENTRY = new URL(
  import.meta.url.endsWith('.ts') ? '../../dist/execution/isolate-entry.js' : './isolate-entry.js',
  import.meta.url,
)

interface Isolate {
  /** Aborts the step's `currentStep().signal`. */
  abort(reason: string | undefined): void
  /** Ends the isolate now. */
  kill(): void
  /** The step returned: ends the isolate (a thread is terminated; a process exits by itself). */
  done(): void
}

interface IsolateEvents {
  message(message: IsolateMessage): void
  error(error: unknown): void
  exit(code: number | null, signal: string | null): void
}

/**
 * Runs one attempt of an isolated step and resolves to its result, encoded with the default codec;
 * rejects with the step's error (decoded with `codec`), `IsolateExitedError`, or the signal's reason.
 */
export function runIsolated(attempt: IsolatedAttempt): Promise<string> {
  const { options, signal, context, stepName } = attempt
  if (signal.aborted) return Promise.reject(signal.reason)
  const kind = options.isolate === 'process' ? 'process' : 'thread'
  if (options.module === undefined) {
    return Promise.reject(
      new InvalidOptionsError(
        `step "${stepName}" runs in a ${kind} but has no module option: set module to the file that registers it (import.meta.url)`,
      ),
    )
  }
  const request: IsolateRequest = { module: options.module, stepName, args: attempt.args, context }
  return new Promise<string>((resolve, reject) => {
    let outcome: { ok: boolean; text: string } | undefined
    let crash: unknown
    let aborted = false
    let settled = false
    let killTimer: ReturnType<typeof setTimeout> | undefined
    let isolate: Isolate | undefined

    const settle = (code: number | null, exitSignal: string | null) => {
      if (settled) return
      settled = true
      clearTimeout(killTimer)
      signal.removeEventListener('abort', onAbort)
      if (outcome?.ok) resolve(outcome.text)
      else if (outcome) reject(decodeError(attempt.codec, outcome.text))
      else if (aborted) reject(signal.reason)
      else
        reject(
          new IsolateExitedError(stepName, context.stepId, kind, { code, signal: exitSignal, cause: crash }),
        )
    }
    const killLater = () => {
      clearTimeout(killTimer)
      killTimer = setTimeout(() => isolate?.kill(), ABORT_GRACE_MS)
    }
    const onAbort = () => {
      if (outcome || settled) return
      aborted = true
      isolate?.abort(encodeReason(signal.reason))
      killLater()
    }
    const events: IsolateEvents = {
      message(message) {
        if (message.type === 'crash') crash = decodeError(attempt.codec, message.text)
        if (message.type !== 'result' || outcome || aborted) return
        outcome = { ok: message.ok, text: message.text }
        isolate?.done()
        killLater()
      },
      error(error) {
        crash ??= error
      },
      exit: settle,
    }
    try {
      isolate =
        kind === 'process' ? startProcess(request, options, events) : startThread(request, options, events)
    } catch (error) {
      // A bad execArgv for a thread, or a spawn that failed: the attempt fails like a thrown error.
      settled = true
      reject(error)
      return
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function startThread(
  request: IsolateRequest,
  options: Readonly<StepOptions>,
  events: IsolateEvents,
): Isolate {
  const worker = new Worker(ENTRY, {
    workerData: request,
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    ...(options.execArgv ? { execArgv: options.execArgv } : {}),
    ...(options.resourceLimits ? { resourceLimits: options.resourceLimits } : {}),
  })
  worker.on('message', events.message)
  worker.on('error', events.error)
  worker.on('exit', (code) => events.exit(code, null))
  const end = () => void worker.terminate()
  return {
    abort: (reason) => worker.postMessage({ type: 'abort', reason } satisfies IsolateMessage),
    kill: end,
    done: end,
  }
}

function startProcess(
  request: IsolateRequest,
  options: Readonly<StepOptions>,
  events: IsolateEvents,
): Isolate {
  const execArgv = [...(options.execArgv ?? process.execArgv)]
  const heap = options.resourceLimits?.maxOldGenerationSizeMb
  if (heap !== undefined) execArgv.push(`--max-old-space-size=${heap}`)
  const child = fork(fileURLToPath(ENTRY), [], {
    env: options.env ? { ...process.env, ...options.env } : process.env,
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  // A send to a process that already died fails; its exit tells what happened.
  const send = (message: IsolateMessage) => {
    if (child.connected) child.send(message, () => {})
  }
  child.on('message', (message) => events.message(message as IsolateMessage))
  child.on('error', events.error)
  // 'close', not 'exit': it comes after the last message on the IPC channel.
  child.on('close', (code, signal) => events.exit(code, signal))
  send({ type: 'run', request })
  return {
    abort(reason) {
      send({ type: 'abort', reason })
      child.kill('SIGTERM')
    },
    kill: () => void child.kill('SIGKILL'),
    done: () => {},
  }
}

function decodeError(codec: Codec, text: string): unknown {
  try {
    return codec.decode(text)
  } catch (error) {
    return new IsolateDecodeError('an isolated step failed with an error that could not be decoded', {
      cause: error,
    })
  }
}

/** The abort reason, for the isolate's signal (it crosses with the default codec, on both sides). */
function encodeReason(reason: unknown): string | undefined {
  try {
    return defaultCodec.encode(reason)
  } catch {
    return undefined
  }
}
