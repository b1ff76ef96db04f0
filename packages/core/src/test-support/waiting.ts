// Waiting in tests: a sleep, and a poll until a condition holds (failing after `timeoutMs`).

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}
