// The example's order, as a durable function: an async function with plain `if` and `await`, each
// `ctx.run` a checkpoint. Load the order, reserve its items side by side, have a large one reviewed,
// wait a cooling-off period (a durable sleep), then charge it. Step bodies print the process they
// run in, so a resumed run shows which steps ran again (none that had committed).

import { setTimeout as pause } from 'node:timers/promises'
import { step, workflow } from '@wf/core'

export interface Item {
  sku: string
  qty: number
  price: number
}

export interface Order {
  id: string
  items: Item[]
  total: number
}

export interface Receipt {
  orderId: string
  charged: number
  reservations: string[]
  reviewed: boolean
}

/** How long an order waits before it is charged: short here, hours in real life. */
export const COOLING_OFF = process.env.DURABLE_ORDER_COOLING_OFF ?? '2s'

const say = (line: string) => console.log(`   [pid ${process.pid}] ${line}`)

/** A stand-in for the orders table: `o-42` is a large order, any other id a small one. */
export const loadOrder = step('durableOrder.loadOrder', (orderId: string): Order => {
  say(`step loadOrder(${orderId})`)
  const items: Item[] = orderId.endsWith('42')
    ? [
        { sku: 'desk', qty: 1, price: 900 },
        { sku: 'chair', qty: 2, price: 150 },
        { sku: 'lamp', qty: 1, price: 50 },
      ]
    : [{ sku: 'pen', qty: 3, price: 2 }]
  return { id: orderId, items, total: items.reduce((sum, item) => sum + item.qty * item.price, 0) }
})

export const reserve = step('durableOrder.reserve', async (item: Item) => {
  // Side by side, they finish in any order: their keys are the order the body asked for them.
  await pause(Math.random() * 50)
  say(`step reserve(${item.qty} x ${item.sku})`)
  return `res-${item.sku}`
})

export const review = step('durableOrder.review', (order: Order) => {
  say(`step review(${order.id}): ${order.total} is over 1000`)
  return true
})

export const charge = step(
  'durableOrder.charge',
  (order: Order, reservations: string[], reviewed: boolean): Receipt => {
    say(`step charge(${order.id}, ${order.total})`)
    return { orderId: order.id, charged: order.total, reservations, reviewed }
  },
  { maxRetries: 5 },
)

export const processOrder = workflow('durableOrder.processOrder', async (ctx, orderId: string) => {
  // Not a step: this line prints each time the body runs, a resume included (it runs from the top).
  console.log(`   [pid ${process.pid}] body of processOrder(${orderId}) runs`)
  const order = await ctx.run(loadOrder(orderId)) // key ~0
  const reservations = await ctx.run(order.items.map(reserve)) // key ~1: an array of nodes, side by side
  let reviewed = false
  // Plain control flow over what the steps returned; an explicit key: ~k:fraud-review.
  if (order.total > 1000) reviewed = await ctx.run(review(order), { key: 'fraud-review' })
  await ctx.sleep(COOLING_OFF) // key ~2
  return ctx.run(charge(order, reservations, reviewed)) // key ~3
})
