// The long process tests (gc over 10,000 workflows, 30 crash rounds, 1,000 events on S3…) take
// minutes at the issues' scale. CI runs the whole suite on several Node versions: at full scale on
// the first, and with these tests cut down on the others (scripts/test.mjs sets
// WF_TEST_SCALE=reduced there), so that every version still runs every test. Locally: full scale.

/** `full`, or `reduced` when this run is a cut-down one (WF_TEST_SCALE=reduced). */
export function atScale(full: number, reduced: number): number {
  return process.env.WF_TEST_SCALE === 'reduced' ? reduced : full
}
