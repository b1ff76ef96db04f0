// step/ declares the runner that StepNode.run uses and the runtime fills it in when it loads: this
// file imports the step layer alone, as a bundler that dropped runtime/runtime.js would.
import { describe, expect, it } from 'vitest'
import { RuntimeNotLoadedError } from '../errors.js'
import { step } from './step.js'

describe('StepNode.run without the runtime module', () => {
  it('fails with RuntimeNotLoadedError instead of running nowhere', () => {
    const double = step('not-loaded.double', (x: number) => x * 2)
    expect(() => double(1).run()).toThrow(RuntimeNotLoadedError)
    expect(() => double(1).submit()).toThrow(RuntimeNotLoadedError)
    expect(() => double(1).runAsync()).toThrow(RuntimeNotLoadedError)
  })
})
