// What to do next, for the errors a user of the `wf` command meets most: the error messages come
// from the API (and say what to do there); these add the command's own way out.

import { CorruptRecordError, StepNotRegisteredError, WorkflowNotFoundError } from '@wf/core'
import { workflowIdOfKey } from '@wf/core/internal'
import { shorten } from './format.js'

/** A hint for `error` in the command's words, or `''`. */
export function hint(error: unknown): string {
  if (error instanceof StepNotRegisteredError) {
    return ' (pass the module that registers it with --import ./path/to/steps.js, or list it under "import" in wf.config.json)'
  }
  if (error instanceof CorruptRecordError) {
    const workflowId = workflowIdOfKey(error.key)
    const remove =
      workflowId === undefined ? '' : `; \`wf delete ${shorten(workflowId)} --force\` removes that workflow`
    return ` (\`wf doctor\` lists every unreadable record${remove})`
  }
  if (error instanceof WorkflowNotFoundError) {
    // `wf list` reads the index: a record removed by hand leaves its marker (and steps) behind.
    return ` (if \`wf list\` still shows it, its record was removed by other means: \`wf delete ${shorten(error.workflowId)} --force\` or \`wf doctor --fix\` clears what is left)`
  }
  return ''
}
