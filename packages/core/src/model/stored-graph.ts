// The stored form of a plan: what `plan/graph.ts` writes and a new process rebuilds the plan from.

import type { StoredStepOptions } from './step-options.js'

/** A place inside a step's arguments where an upstream output goes. */
export type Path = (string | number)[]

/** The stored form of a plan (the workflow's graph, or a continuation's sub-graph). */
export interface StoredGraph {
  v: 1
  root: string
  nodes: StoredNode[]
  /** A fingerprint of each step's code and options (by step name), to notice code changes on resume. */
  fingerprints?: { [name: string]: string }
}

export interface StoredNode {
  id: string
  name: string
  options: StoredStepOptions
  args: string
  refs: [Path, string][]
}
