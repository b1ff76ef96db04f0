// A separate process for the demo: `child.js run ID` starts a workflow, `child.js resume ID` resumes
// one. The parent kills the first kind with SIGKILL part-way through.

import { getRuntime } from '@wf/core'
import { planReport } from './pipeline.js'

const [command, workflowId] = process.argv.slice(2)
if (!workflowId || (command !== 'run' && command !== 'resume')) {
  console.error('usage: child.js run|resume WORKFLOW_ID')
  process.exit(2)
}
const output =
  command === 'run'
    ? await planReport('2026-11-01', 8).run({ workflowId })
    : await getRuntime().resume(workflowId)
console.log(JSON.stringify(output))
