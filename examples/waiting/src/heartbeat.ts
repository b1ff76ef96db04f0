// A schedule, declared by importing this module: every worker that imports it fires each tick once,
// as the workflow `heartbeat@<tick ISO>`. Every second here so the example ends quickly; a real one
// would be `{ cron: '0 3 * * *', timezone: 'Europe/Berlin' }` or `{ every: '15m' }`.

import { schedule, step } from '@wf/core'

export const beat = step('heartbeat.beat', (tick: string) => `beat at ${tick}`)

export const heartbeat = schedule('heartbeat', { every: '1s' }, (tick) => beat(tick.toISOString()))
