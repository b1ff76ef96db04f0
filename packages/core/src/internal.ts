// `@wf/core/internal`: what @wf/client and wf's own tools use of core's insides and users do not
// need (the store of records, the key layout, the step registry). No semver guarantees: any of it
// may change in a minor or patch release, together with the @wf packages that use it.

export { isJsonable } from './model/json.js'
export {
  ENDED_STATUSES,
  endedDay,
  endedKey,
  incarnationOf,
  STORED_STATUSES,
  storeKeys,
} from './model/records.js'
export { continuationPrefix } from './plan/graph.js'
export { type ForkPlan, writeFork } from './runtime/fork.js'
export {
  backfillRuns,
  deleteScheduleRecord,
  listScheduleRecords,
  MAX_BACKFILL,
  readScheduleRecord,
  type SubmitRun,
  setSchedulePaused,
  triggerRun,
  upcomingTicks,
} from './runtime/schedule-admin.js'
export { executionErrorOf } from './runtime/workflow-run.js'
export { getRegisteredStep } from './step/step.js'
export {
  committedStepOutput,
  committedWorkflowOutput,
  continuationRoot,
  type StoreSurvey,
  type SurveyedBatch,
  surveyedKeys,
  surveyStore,
  workflowIdOfKey,
} from './store/check.js'
// The creation-time index (issue #25, the dashboard's newest-first runs page): `created/` keys.
export {
  type CheckCreatedOptions,
  type CreatedEntry,
  type CreatedIndexReport,
  checkCreatedIndex,
  createdEntryHolds,
  createdKey,
  createdKeyOf,
  type ListCreatedOptions,
  listCreated,
  parseCreatedKey,
} from './store/created-index.js'
export { type EventSummary, listEvents } from './store/events.js'
// Retention (issue #24): bulk deletion of ended workflows and the workers' pass.
export {
  claimRetentionPass,
  countEnded,
  type RetentionCursor,
  type RetentionFilter,
  type RetentionPassOptions,
  type RetentionProgress,
  type RetentionResult,
  runRetentionPass,
  validateRetentionFilter,
} from './store/retention.js'
export { readDeclarations } from './store/schedules.js'
export { type IndexEntry, scanStatusIndex } from './store/status-index.js'
export type { EndedEntry } from './store/store.js'
export { WorkflowStore } from './store/store.js'
export { mapLimit } from './util/map-limit.js'
