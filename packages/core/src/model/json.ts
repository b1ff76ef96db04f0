// The JSON values wf stores as given: user metadata of workflows and steps.

/** A JSON value (for user metadata). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
