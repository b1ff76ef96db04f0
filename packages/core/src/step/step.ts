// `step()` and the lazy graph it builds: a StepFunction registered under a durable name, and the
// StepNode values calling it returns. Nothing runs until `run()`; the types carry each step's
// argument and result types through the graph.
// Over 400 lines: the argument and result types of a graph, with their TSDoc, are most of it.

import { isAbsolute } from 'node:path'
import {
  InvalidOptionsError,
  InvalidStepNameError,
  RuntimeNotLoadedError,
  StepAlreadyRegisteredError,
} from '../errors.js'
import { validateMetadata, validateStepName } from '../model/ids.js'
import { type IsolateResourceLimits, RESOURCE_LIMITS, type StoredStepOptions } from '../model/step-options.js'
import type { RunOptions, WorkflowHandle } from './runner.js'

/** Options of a step (Ray's step options). */
export interface StepOptions extends StoredStepOptions {
  /** Decides whether an error is retried. Default: every error is. */
  retryOn?: (error: unknown) => boolean
}

/**
 * What `run`, `submit` and `runAsync` of a `StepNode` hand the graph to: the runtime, which sets
 * itself (`setGraphRunner`) when runtime/runtime.ts loads. The step layer declares the interface
 * and the layer above fills it in, so a step needs no import of the runtime.
 */
export interface GraphRunner {
  run<T>(node: StepNode<T>, options?: RunOptions): Promise<T>
  submit<T>(node: StepNode<T>, options?: RunOptions): Promise<WorkflowHandle<T>>
  runAsync<T>(node: StepNode<T>, options?: RunOptions): Promise<WorkflowHandle<T>>
}

let runnerOf: (() => GraphRunner) | undefined

/** @internal Sets where graphs run: the runtime of `init()`, or one on the default storage. */
export function setGraphRunner(runner: () => GraphRunner): void {
  runnerOf = runner
}

function graphRunner(): GraphRunner {
  if (!runnerOf) throw new RuntimeNotLoadedError()
  return runnerOf()
}

/** The output of a step with `catchExceptions: true`. */
export type StepResult<T> = { ok: true; value: T } | { ok: false; error: Error }

type Primitive = string | number | boolean | bigint | symbol | null | undefined
type Opaque =
  | Date
  | RegExp
  | URL
  | Error
  | ArrayBufferView
  | ArrayBuffer
  | Map<unknown, unknown>
  | Set<unknown>
  | ((...args: never[]) => unknown)

/**
 * What a step accepts for a parameter of type `T`: the value, a `StepNode<T>`, or arrays and plain
 * objects whose members are themselves `Arg`s.
 */
export type Arg<T> =
  | T
  | StepNode<T>
  | (T extends Primitive | Opaque
      ? never
      : T extends readonly unknown[]
        ? { [K in keyof T]: Arg<T[K]> }
        : { [K in keyof T]: Arg<T[K]> })

/** The arguments of a step function, each one an `Arg`. */
export type Args<A extends readonly unknown[]> = { [K in keyof A]: Arg<A[K]> }

type Depth = [never, 0, 1, 2, 3, 4, 5, 6, 7]

/**
 * Whether a `StepNode` can be found in `T`, inside arrays and plain objects, looking `D` levels
 * deep (bounded: a recursive type such as a tree would otherwise never end).
 */
type HasNode<T, D extends number = 8> = [D] extends [never]
  ? false
  : T extends StepNode<unknown>
    ? true
    : T extends Primitive | Opaque
      ? false
      : T extends readonly unknown[]
        ? true extends HasNode<T[number], Depth[D]>
          ? true
          : false
        : T extends object
          ? true extends HasNode<T[keyof T], Depth[D]>
            ? true
            : false
          : false

/**
 * A value with each `StepNode<U>` in it, also inside arrays and plain objects, replaced by `U` (the
 * inverse of `Arg`). A type without a node in it is kept as it is (a class stays itself).
 */
export type Resolved<T> =
  T extends StepNode<infer U> ? U : HasNode<T> extends true ? { [K in keyof T]: Resolved<T[K]> } : T

/**
 * What a step body's return value makes the step's output: a returned `StepNode<U>` (a
 * continuation) gives `U`; nodes inside a returned array or plain object give their outputs in place.
 */
