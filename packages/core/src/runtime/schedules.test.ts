// Schedules with a controllable clock: each tick fires once however many workers poll, idle
// schedules read nothing, overlap and catch-up policies, a firing worker that dies between its
// decision and the run's creation, and the ticks of a cron expression across daylight saving.
import { afterEach, describe, expect, it } from 'vitest'
import {
  InvalidOptionsError,
  MemoryStorage,
  Runtime,
  runIdOf,
  type ScheduleDefinition,
  type ScheduleEvent,
  schedule,
  step,
  unschedule,
} from '../index.js'
import type { ScheduleRecord } from '../model/records.js'
import { ticksOf } from '../model/schedule-spec.js'
import type { Storage } from '../storage/storage.js'
import { type FiringContext, jitteredDueAt, ScheduleFiring } from './schedule-firing.js'

const declared: string[] = []
const runtimes: Runtime[] = []
afterEach(async () => {
  for (const id of declared.splice(0)) unschedule(id)
  await Promise.all(runtimes.splice(0).map((r) => r.close()))
})

let made = 0
const work = step('schedules-test.work', (tick: string) => `ran ${tick}`)

function declare(
  spec: Parameters<typeof schedule>[1],
  options: Parameters<typeof schedule>[3] = {},
): ScheduleDefinition {
  const id = `sched-${made++}`
  declared.push(id)
  return schedule(id, spec, (tick) => work(tick.toISOString()), options)
}

/** A storage that counts reads and writes of schedule records, passing everything through. */
function counting(inner: Storage): Storage & { gets: number; puts: number } {
  const counts = { gets: 0, puts: 0 }
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'gets' || property === 'puts') return counts[property]
      const value = Reflect.get(target, property, receiver)
      if (property === 'get' || property === 'put') {
        return (...args: unknown[]) => {
          if (String(args[0]).startsWith('schedules/')) counts[property === 'get' ? 'gets' : 'puts']++
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      }
      return typeof value === 'function' ? value.bind(target) : value
    },
  }) as Storage & { gets: number; puts: number }
}

/** A worker's firing, on `runtime`, with the clock `now`. */
function firing(runtime: Runtime, now: () => number, submit?: FiringContext['submit']): ScheduleFiring {
  return new ScheduleFiring(
    {
      store: () => runtime.store(),
      runner: runtime.runner,
      leaseTtlMs: runtime.leaseTtlMs,
      deriveStatus: (record) => runtime.deriveStatus(record),
      submit:
        submit ?? ((node, workflowId, metadata) => runtime.submitIfAbsent(node, { workflowId, metadata })),
    },
    now,
  )
}

function runtime(storage: Storage): Runtime {
  const made = new Runtime(storage)
  runtimes.push(made)
  return made
}

async function record(storage: Storage, id: string): Promise<ScheduleRecord> {
  const found = await storage.get(`schedules/${id}`)
  if (!found) throw new Error(`no schedule record ${id}`)
  return JSON.parse(Buffer.from(found.data).toString('utf8')) as ScheduleRecord
}

async function runs(storage: Storage, id: string): Promise<string[]> {
  return (await storage.list('workflows/')).keys
    .filter((key) => key.startsWith(`workflows/${id}@`) && key.endsWith('/workflow'))
    .map((key) => key.slice('workflows/'.length, -'/workflow'.length))
}

const HOUR = 3_600_000
const T0 = Date.UTC(2027, 0, 4, 10, 0, 0)

