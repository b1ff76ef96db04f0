// Another process approves the order: it sends the event `approved` to the workflow, through the
// management API (the CLI equivalent: `wf send <id> approved --data '{"by":"ana"}' --key <key>`).
// The idempotency key makes a retry of this process one event, not two.
//
//   WF_STORAGE=./workflow_data node dist/approve.js ORDER_ID NAME

import { sendEvent } from '@wf/client'

const [workflowId, by] = process.argv.slice(2)
if (!workflowId || !by) {
  console.error('usage: approve.js ORDER_ID NAME')
  process.exit(2)
}
const sent = await sendEvent(workflowId, 'approved', { by }, { idempotencyKey: `approve-${workflowId}` })
console.log(`sent approved to ${workflowId} (event #${sent.seq}${sent.duplicate ? ', a duplicate' : ''})`)
