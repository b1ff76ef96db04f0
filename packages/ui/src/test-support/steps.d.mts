// Types of steps.mjs for the tests that import it.
import type { StepFunction } from '@wf/core'

export declare const gates: { release(): void; held: Promise<void> }
export declare function closeGate(): void
export declare const flags: { fail: boolean }
export declare const add: StepFunction<[number], number>
export declare const double: StepFunction<[number], number>
export declare const held: StepFunction<[number], number>
export declare const flaky: StepFunction<[number], number>
export declare const markup: StepFunction<[], string>
export declare const big: StepFunction<[number], string>
export declare const dated: StepFunction<[], Map<string, Date>>
export declare const sum: StepFunction<[number, number], number>
export declare const fan: StepFunction<[number], number>
export declare const count: StepFunction<number[], number>
export declare const echo: StepFunction<[string], string>