export type StepOutput<R> = Resolved<Awaited<R>>

declare const OUTPUT: unique symbol

/** A registered step: its durable name, its body and its default options. */
export interface StepDefinition {
  readonly name: string
  readonly fn: (...args: never[]) => unknown
  readonly options: Readonly<StepOptions>
  /** A durable function (`workflow()`): `fn` takes a `WorkflowContext` before its arguments. */
  readonly durable?: true
}

/**
 * A call of a step with its arguments: a node of the workflow graph. Nothing runs until `run()`.
 * `T` is the step's output type.
 */
export class StepNode<T = unknown> {
  declare readonly [OUTPUT]: T
  /** The step this node calls. */
  readonly definition: StepDefinition
  /** The arguments, values or other nodes, as given. */
  readonly args: readonly unknown[]
  /** The options of this call (the step's defaults with overrides applied). */
  readonly stepOptions: Readonly<StepOptions>

  /** @internal Use a step function to make nodes. */
  constructor(definition: StepDefinition, args: readonly unknown[], options: Readonly<StepOptions>) {
    this.definition = definition
    this.args = args
    this.stepOptions = options
  }

  /** The step's name. */
  get name(): string {
    return this.definition.name
  }

  /** A copy of this node with other options (`catchExceptions` changes the type: set it on the step function). */
  options(options: Omit<StepOptions, 'catchExceptions'>): StepNode<T> {
    return new StepNode<T>(this.definition, this.args, mergeOptions(this.stepOptions, options))
  }

  /** Runs the workflow whose final step is this node and resolves to its output. */
  run(options?: RunOptions): Promise<T> {
    return graphRunner().run(this, options)
  }

  /** Stores the workflow as PENDING for a worker to run (see `Runtime.submit`). */
  submit(options?: RunOptions): Promise<WorkflowHandle<T>> {
    return graphRunner().submit(this, options)
  }

  /** Submits the workflow durably, starts it, and resolves to a handle once it is stored. */
  runAsync(options?: RunOptions): Promise<WorkflowHandle<T>> {
    return graphRunner().runAsync(this, options)
  }
}

/** A registered step. Call it with arguments (values or nodes) to get a `StepNode`. */
export interface StepFunction<A extends readonly unknown[], O, C extends boolean = false> {
  (...args: Args<A>): StepNode<C extends true ? StepResult<O> : O>
  /** The step's durable name. */
  readonly stepName: string
  /** The step's default options. */
  readonly stepOptions: Readonly<StepOptions>
  /** A copy of this step function with other default options (same name, same body). */
  options<const NewC extends boolean | undefined = undefined>(
    options: StepOptions & { catchExceptions?: NewC },
  ): StepFunction<A, O, NewC extends boolean ? NewC : C>
}

const registry = new Map<string, StepDefinition>()

/** Built-in steps take names in this namespace, which `step()` refuses. */
const BUILTIN_PREFIX = 'wf:'

/**
 * The built-in step a continuation becomes when its body returns nodes inside arrays or plain
 * objects: its one argument is that structure, so the graph layer cuts the nodes out as it does
 * any step's arguments, and its output is the structure with each node's output in place.
 */
const collect: StepDefinition = Object.freeze({
  name: `${BUILTIN_PREFIX}collect`,
  fn: (structure: unknown) => structure,
  options: Object.freeze({}),
})
registry.set(collect.name, collect)

/**
 * Registers one of wf's built-in steps (`wf:<name>`): sleep and the other nodes wf makes for its
 * users. Their names cannot be taken by `step()`, and their code is versioned with wf itself.
 */
export function builtinStep(name: string, fn: (...args: never[]) => unknown): StepDefinition {
  const definition: StepDefinition = Object.freeze({
    name: `${BUILTIN_PREFIX}${name}`,
    fn,
    options: Object.freeze({}),
  })
  registry.set(definition.name, definition)
  return definition
}

/** Whether `name` is one of wf's built-in steps (versioned with wf itself, so never fingerprinted). */
export function isBuiltinStepName(name: string): boolean {
  return name.startsWith(BUILTIN_PREFIX)
}

/** Whether `node` is a `collectNode`. */
export function isCollectNode(node: StepNode): boolean {
  return node.definition === collect
}

