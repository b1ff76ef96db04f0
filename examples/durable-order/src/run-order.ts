// Runs one order in a process of its own (the storage in WF_STORAGE), letting it go while it
// sleeps (parkAfterMs: 0): `node dist/run-order.js <orderId>`. main.js kills it during the sleep.

import { init } from '@wf/core'
import { processOrder } from './order.js'

const orderId = process.argv[2] ?? 'o-42'
await init({ parkAfterMs: 0 })
const receipt = await processOrder(orderId).run({ workflowId: `order-${orderId}` })
console.log(`   [pid ${process.pid}] ${JSON.stringify(receipt)}`)
