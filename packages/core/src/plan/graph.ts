// Turns a graph of StepNodes into a plan: deterministic step ids computed locally (the name, then
// `_1`, `_2`… for repeats, in a fixed depth-first order), each node's arguments with the upstream
// nodes cut out as references, and the stored form of all that, so a new process can rebuild it.
// Over 400 lines: planning, the stored form and its rebuild, with the types they share.

import { createHash } from 'node:crypto'
import { CorruptRecordError } from '../errors.js'
import { type Codec, encodeArguments } from '../model/codec.js'
import type { StoredStepOptions } from '../model/step-options.js'
import type { Path, StoredGraph, StoredNode } from '../model/stored-graph.js'
import { fingerprintStep } from '../step/fingerprint.js'
import {
  getRegisteredStep,
  isBuiltinStepName,
  type StepDefinition,
  StepNode,
  type StepOptions,
} from '../step/step.js'

/** Where an upstream output goes in a node's arguments. */
export interface PlanRef {
  readonly path: Path
  readonly dep: PlanNode
}

/**
 * One node of a plan: a step call with its id, its arguments and its place among the other nodes.
 * Once a node has started, the execution drops what it no longer needs (its arguments, its links
 * upstream), so a long chain's finished steps can be collected while it runs.
 */
export interface PlanNode {
  readonly id: string
  readonly name: string
  /** The registered step; `undefined` when a resumed graph names a step this process does not know. */
  readonly definition: StepDefinition | undefined
  readonly options: StepOptions
  /** Arguments with `null` where an upstream output goes; on a plan rebuilt from storage, decoded from `encodedArgs` when the node starts. */
  args: unknown[] | undefined
  /** The stored arguments, on a plan rebuilt from storage (a fresh plan has `args`). */
  encodedArgs: string | undefined
  refs: readonly PlanRef[]
  /** The distinct nodes of `refs`. */
  deps: readonly PlanNode[]
  // Scheduling state, owned by the execution.
  /** Nodes waiting for this one's output (`undefined` while none is linked). */
  dependents: PlanNode[] | undefined
  waiting: number
  consumers: number
  state: NodeState
  output: unknown
  /** Set on the root of a continuation: the node whose output this sub-graph's output becomes. */
  continuationOf: PlanNode | undefined
  /** Set on every node of a continuation: the step that returned it (a `catchExceptions` one catches its failures). */
  scope: PlanNode | undefined
  startTime: number
  attempts: number
  /** Called with the node's output when it completes (a durable function's call waits so). */
  onDone: ((output: unknown) => void) | undefined
  /**
   * With pipelined checkpoints: the write of this node's record (or of the records its value
   * comes from), while it is not known to be durable. `undefined`: durable, or nothing pipelined.
   */
  durable: NodeCheckpoint | undefined
}

/** A step record being written while its dependents already run (execution/checkpoints.ts). */
export interface NodeCheckpoint {
  /** Not durable yet, and not lost. */
  readonly pending: boolean
  /** Not accepted yet (its create-if-absent undecided), and not lost. */
  readonly undecided: boolean
  readonly lost: boolean
  /** Resolves to whether the record became durable. */
  wait(): Promise<boolean>
  /** Resolves to whether the record's write was accepted. */
  waitAccepted(): Promise<boolean>
}

/** Where a node is in its life: planned, ready to run, running, replaced by a continuation, done. */
export const NodeState = { Planned: 0, Ready: 1, Running: 2, Expanded: 3, Done: 4 } as const
export type NodeState = (typeof NodeState)[keyof typeof NodeState]

export interface Plan {
  root: PlanNode
  /** Every node, upstream before downstream. */
  nodes: PlanNode[]
  stored: StoredGraph
}

const MAX_PREFIX = 120