/** The node that turns `structure`, which holds StepNodes, into its value once they have run. */
export function collectNode(structure: unknown): StepNode {
  return new StepNode(collect, [structure], collect.options)
}

/** The step registered under `name`, if any (resume uses this to find a stored step's code). */
export function getRegisteredStep(name: string): StepDefinition | undefined {
  return registry.get(name)
}

/**
 * Registers `fn` as a step under `name`, the durable identity of its code (never derived from
 * `fn.name`, which minifiers change), and returns a step function.
 *
 * ```ts
 * const add = step('add', (a: number, b: number) => a + b)
 * const sum = await add(add(1, 2), 3).run({ workflowId: 'sum-1' }) // 6
 * ```
 */
export function step<A extends unknown[], R>(
  name: string,
  fn: (...args: A) => R,
  options: StepOptions & { catchExceptions: true },
): StepFunction<A, StepOutput<R>, true>
export function step<A extends unknown[], R>(
  name: string,
  fn: (...args: A) => R,
  options?: StepOptions,
): StepFunction<A, StepOutput<R>, false>
export function step<A extends unknown[], R>(
  name: string,
  fn: (...args: A) => R,
  options: StepOptions = {},
): StepFunction<A, StepOutput<R>, boolean> {
  return registerStep('step', name, fn, options, false) as unknown as StepFunction<A, StepOutput<R>, boolean>
}

/**
 * Registers a step (`step()`) or a durable function (`workflow()`, `durable`) under `name` and
 * returns its step function. `what` names the caller in errors.
 */
export function registerStep(
  what: string,
  name: string,
  fn: unknown,
  options: StepOptions,
  durable: boolean,
): StepFunction<never[], unknown, boolean> {
  validateStepName(name)
  if (name.startsWith(BUILTIN_PREFIX)) {
    throw new InvalidStepNameError(
      name,
      `names starting with "${BUILTIN_PREFIX}" are wf's own steps: pick another`,
    )
  }
  if (typeof fn !== 'function') throw new InvalidOptionsError(`${what}("${name}", fn): fn must be a function`)
  validateStepOptions(options, name)
  validateIsolation(options, name)
  const existing = registry.get(name)
  if (existing && (existing.fn !== fn || (existing.durable === true) !== durable))
    throw new StepAlreadyRegisteredError(name)
  const definition: StepDefinition =
    existing ??
    (durable
      ? { name, fn: fn as (...args: never[]) => unknown, options, durable: true }
      : { name, fn: fn as (...args: never[]) => unknown, options })
  registry.set(name, definition)
  return makeStepFunction(definition, options)
}

function makeStepFunction(definition: StepDefinition, options: Readonly<StepOptions>) {
  const call = (...args: unknown[]) => new StepNode(definition, args, options)
  return Object.assign(call, {
    stepName: definition.name,
    stepOptions: options,
    options: (more: StepOptions) => {
      validateStepOptions(more, definition.name)
      return makeStepFunction(definition, mergeOptions(options, more))
    },
  }) as unknown as StepFunction<never[], never, boolean>
}

function mergeOptions(base: Readonly<StepOptions>, more: StepOptions): StepOptions {
  validateStepOptions(more, 'options')
  const merged = {
    ...base,
    ...more,
    ...(more.backoff || base.backoff ? { backoff: { ...base.backoff, ...more.backoff } } : {}),
  }
  // Checked on the merged options: `.options({ isolate })` may rely on the step's own `module`.
  validateIsolation(merged, 'options')
  return merged
}

