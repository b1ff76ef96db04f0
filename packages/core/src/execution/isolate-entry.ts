// The bootstrap of an isolated step, run as a worker thread or a forked child process: imports the
// step's module, finds the step by name in this copy of the registry, runs one attempt with its
// `currentStep()` context, and sends back the result or the error as default-codec text.

import { pathToFileURL } from 'node:url'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import {
  IsolateContinuationError,
  IsolateDecodeError,
  IsolateModuleError,
  StepAbortedError,
  StepNotRegisteredError,
} from '../errors.js'
import { defaultCodec, encodeValue } from '../model/codec.js'
import { stepContext } from '../step/context.js'
import { getRegisteredStep, holdsStepNode, isStepNode } from '../step/step.js'
import type { IsolateMessage, IsolateRequest } from './isolate.js'

const controller = new AbortController()

function abort(reason: string | undefined): void {
  if (controller.signal.aborted) return
  let error: unknown = new StepAbortedError()
  try {
    if (reason !== undefined) error = defaultCodec.decode(reason)
  } catch {
    // Keep the generic reason.
  }
  controller.abort(error)
}

async function runStep(request: IsolateRequest, where: string): Promise<unknown> {
  const { module, stepName, context } = request
  try {
    await import(module.startsWith('file:') ? module : pathToFileURL(module).href)
  } catch (error) {
    throw new IsolateModuleError(
      `step "${stepName}" runs in a ${where}, but its module ${module} could not be imported: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    )
  }
  const definition = getRegisteredStep(stepName)
  if (!definition) {
    throw new StepNotRegisteredError(
      stepName,
      '',
      `step "${stepName}" runs in a ${where}, but its module ${module} does not register it: set module to the file that calls step("${stepName}", ...), and make that file import the same @wf/core as ${import.meta.url}`,
    )
  }
  let args: unknown
  try {
    args = defaultCodec.decode(request.args)
  } catch (error) {
    throw new IsolateDecodeError(
      `the arguments of step "${context.stepId}" could not be decoded in its ${where}: isolated steps use the default codec, so a runtime codec's extra types cannot cross`,
      { cause: error },
    )
  }
  const fn = definition.fn as (...a: unknown[]) => unknown
  const value = await stepContext.run({ ...context, signal: controller.signal }, async () =>
    fn(...(args as unknown[])),
  )
  if (isStepNode(value) || holdsStepNode(value)) {
    throw new IsolateContinuationError(
      `step "${context.stepId}" runs in a ${where} and returned a StepNode (a continuation, maybe inside an array or object), which cannot leave it: an isolated step must return a value; return the continuation from a step that is not isolated`,
    )
  }
  return value
}

async function attempt(request: IsolateRequest, where: string): Promise<IsolateMessage> {
  try {
    const value = await runStep(request, where)
    return {
      type: 'result',
      ok: true,
      text: encodeValue(defaultCodec, value, 'result', request.context.stepId),
    }
  } catch (error) {
    return { type: 'result', ok: false, text: encodeError(error) }
  }
}

/** The error as codec text; one the codec cannot store whole keeps its name, message, stack and code. */
function encodeError(error: unknown): string {
  try {
    return defaultCodec.encode(error)
  } catch {
    const plain = new Error(error instanceof Error ? error.message : String(error))
    if (error instanceof Error) {
      plain.name = error.name
      plain.stack = error.stack
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string') Object.assign(plain, { code })
    }
    return defaultCodec.encode(plain)
  }
}

if (!isMainThread && parentPort) {
  const port = parentPort
  // The listener keeps the thread alive after the step returns: the runner terminates it.
  port.on('message', (message: IsolateMessage) => {
    if (message.type === 'abort') abort(message.reason)
  })
  void attempt(workerData as IsolateRequest, 'worker thread').then((message) => port.postMessage(message))
} else if (process.send) {
  const send = (message: IsolateMessage, then: () => void) => {
    if (!process.connected) return then()
    process.send?.(message, undefined, {}, then)
  }
  process.on('message', (message: IsolateMessage) => {
    if (message.type === 'abort') abort(message.reason)
    if (message.type !== 'run') return
    void attempt(message.request, 'child process').then((result) => send(result, () => process.exit(0)))
  })
  // The grace between SIGTERM and SIGKILL is the step's chance to act on its signal.
  process.on('SIGTERM', () => abort(undefined))
  // A Ctrl-C reaches the whole process group: the runner decides what happens to its step.
  process.on('SIGINT', () => {})
  // The runner is gone (it died or was killed): its step goes with it rather than run on orphaned.
  process.on('disconnect', () => process.exit(1))
  process.on('uncaughtException', (error) => {
    send({ type: 'crash', text: encodeError(error) }, () => process.exit(1))
  })
}
