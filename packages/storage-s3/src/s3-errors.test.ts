// The retry clock over long waits, on a virtual clock: how long an unreachable endpoint is retried
// before and after it first answered, which message ends the call, and the one warning on stderr.
// (unavailable.test.ts does the short cases against real closed ports and servers.)

import { StorageUnavailableError } from '@wf/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { classify, Endpoint, RetryClock } from './s3-errors.js'

const refused = () =>
  classify(
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7499'), { code: 'ECONNREFUSED', $metadata: {} }),
  )
const slowDown = () =>
  classify(
    Object.assign(new Error('Please reduce your request rate.'), { $metadata: { httpStatusCode: 503 } }),
  )

/** A clock whose waits take no real time. */
function virtualClock() {
  const clock = {
    t: 0,
    now: () => clock.t,
    wait: async (ms: number) => {
      clock.t += ms
    },
  }
  return clock
}

/** Calls `backoff` with `failure()` until it throws; returns the error and the virtual time taken. */
async function retryUntilItGivesUp(
  clock: RetryClock,
  failure: () => ReturnType<typeof classify>,
  outcome?: string,
) {
  for (let i = 0; i < 10_000; i++) {
    try {
      await clock.backoff(failure(), outcome)
    } catch (error) {
      return error as Error
    }
  }
  throw new Error('the clock never gave up')
}

describe('RetryClock', () => {
  let warnings: Error[]
  const onWarning = (warning: Error) => warnings.push(warning)
  beforeEach(() => {
    warnings = []
    process.on('warning', onWarning)
  })
  afterEach(() => {
    process.off('warning', onWarning)
  })
  const ours = async () => {
    await new Promise((resolve) => setImmediate(resolve)) // warnings are emitted on the next tick
    return warnings.filter((w) => (w as { code?: string }).code === 'WF_S3_RETRYING')
  }

  it('gives up on an endpoint that never answered after 2 s, not the 20 s budget, saying it cannot be reached', async () => {
    const time = virtualClock()
    const endpoint = new Endpoint('http://127.0.0.1:7499')
    const error = await retryUntilItGivesUp(new RetryClock(20_000, 'GET of "k"', endpoint, time), refused)
    expect(error).toBeInstanceOf(StorageUnavailableError)
    expect(error.message).toMatch(
      /^cannot reach the S3 endpoint http:\/\/127\.0\.0\.1:7499: connection refused/,
    )
    expect(error.message).toMatch(/Check that the server is running/)
    expect(time.t).toBeGreaterThanOrEqual(2_000)
    expect(time.t).toBeLessThan(2_100)
    expect(await ours()).toEqual([])
  })

  it('retries an endpoint that answered before for the whole budget, and warns once, by 2 s into the retries', async () => {
    const time = virtualClock()
    const endpoint = new Endpoint('http://127.0.0.1:7499')
    endpoint.heard()
    const first = new RetryClock(20_000, 'GET of "k"', endpoint, time)
    const second = new RetryClock(20_000, 'LIST of ""', endpoint, time)
    const [a, b] = await Promise.all([
      retryUntilItGivesUp(first, refused),
      retryUntilItGivesUp(second, refused),
    ])
    expect(time.t).toBeGreaterThanOrEqual(20_000)
    for (const error of [a, b])
      expect(error.message).toMatch(/raise retryBudgetMs to ride out longer outages/)
    const warned = await ours()
    expect(warned).toHaveLength(1)
    expect(warned[0]?.message).toMatch(
      /has been failing for \d+\.\d s .*ECONNREFUSED.*retrying for up to 1\d\.\d s more/,
    )
  })

  it('warns again in a later outage, once the endpoint answered in between', async () => {
    const time = virtualClock()
    const endpoint = new Endpoint(undefined)
    endpoint.heard()
    await retryUntilItGivesUp(new RetryClock(3_000, 'GET of "k"', endpoint, time), slowDown)
    endpoint.heard()
    await retryUntilItGivesUp(new RetryClock(3_000, 'GET of "k"', endpoint, time), slowDown)
    expect(await ours()).toHaveLength(2)
  })

  it('keeps "may or may not" for a call whose earlier request may have reached the server', async () => {
    const time = virtualClock()
    const clock = new RetryClock(1_000, 'PUT of "k"', new Endpoint('http://s3.local'), time)
    clock.mayHaveLanded()
    const error = await retryUntilItGivesUp(
      clock,
      refused,
      'the conditional write may or may not have happened',
    )
    expect(error.message).toMatch(
      /^S3 PUT of "k" kept failing .*the conditional write may or may not have happened.*ECONNREFUSED/,
    )
  })

  it('names the host from the socket error when no endpoint was configured (AWS, or a client passed in)', async () => {
    const error = await retryUntilItGivesUp(
      new RetryClock(100, 'GET of "k"', new Endpoint(undefined), virtualClock()),
      () =>
        classify(
          Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), {
            code: 'ENOTFOUND',
            hostname: 'nowhere.invalid',
          }),
        ),
    )
    expect(error.message).toMatch(/^cannot reach the S3 endpoint nowhere\.invalid: no such host/)
  })
})