/** Throws `InvalidOptionsError` for options that make no sense, naming the option. */
export function validateStepOptions(options: StepOptions, where: string): void {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionsError(`${where}: step options must be an object`)
  }
  const nonNegativeInt = (value: unknown, label: string) => {
    if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
      throw new InvalidOptionsError(`${where}: ${label} must be a non-negative integer, got ${String(value)}`)
    }
  }
  nonNegativeInt(options.maxRetries, 'maxRetries')
  if (options.timeoutMs !== undefined) {
    nonNegativeInt(options.timeoutMs, 'timeoutMs')
    if (options.timeoutMs === 0) throw new InvalidOptionsError(`${where}: timeoutMs must be positive`)
  }
  if (options.backoff !== undefined) {
    nonNegativeInt(options.backoff.initialDelayMs, 'backoff.initialDelayMs')
    nonNegativeInt(options.backoff.maxDelayMs, 'backoff.maxDelayMs')
    const factor = options.backoff.factor
    if (factor !== undefined && (typeof factor !== 'number' || !(factor >= 1))) {
      throw new InvalidOptionsError(`${where}: backoff.factor must be a number >= 1`)
    }
  }
  if (options.retryOn !== undefined && typeof options.retryOn !== 'function') {
    throw new InvalidOptionsError(`${where}: retryOn must be a function (error) => boolean`)
  }
  for (const flag of ['catchExceptions', 'checkpoint', 'pipelineCheckpoints'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw new InvalidOptionsError(`${where}: ${flag} must be a boolean`)
    }
  }
  if (options.metadata !== undefined) validateMetadata(options.metadata, where)
  validateIsolateOptions(options, where)
}

// The isolate options are stored with the graph, so they must be plain JSON and checked here.
function validateIsolateOptions(options: StepOptions, where: string): void {
  const { isolate, module, env, execArgv, resourceLimits } = options
  if (isolate !== undefined && isolate !== 'thread' && isolate !== 'process') {
    throw new InvalidOptionsError(
      `${where}: isolate must be 'thread' or 'process', got ${JSON.stringify(isolate)}`,
    )
  }
  if (module !== undefined && !isModuleLocation(module)) {
    throw new InvalidOptionsError(
      `${where}: module must be a file: URL or an absolute path (pass import.meta.url), got ${JSON.stringify(module)}`,
    )
  }
  if (env !== undefined) {
    if (!isPlainObject(env) || !Object.values(env).every((value) => typeof value === 'string')) {
      throw new InvalidOptionsError(`${where}: env must be an object of string values`)
    }
  }
  if (execArgv !== undefined) {
    if (!Array.isArray(execArgv) || !execArgv.every((arg) => typeof arg === 'string')) {
      throw new InvalidOptionsError(`${where}: execArgv must be an array of strings`)
    }
  }
  if (resourceLimits !== undefined) {
    if (!isPlainObject(resourceLimits)) {
      throw new InvalidOptionsError(`${where}: resourceLimits must be an object`)
    }
    for (const [key, value] of Object.entries(resourceLimits)) {
      if (!RESOURCE_LIMITS.includes(key as keyof IsolateResourceLimits)) {
        throw new InvalidOptionsError(
          `${where}: resourceLimits.${key} is not a resource limit (use ${RESOURCE_LIMITS.join(', ')})`,
        )
      }
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
        throw new InvalidOptionsError(`${where}: resourceLimits.${key} must be a non-negative number`)
      }
    }
  }
}

/** Throws when `isolate` is set without a `module` to import in the isolate. */
function validateIsolation(options: StepOptions, where: string): void {
  if (options.isolate !== undefined && options.module === undefined) {
    throw new InvalidOptionsError(
      `${where}: isolate '${options.isolate}' needs module, the file that registers the step (module: import.meta.url)`,
    )
  }
}

function isModuleLocation(value: unknown): boolean {
  if (typeof value !== 'string') return false
  if (value.startsWith('file:')) return URL.canParse(value)
  return isAbsolute(value)
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Whether `value` is a `StepNode`. */
export function isStepNode(value: unknown): value is StepNode<unknown> {
  return value instanceof StepNode
}

/**
 * Whether `value` holds a StepNode inside its arrays and plain objects: a step body that returns
 * such a value continues into those nodes (`collectNode`). Cheap for the usual results: a
 * primitive is answered at once, and a structure is walked once (never through a cycle twice).
 */
export function holdsStepNode(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || value instanceof StepNode) return false
  return holds(value, new Set())
}

function holds(value: object, seen: Set<object>): boolean {
  if (seen.has(value)) return false
  seen.add(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      if (typeof item === 'object' && item !== null && (item instanceof StepNode || holds(item, seen)))
        return true
    }
    return false
  }
  const proto: unknown = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return false
  const record = value as Record<string, unknown>
  for (const key of Object.keys(record)) {
    const item = record[key]
    if (typeof item === 'object' && item !== null && (item instanceof StepNode || holds(item, seen)))
      return true
  }
  return false
}
