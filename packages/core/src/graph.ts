// Turns a graph of StepNodes into a plan: deterministic step ids computed locally (the name, then
// `_1`, `_2`… for repeats, in a fixed depth-first order), each node's arguments with the upstream
// nodes cut out as references, and the stored form of all that, so a new process can rebuild it.

import { createHash } from 'node:crypto'
import { type Codec, encodeValue } from './codec.js'
import { CorruptRecordError } from './errors.js'
import { fingerprintStep } from './runtime-info.js'
import { getRegisteredStep, type StepDefinition, StepNode, type StepOptions } from './step.js'

/** A place inside a step's arguments where an upstream output goes. */
type Path = (string | number)[]

/** One node of a plan: a step call with its id, its arguments and its place among the other nodes. */
export interface PlanNode {
  readonly id: string
  readonly name: string
  /** The registered step; `undefined` when a resumed graph names a step this process does not know. */
  readonly definition: StepDefinition | undefined
  readonly options: StepOptions
  /** Arguments with `null` where an upstream output goes; `undefined` until decoded from `encodedArgs`. */
  args: unknown[] | undefined
  readonly encodedArgs: string
  readonly refs: ReadonlyArray<{ readonly path: Path; readonly dep: PlanNode }>
  readonly deps: readonly PlanNode[]
  // Scheduling state, owned by the execution.
  dependents: PlanNode[]
  waiting: number
  consumers: number
  state: NodeState
  output: unknown
  /** Set on the root of a continuation: the node whose output this sub-graph's output becomes. */
  continuationOf: PlanNode | undefined
  startTime: number
  attempts: number
}

/** Where a node is in its life: planned, ready to run, running, replaced by a continuation, done. */
export const NodeState = { Planned: 0, Ready: 1, Running: 2, Expanded: 3, Done: 4 } as const
export type NodeState = (typeof NodeState)[keyof typeof NodeState]

/** The stored form of a plan (the workflow's graph, or a continuation's sub-graph). */
export interface StoredGraph {
  v: 1
  root: string
  nodes: StoredNode[]
  /** A fingerprint of each step's code and options (by step name), to notice code changes on resume. */
  fingerprints?: { [name: string]: string }
}

interface StoredNode {
  id: string
  name: string
  options: StoredOptions
  args: string
  refs: [Path, string][]
}

type StoredOptions = Omit<StepOptions, 'retryOn'>

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

interface Walked {
  copy: unknown[]
  found: { path: Path; node: StepNode }[]
}

/** Copies the arrays and plain objects of `args`, cutting out StepNodes (replaced by null) and noting where they were. */
function walkArgs(args: readonly unknown[]): Walked {
  const found: Walked['found'] = []
  const visit = (value: unknown, path: Path): unknown => {
    if (value instanceof StepNode) {
      found.push({ path: [...path], node: value })
      return null
    }
    if (Array.isArray(value)) {
      const out = new Array(value.length)
      for (let i = 0; i < value.length; i++) {
        path.push(i)
        out[i] = visit(value[i], path)
        path.pop()
      }
      return out
    }
    if (isPlainObject(value)) {
      const out: Record<string, unknown> = Object.getPrototypeOf(value) === null ? Object.create(null) : {}
      for (const key of Object.keys(value)) {
        path.push(key)
        out[key] = visit(value[key], path)
        path.pop()
      }
      return out
    }
    return value
  }
  const copy = visit(args, []) as unknown[]
  return { copy, found }
}

function storedOptions(options: StepOptions): StoredOptions {
  const { retryOn: _dropped, ...rest } = options
  return rest
}

function newPlanNode(
  id: string,
  name: string,
  definition: StepDefinition | undefined,
  options: StepOptions,
  args: unknown[] | undefined,
  encodedArgs: string,
  refs: { path: Path; dep: PlanNode }[],
): PlanNode {
  const deps = [...new Set(refs.map((r) => r.dep))]
  return {
    id,
    name,
    definition,
    options,
    args,
    encodedArgs,
    refs,
    deps,
    dependents: [],
    waiting: 0,
    consumers: 0,
    state: NodeState.Planned,
    output: undefined,
    continuationOf: undefined,
    startTime: 0,
    attempts: 0,
  }
}

/**
 * Plans the graph ending at `root`: assigns ids (under `prefix` for a continuation), encodes
 * arguments, and links nodes. Iterative, so a chain of 100,000 steps does not overflow the stack.
 */
export function planGraph(root: StepNode, prefix: string, codec: Codec): Plan {
  const planned = new Map<StepNode, PlanNode>()
  const used = new Set<string>()
  const counters = new Map<string, number>()
  const nodes: PlanNode[] = []
  const storedNodes: StoredNode[] = []
  const allocateId = (name: string): string => {
    let n = counters.get(name) ?? 0
    for (;;) {
      const id = `${prefix}${n === 0 ? name : `${name}_${n}`}`
      n++
      if (!used.has(id)) {
        counters.set(name, n)
        used.add(id)
        return id
      }
    }
  }
  const stack: { node: StepNode; walked?: Walked }[] = [{ node: root }]
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { node: StepNode; walked?: Walked }
    if (planned.has(top.node)) {
      stack.pop()
      continue
    }
    if (!top.walked) {
      top.walked = walkArgs(top.node.args)
      for (let i = top.walked.found.length - 1; i >= 0; i--) {
        const child = (top.walked.found[i] as { node: StepNode }).node
        if (!planned.has(child)) stack.push({ node: child })
      }
      continue
    }
    stack.pop()
    const { node, walked } = top
    const id = allocateId(node.name)
    const refs = walked.found.map((f) => ({ path: f.path, dep: planned.get(f.node) as PlanNode }))
    const encodedArgs = encodeValue(codec, walked.copy, `arguments of step "${id}"`, id)
    const plan = newPlanNode(id, node.name, node.definition, node.stepOptions, walked.copy, encodedArgs, refs)
    planned.set(node, plan)
    nodes.push(plan)
    storedNodes.push({
      id,
      name: node.name,
      options: storedOptions(node.stepOptions),
      args: encodedArgs,
      refs: refs.map((r) => [r.path, r.dep.id]),
    })
  }
  const rootPlan = planned.get(root) as PlanNode
  const fingerprints: { [name: string]: string } = {}
  for (const node of nodes) {
    if (node.definition && fingerprints[node.name] === undefined)
      fingerprints[node.name] = fingerprintStep(node.definition)
  }
  return { root: rootPlan, nodes, stored: { v: 1, root: rootPlan.id, nodes: storedNodes, fingerprints } }
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
  const args = node.args ?? (codec.decode(node.encodedArgs) as unknown[])
  node.args = undefined // used once: drop it so a long workflow's memory stays flat
  for (const { path, dep } of node.refs) {
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
