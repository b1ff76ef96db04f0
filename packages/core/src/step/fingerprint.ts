// A step's fingerprint: a hash of its code and options, recorded with the graph so that a resume
// notices changed code (runtime/runtime-info.ts compares them).

import { createHash } from 'node:crypto'
import type { StepDefinition } from './step.js'

const fingerprints = new WeakMap<StepDefinition, string>()

/** A short hash of a step's code and default options: changes when either does. */
export function fingerprintStep(definition: StepDefinition): string {
  let fp = fingerprints.get(definition)
  if (fp === undefined) {
    const { retryOn, ...options } = definition.options
    fp = createHash('sha256')
      .update(definition.fn.toString())
      .update('\0')
      .update(JSON.stringify(options))
      .update('\0')
      .update(retryOn ? retryOn.toString() : '')
      .digest('hex')
      .slice(0, 16)
    fingerprints.set(definition, fp)
  }
  return fp
}