describe('schedule()', () => {
  it('refuses invalid specs, options and a second declaration of an id', () => {
    const build = () => work('x')
    expect(() => schedule('bad-cron', { cron: '61 * * * *' }, build)).toThrow(InvalidOptionsError)
    expect(() => schedule('bad-fields', { cron: '* * *' }, build)).toThrow(/5 fields/)
    expect(() => schedule('bad-tz', { cron: '0 3 * * *', timezone: 'Mars/Base' }, build)).toThrow(/time zone/)
    expect(() => schedule('bad-every', { every: '10ms' }, build)).toThrow(/one second/)
    expect(() => schedule('bad-every2', { every: 'soon' }, build)).toThrow(InvalidOptionsError)
    expect(() => schedule('bad id', { every: '1h' }, build)).toThrow(/schedule id/)
    expect(() => schedule('bad-overlap', { every: '1h' }, build, { overlap: 'queue' as 'skip' })).toThrow(
      /overlap/,
    )
    expect(() => schedule('bad-catch', { every: '1h' }, build, { catchUp: 'some' as 'all' })).toThrow(
      /catchUp/,
    )
    const once = declare({ every: '1h' })
    expect(() => schedule(once.id, { every: '2h' }, build)).toThrow(/already declared/)
  })

  it('computes cron ticks in a time zone across daylight saving, as croner defines them', () => {
    const ticks = ticksOf({ cron: '30 2 * * *', timezone: 'Europe/Berlin' }, 'test')
    // Spring forward (2027-03-28): 02:30 does not exist; it fires at 03:00 CEST, the first valid time.
    expect(new Date(ticks.next(Date.UTC(2027, 2, 27, 12)) as number).toISOString()).toBe(
      '2027-03-28T01:00:00.000Z',
    )
    // Fall back (2027-10-31): 02:30 happens twice; it fires once, at the first (CEST).
    const autumn = ticks.next(Date.UTC(2027, 9, 30, 12)) as number
    expect(new Date(autumn).toISOString()).toBe('2027-10-31T00:30:00.000Z')
    expect(new Date(ticks.next(autumn) as number).toISOString()).toBe('2027-11-01T01:30:00.000Z')
    // Without a time zone, UTC.
    expect(ticksOf({ cron: '0 3 * * *' }, 'test').next(Date.UTC(2027, 0, 1)) as number).toBe(
      Date.UTC(2027, 0, 1, 3),
    )
  })
})

