// vi.waitFor's options in the engine's tests: up to 10 s (a loaded machine), checking every 2 ms so
// a test sees a state within a few ms of it arising (vitest's defaults are 1 s and 50 ms, too slow
// for the tests that time a takeover or catch a run between two of its steps).
export const soon = { timeout: 10_000, interval: 2 }