/** The id prefix of the nodes of a continuation of step `parentId` (hashed when it would grow too long). */
export function continuationPrefix(parentId: string): string {
  const prefix = `${parentId}~`
  return prefix.length <= MAX_PREFIX
    ? prefix
    : `h${createHash('sha256').update(parentId).digest('hex').slice(0, 24)}~`
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** The StepNodes found in a node's arguments, and where. */
interface Found {
  paths: Path[]
  nodes: StepNode[]
  /** How many of `paths` and `nodes` are this node's: the arrays are reused from node to node. */
  count: number
}

function addFound(found: Found, path: Path, node: StepNode): void {
  found.paths[found.count] = path
  found.nodes[found.count] = node
  found.count++
}

// Paths of top-level arguments (the usual place of an upstream node), shared by every plan: a
// 100,000-step chain would otherwise hold 100,000 copies of `[0]`.
const TOP_PATHS: Path[] = []
function topPath(i: number): Path {
  let path = TOP_PATHS[i]
  if (path === undefined) {
    path = [i]
    // Frozen: shared by every plan (and their stored forms), nobody may change one.
    if (i < 64) TOP_PATHS[i] = Object.freeze(path) as Path
  }
  return path
}

function isNested(value: unknown): boolean {
  return Array.isArray(value) || isPlainObject(value)
}

/**
 * Copies the arrays and plain objects of `args`, cutting out StepNodes (replaced by null) and
 * noting where they were in `found`.
 */
function walkArgs(args: readonly unknown[], found: Found): unknown[] {
  const copy = new Array(args.length)
  for (let i = 0; i < args.length; i++) {
    const value = args[i]
    if (value instanceof StepNode) {
      addFound(found, topPath(i), value)
      copy[i] = null
    } else if (isNested(value)) {
      copy[i] = walkNested(value, [i], found)
    } else {
      copy[i] = value
    }
  }
  return copy
}

function walkNested(value: unknown, path: Path, found: Found): unknown {
  if (value instanceof StepNode) {
    addFound(found, [...path], value)
    return null
  }
  if (Array.isArray(value)) {
    const out = new Array(value.length)
    for (let i = 0; i < value.length; i++) {
      path.push(i)
      out[i] = walkNested(value[i], path, found)
      path.pop()
    }
    return out
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {}
    for (const key of Object.keys(value)) {
      path.push(key)
      out[key] = walkNested(value[key], path, found)
      path.pop()
    }
    return out
  }
  return value
}

function storedOptions(options: StepOptions): StoredStepOptions {
  if (options.retryOn === undefined) return options
  const { retryOn: _dropped, ...rest } = options
  return rest
}

const NO_REFS: readonly PlanRef[] = Object.freeze([])
const NO_NODES: readonly PlanNode[] = Object.freeze([])
const NO_STORED_REFS: readonly [Path, string][] = Object.freeze([])

/** The distinct nodes of `refs`, in order. */
function depsOf(refs: readonly PlanRef[]): readonly PlanNode[] {
  if (refs.length === 0) return NO_NODES
  if (refs.length === 1) return [(refs[0] as PlanRef).dep]
  return [...new Set(refs.map((r) => r.dep))]
}

function newPlanNode(
  id: string,
  name: string,
  definition: StepDefinition | undefined,
  options: StepOptions,
  args: unknown[] | undefined,
  encodedArgs: string | undefined,
  refs: readonly PlanRef[],
): PlanNode {
  return {
    id,
    name,
    definition,
    options,
    args,
    encodedArgs,
    refs,
    deps: depsOf(refs),
    dependents: undefined,
    waiting: 0,
    consumers: 0,
    state: NodeState.Planned,
    output: undefined,
    continuationOf: undefined,
    scope: undefined,
    // Not 0: a field that starts as a small integer and then holds a timestamp changes its
    // representation, and V8 throws away the code optimized for the old one.
    startTime: Number.NaN,
    attempts: 0,
    onDone: undefined,
    durable: undefined,
  }
}

/**
 * Plans a call of one step whose arguments hold no node (a durable function's call of a step) under
 * `id`, with `options`; also returns its encoded arguments (what the call's hash is made of).
 */
export function planLeaf(
  step: StepNode,
  id: string,
  options: StepOptions,
  codec: Codec,
): { node: PlanNode; encodedArgs: string } {
  const args = step.args.slice()
  const encodedArgs = encodeArguments(codec, args, id)
  return { node: newPlanNode(id, step.name, step.definition, options, args, undefined, NO_REFS), encodedArgs }
}

/** A node with no arguments for `definition` under `id`: a durable function's call of a graph. */
export function syntheticNode(id: string, definition: StepDefinition, options: StepOptions): PlanNode {
  return newPlanNode(id, definition.name, definition, options, [], undefined, NO_REFS)
}

/** Forgets what a started node no longer needs: its links upstream (so finished steps can be collected). */
export function releaseInputs(node: PlanNode): void {
  node.refs = NO_REFS
  node.deps = NO_NODES
  node.args = undefined
  node.encodedArgs = undefined
}

/**
 * Plans the graph ending at `root`: assigns ids (under `prefix` for a continuation), encodes
 * arguments, and links nodes. Iterative, so a chain of 100,000 steps does not overflow the stack.
 * Two passes, each a small loop V8 optimizes early: the order of the nodes, then one plan node each.
 * `rootId`, when given, is the root's id (a durable function's call: its key).
 */
export function planGraph(root: StepNode, prefix: string, codec: Codec, rootId?: string): Plan {
  const { order, index } = upstreamFirst(root)
  const ids = new IdAllocator(prefix, order)
  const nodes: PlanNode[] = new Array(order.length)
  const storedNodes: StoredNode[] = new Array(order.length)
  const found: Found = { paths: [], nodes: [], count: 0 }
  for (let i = 0; i < order.length; i++) {
    const step = order[i] as StepNode
    const id = rootId !== undefined && i === order.length - 1 ? rootId : ids.next(step.name)
    found.count = 0
    const copy = walkArgs(step.args, found)
    const count = found.count
    const refs: PlanRef[] = count === 0 ? (NO_REFS as PlanRef[]) : new Array(count)
    const storedRefs: [Path, string][] = count === 0 ? (NO_STORED_REFS as [Path, string][]) : new Array(count)
    for (let r = 0; r < count; r++) {
      const dep = nodes[index.get(found.nodes[r] as StepNode) as number] as PlanNode
      const path = found.paths[r] as Path
      refs[r] = { path, dep }
      storedRefs[r] = [path, dep.id]
    }
    const encodedArgs = encodeArguments(codec, copy, id)
    nodes[i] = newPlanNode(id, step.name, step.definition, step.stepOptions, copy, undefined, refs)
    storedNodes[i] = {
      id,
      name: step.name,
      options: storedOptions(step.stepOptions),
      args: encodedArgs,
      refs: storedRefs,
    }
  }
  const rootPlan = nodes[nodes.length - 1] as PlanNode
  const fingerprints: { [name: string]: string } = {}
  for (const node of nodes) {
    // Built-in steps change only with wf, whose version the workflow's runtime record compares.
    if (node.definition && fingerprints[node.name] === undefined && !isBuiltinStepName(node.name))
      fingerprints[node.name] = fingerprintStep(node.definition)
  }
  return { root: rootPlan, nodes, stored: { v: 1, root: rootPlan.id, nodes: storedNodes, fingerprints } }
}

const VISITING = -1

/**
 * The nodes of the graph ending at `root`, each after the nodes its arguments refer to (depth
 * first, arguments in order: the order ids are given in), and each node's place in that order.
 */
function upstreamFirst(root: StepNode): { order: StepNode[]; index: Map<StepNode, number> } {
  const order: StepNode[] = []
  const index = new Map<StepNode, number>()
  const stack: StepNode[] = [root]
  while (stack.length > 0) {
    const node = stack[stack.length - 1] as StepNode
    const seen = index.get(node)
    if (seen === undefined) {
      index.set(node, VISITING)
      const from = stack.length
      pushChildren(node.args, stack, index)
      // Reversed in place, so the first argument's sub-graph is planned (and numbered) first.
      for (let i = from, j = stack.length - 1; i < j; i++, j--) {
        const swap = stack[i] as StepNode
        stack[i] = stack[j] as StepNode
        stack[j] = swap
      }
      continue
    }
    stack.pop()
    if (seen === VISITING) {
      index.set(node, order.length)
      order.push(node)
    }
  }
  return { order, index }
}

/** Pushes the StepNodes in `args` not met yet (also inside arrays and plain objects), in the order `walkArgs` finds them. */
function pushChildren(args: readonly unknown[], out: StepNode[], index: Map<StepNode, number>): void {
  for (let i = 0; i < args.length; i++) {
    const value = args[i]
    if (value instanceof StepNode) {
      if (index.get(value) === undefined) out.push(value)
    } else if (isNested(value)) pushNestedChildren(value, out, index)
  }
}

function pushNestedChildren(value: unknown, out: StepNode[], index: Map<StepNode, number>): void {
  if (value instanceof StepNode) {
    if (index.get(value) === undefined) out.push(value)
  } else if (Array.isArray(value)) for (const item of value) pushNestedChildren(item, out, index)
  else if (isPlainObject(value))
    for (const key of Object.keys(value)) pushNestedChildren(value[key], out, index)
}

/** Step ids: the name for the first call of a step, then `name_1`, `name_2`… skipping ids already given. */
class IdAllocator {
  readonly #prefix: string
  readonly #counters = new Map<string, number>()
  /** Every id given, kept only when two names can produce the same id (`a` and `a_1`). */
  readonly #used: Set<string> | undefined

  constructor(prefix: string, nodes: readonly StepNode[]) {
    this.#prefix = prefix
    const names = new Set<string>()
    for (const node of nodes) names.add(node.name)
    // `name_<n>` of one step can only be another step's id if that step's name ends in `_<digits>`.
    let clash = false
    for (const name of names) if (/_\d+$/.test(name)) clash = true
    this.#used = clash ? new Set() : undefined
  }

  next(name: string): string {
    let n = this.#counters.get(name) ?? 0
    for (;;) {
      const id = n === 0 ? this.#prefix + name : `${this.#prefix}${name}_${n}`
      n++
      if (this.#used === undefined || !this.#used.has(id)) {
        this.#counters.set(name, n)
        this.#used?.add(id)
        return id
      }
    }
  }
}

/** Rebuilds a plan from its stored form, finding each step's code in the registry by name. */
export function planFromStored(stored: StoredGraph, key: string): Plan {
  if (stored?.v !== 1 || !Array.isArray(stored.nodes)) {
    throw new CorruptRecordError(key, 'not a graph written by this version of wf')
  }
  const byId = new Map<string, PlanNode>()
  const nodes: PlanNode[] = []
  for (const s of stored.nodes) {
    const refs = s.refs.map(([path, depId]) => {
      const dep = byId.get(depId)
      if (!dep) throw new CorruptRecordError(key, `node "${s.id}" refers to unknown node "${depId}"`)
      return { path, dep }
    })
    const definition = getRegisteredStep(s.name)
    // Stored options win; code-only options (retryOn) come from the step as registered now.
    const options: StepOptions = { ...definition?.options, ...s.options }
    const plan = newPlanNode(s.id, s.name, definition, options, undefined, s.args, refs)
    byId.set(s.id, plan)
    nodes.push(plan)
  }
  const root = byId.get(stored.root)
  if (!root) throw new CorruptRecordError(key, `root node "${stored.root}" is missing`)
  return { root, nodes, stored }
}

/** The arguments of `node` with its upstream outputs put in place. */
export function resolveArgs(node: PlanNode, codec: Codec): unknown[] {
  const args = node.args ?? (codec.decode(node.encodedArgs as string) as unknown[])
  const refs = node.refs
  for (let r = 0; r < refs.length; r++) {
    const { path, dep } = refs[r] as PlanRef
    if (path.length === 1) {
      args[path[0] as number] = dep.output
      continue
    }
    let target = args as unknown as Record<string | number, unknown>
    for (let i = 0; i < path.length - 1; i++)
      target = target[path[i] as string | number] as Record<string, unknown>
    target[path[path.length - 1] as string | number] = dep.output
  }
  return args
}
