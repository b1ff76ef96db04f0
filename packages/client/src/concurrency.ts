// Bounded parallel reads: listing and inspecting read many small records, and a storage over a
// network answers far faster to a few requests in flight than to one at a time or to thousands.
// A copy of core's mapLimit, which @wf/core does not export yet: once it is exported (from
// `@wf/core/internal`, issue 18), import it from there and delete this file.

/** Maps `items` with at most `limit` calls of `fn` in flight, keeping order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}
