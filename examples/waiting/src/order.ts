// The example's order workflow: reserve the stock, wait for someone to approve the order (an event
// sent from outside, with a timeout), wait a little before shipping (a durable sleep), then ship.
// Each wait is a node of the graph, so a step after it runs only once it is over; the steps that
// decide what comes next are continuations (they return the rest of the graph).

import { type EventResult, type StepNode, sleep, step, waitForEvent } from '@wf/core'

export interface Approval {
  by: string
}

export interface Shipped {
  orderId: string
  items: number
  approvedBy: string
  shippedAt: string
}

/** How long the order waits before shipping once approved: short here, days in real life. */
export const COOLING_OFF = process.env.WAITING_COOLING_OFF ?? '2s'

export const reserve = step('order.reserve', (orderId: string, items: number) => ({ orderId, items }))

export const ship = step(
  'order.ship',
  (reservation: { orderId: string; items: number }, approval: Approval, wokeAt: number): Shipped => ({
    ...reservation,
    approvedBy: approval.by,
    shippedAt: new Date(Math.max(wokeAt, Date.now())).toISOString(),
  }),
)

/** Once approved: sleep through the cooling-off period, then ship. Unapproved in time: give up. */
export const afterApproval = step(
  'order.afterApproval',
  (
    reservation: { orderId: string; items: number },
    approval: EventResult<Approval>,
  ): StepNode<Shipped> | { orderId: string; expired: true } =>
    approval.received
      ? ship(reservation, approval.value, sleep(COOLING_OFF))
      : { ...reservation, expired: true },
)

/** Once reserved: wait up to an hour for the event `approved`. */
export const awaitApproval = step('order.awaitApproval', (reservation: { orderId: string; items: number }) =>
  afterApproval(reservation, waitForEvent<Approval>('approved', { timeout: '1h' })),
)

/** The whole order: `order(id, items).run()`, or submit it for a worker. */
export function order(orderId: string, items: number) {
  return awaitApproval(reserve(orderId, items))
}
