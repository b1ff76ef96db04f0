// wf on S3: runs the daily-report pipeline (a fan-out and a continuation) with its workflow kept in
// an S3 bucket, given as an s3:// URI by --storage or WF_STORAGE. Run it twice with the same
// --workflow-id: the second run reads the committed output back and runs no step.
//
//   node dist/main.js --storage 's3://my-bucket/wf?region=eu-west-1' --days 7

import { parseArgs } from 'node:util'
import { init, WfError } from '@wf/core'
import { planReport, stepsRunHere } from './pipeline.js'

const USAGE = `usage: node dist/main.js [--storage s3://BUCKET/PREFIX?region=…] [--days N] [--first-day YYYY-MM-DD] [--workflow-id ID]
  --storage      where workflows are kept (default: the WF_STORAGE environment variable)
  --days         how many days to fan out over (default 4)
  --first-day    the first day of the report (default 2026-11-01)
  --workflow-id  the workflow's id; reuse it to get the stored result back (default: a new one)
Credentials come from the AWS SDK's chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, or a role.`

function fail(message: string): never {
  console.error(`${message}\n\n${USAGE}`)
  process.exit(2)
}

let values: { storage?: string; days?: string; 'first-day'?: string; 'workflow-id'?: string; help?: boolean }
try {
  ;({ values } = parseArgs({
    options: {
      storage: { type: 'string' },
      days: { type: 'string' },
      'first-day': { type: 'string' },
      'workflow-id': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }))
} catch (error) {
  fail(error instanceof Error ? error.message : String(error))
}
if (values.help) {
  console.log(USAGE)
  process.exit(0)
}

const storage = values.storage ?? process.env.WF_STORAGE
if (!storage?.startsWith('s3://')) fail('give an s3:// URI with --storage or WF_STORAGE')
const days = Number(values.days ?? 4)
if (!Number.isInteger(days) || days < 1 || days > 366) fail('--days must be a whole number from 1 to 366')
const firstDay = values['first-day'] ?? '2026-11-01'
if (!/^\d{4}-\d{2}-\d{2}$/.test(firstDay)) fail('--first-day must look like 2026-11-01')
const workflowId = values['workflow-id'] ?? `report-${Date.now().toString(36)}`

try {
  // Opens @wf/storage-s3 for the s3:// URI; option mistakes fail here, the server is checked on first use.
  const runtime = await init(storage)
  console.log(`workflow ${workflowId} on ${storage.split('?')[0]}`)
  const output = await planReport(firstDay, days).run({ workflowId })
  console.log(`output: ${JSON.stringify(output)}`)
  const steps = await (await runtime.store()).listStepIds(workflowId)
  console.log(`${steps.length} step records in the bucket under workflows/${workflowId}/steps/`)
  console.log(`${stepsRunHere()} steps ran in this process`)
  await (await runtime.storage()).close?.()
} catch (error) {
  // wf's errors say what to fix (credentials, bucket, region, an unreachable endpoint).
  if (error instanceof WfError) {
    console.error(`${error.name} (${error.code}): ${error.message}`)
    process.exit(1)
  }
  throw error
}