describe('firing a schedule', () => {
  it('fires each tick once however many workers poll, as <id>@<tick> PENDING with the tick in its metadata', async () => {
    const storage = new MemoryStorage()
    // 'allow': nobody runs the runs here, so each would still be PENDING at the next tick.
    const definition = declare({ every: '1h' }, { overlap: 'allow' })
    let now = T0 + 5 * 60_000
    const rt = runtime(storage)
    const workers = [
      firing(rt, () => now),
      firing(runtime(storage), () => now),
      firing(runtime(storage), () => now),
    ]
    const events: ScheduleEvent[] = []
    for (const w of workers) await w.poll([definition], (e) => events.push(e))
    // Declared between ticks: nothing before it is missed, nothing fires yet.
    expect(events).toEqual([])
    expect((await record(storage, definition.id)).lastTick).toBe(T0)
    for (let hour = 1; hour <= 3; hour++) {
      now = T0 + hour * HOUR + 1000
      await Promise.all(workers.map((w) => w.poll([definition], (e) => events.push(e))))
    }
    const fired = events.filter((e) => e.outcome === 'FIRED')
    expect(fired.map((e) => e.tick)).toEqual([T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR])
    expect(await runs(storage, definition.id)).toEqual(
      [1, 2, 3].map((h) => runIdOf(definition.id, T0 + h * HOUR)),
    )
    const run = (await (await rt.store()).readWorkflow(runIdOf(definition.id, T0 + HOUR)))?.record
    expect(run?.status).toBe('PENDING')
    expect(run?.metadata).toMatchObject({
      schedule: definition.id,
      scheduledFor: new Date(T0 + HOUR).toISOString(),
    })
    expect(await rt.resume(runIdOf(definition.id, T0 + HOUR))).toBe(
      `ran ${new Date(T0 + HOUR).toISOString()}`,
    )
  })

  it('reads no record while no tick is due', async () => {
    const storage = counting(new MemoryStorage())
    const definitions = Array.from({ length: 100 }, () => declare({ every: '1h' }))
    let now = T0 + 60_000
    const worker = firing(runtime(storage), () => now)
    await worker.poll(definitions)
    const reads = storage.gets
    const writes = storage.puts
    for (let i = 0; i < 50; i++) {
      now += 30_000
      await worker.poll(definitions)
    }
    // (Its declarations, `declarations/<runnerId>`, are renewed every ten lease periods: one write
    // for all 100 schedules.)
    expect(storage.gets - reads).toBe(0)
    expect(storage.puts - writes).toBe(0)
  })

  it("overlap 'skip' skips a tick while the previous run is still going, and records why", async () => {
    const storage = new MemoryStorage()
    const definition = declare({ every: '1h' }, { overlap: 'skip' })
    let now = T0 + 1000
    const worker = firing(runtime(storage), () => now)
    await worker.poll([definition])
    now = T0 + HOUR + 1000
    await worker.poll([definition])
    // The first run is PENDING (nobody ran it): the next tick is skipped.
    now = T0 + 2 * HOUR + 1000
    const events: ScheduleEvent[] = []
    await worker.poll([definition], (e) => events.push(e))
    expect(events).toEqual([
      { scheduleId: definition.id, tick: T0 + 2 * HOUR, outcome: 'SKIPPED', reason: 'overlap' },
    ])
    expect((await record(storage, definition.id)).skipped).toMatchObject([
      { tick: T0 + 2 * HOUR, reason: 'overlap' },
    ])
    expect(await runs(storage, definition.id)).toEqual([runIdOf(definition.id, T0 + HOUR)])
  })

  it("overlap 'allow' fires anyway; 'buffer-one' runs the newest waiting tick once the previous run ends", async () => {
    const storage = new MemoryStorage()
    const allow = declare({ every: '1h' }, { overlap: 'allow' })
    const buffer = declare({ every: '1h' }, { overlap: 'buffer-one' })
    const rt = runtime(storage)
    let now = T0 + 1000
    const worker = firing(rt, () => now)
    await worker.poll([allow, buffer])
    for (const hour of [1, 2, 3]) {
      now = T0 + hour * HOUR + 1000
      await worker.poll([allow, buffer])
    }
    expect(await runs(storage, allow.id)).toHaveLength(3)
    expect(await runs(storage, buffer.id)).toEqual([runIdOf(buffer.id, T0 + HOUR)])
    const buffered = await record(storage, buffer.id)
    expect(buffered.buffered).toBe(T0 + 3 * HOUR)
    expect(buffered.skipped).toMatchObject([{ tick: T0 + 2 * HOUR, reason: 'overlap' }])
    // The first run ends: the buffered tick runs at the next poll.
    await rt.resume(runIdOf(buffer.id, T0 + HOUR))
    now += 1000
    await worker.poll([buffer])
    expect(await runs(storage, buffer.id)).toEqual([
      runIdOf(buffer.id, T0 + HOUR),
      runIdOf(buffer.id, T0 + 3 * HOUR),
    ])
    expect((await record(storage, buffer.id)).buffered).toBeUndefined()
  })

  it.each([
    ['latest', [5], 4],
    ['all', [1, 2, 3, 4, 5], 0],
    ['none', [], 5],
  ] as const)("catch-up '%s' after five missed hourly ticks", async (catchUp, firedHours, skippedCount) => {
    const storage = new MemoryStorage()
    const definition = declare({ every: '1h' }, { catchUp, overlap: 'allow' })
    let now = T0 + 1000
    const worker = firing(runtime(storage), () => now)
    await worker.poll([definition])
    // No worker for five hours; one comes back ten minutes after the fifth tick.
    now = T0 + 5 * HOUR + 10 * 60_000
    const events: ScheduleEvent[] = []
    await firing(runtime(storage), () => now).poll([definition], (e) => events.push(e))
    expect(events.filter((e) => e.outcome === 'FIRED').map((e) => (e.tick - T0) / HOUR)).toEqual(firedHours)
    const skipped = events.filter((e) => e.outcome === 'SKIPPED')
    expect(skipped.reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(skippedCount)
    expect((await record(storage, definition.id)).lastTick).toBe(T0 + 5 * HOUR)
  })

  it('creates the run of a tick whose firing worker died before creating it, when the record is read next', async () => {
    const storage = new MemoryStorage()
    const definition = declare({ every: '1h' })
    let now = T0 + 1000
    const dying = firing(
      runtime(storage),
      () => now,
      async () => {
        throw new Error('SIGKILL')
      },
    )
    await dying.poll([definition])
    now = T0 + HOUR + 1000
    await expect(dying.poll([definition])).rejects.toThrow('SIGKILL')
    expect((await record(storage, definition.id)).creating).toEqual([
      { runId: runIdOf(definition.id, T0 + HOUR), tick: T0 + HOUR },
    ])
    expect(await runs(storage, definition.id)).toEqual([])
    // Another worker, started later, reads the record (a first poll reads every schedule once).
    await firing(runtime(storage), () => now).poll([definition])
    expect(await runs(storage, definition.id)).toEqual([runIdOf(definition.id, T0 + HOUR)])
    expect((await record(storage, definition.id)).creating).toBeUndefined()
  })

  it('stores the jittered time of a tick with the decision to fire it: any worker creates the run then, once, also when the deciding one died', async () => {
    const storage = new MemoryStorage()
    const definition = declare({ every: '1h' }, { jitter: '10m' })
    let now = T0 + 1000
    const deciding = firing(runtime(storage), () => now)
    await deciding.poll([definition])
    now = T0 + HOUR
    const events: ScheduleEvent[] = []
    await deciding.poll([definition], (e) => events.push(e))
    // Decided, not created: the run waits for its jittered time, the same on every worker.
    const dueAt = jitteredDueAt(definition.id, T0 + HOUR, 600_000)
    expect(dueAt).toBeGreaterThan(T0 + HOUR)
    expect(dueAt).toBeLessThan(T0 + HOUR + 600_000)
    expect(jitteredDueAt(definition.id, T0 + 2 * HOUR, 600_000) - T0 - 2 * HOUR).not.toBe(dueAt - T0 - HOUR)
    expect((await record(storage, definition.id)).creating).toEqual([
      { runId: runIdOf(definition.id, T0 + HOUR), tick: T0 + HOUR, dueAt },
    ])
    expect(events).toEqual([])
    expect(await runs(storage, definition.id)).toEqual([])
    // The deciding worker dies (it polls no more). Two others come: nothing before the due time…
    const others = [firing(runtime(storage), () => now), firing(runtime(storage), () => now)]
    now = dueAt - 1
    for (const w of others) await w.poll([definition], (e) => events.push(e))
    expect(await runs(storage, definition.id)).toEqual([])
    // …then the run, once, reported by the worker that created it.
    now = dueAt
    await Promise.all(others.map((w) => w.poll([definition], (e) => events.push(e))))
    expect(await runs(storage, definition.id)).toEqual([runIdOf(definition.id, T0 + HOUR)])
    expect(events).toEqual([
      {
        scheduleId: definition.id,
        tick: T0 + HOUR,
        outcome: 'FIRED',
        runId: runIdOf(definition.id, T0 + HOUR),
      },
    ])
    expect((await record(storage, definition.id)).creating).toBeUndefined()
  })

  it('fires the due ticks of several schedules side by side, not one after the other', async () => {
    const storage = new MemoryStorage()
    const definitions = [declare({ every: '1h' }), declare({ every: '1h' }), declare({ every: '1h' })]
    const rt = runtime(storage)
    let now = T0 + 1000
    await firing(rt, () => now).poll(definitions)
    // Each run's creation waits until all three are under way (one after the other, the first
    // would wait for ever: it gives up after two seconds).
    let arrived = 0
    let all: () => void = () => {}
    const together = new Promise<void>((resolve) => {
      all = resolve
    })
    const worker = firing(
      rt,
      () => now,
      async (node, workflowId, metadata) => {
        if (++arrived === definitions.length) all()
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          together,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('created one at a time')), 2000)
          }),
        ]).finally(() => clearTimeout(timer))
        return rt.submitIfAbsent(node, { workflowId, metadata })
      },
    )
    now = T0 + HOUR + 1000
    await worker.poll(definitions)
    for (const d of definitions) expect(await runs(storage, d.id)).toEqual([runIdOf(d.id, T0 + HOUR)])
  })
})
