// @wf/ui: a local web dashboard for wf workflows, over the storage itself. The public API.

export type { ScheduleList, WorkflowDetail, WorkflowRow } from './api.js'
export { API_ERROR_CODES, ApiError, type ApiErrorCode, UiListenError } from './errors.js'
export { startUi, type UiOptions, type UiServer } from './server.js'
export type { GraphJson, StepJson, ValueText } from './views.js'
