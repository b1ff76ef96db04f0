// Lists the tests that failed in the last run of scripts/test.mjs, one short entry each (Node
// version, file, test, the first lines of its error), read from the vitest reports in .wf-test/.
// .ci/run prints it last, just above its count line, so a failure is named in what CI keeps of
// its output (the end), not only far up in the vitest log.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { stripVTControlCharacters } from 'node:util'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const outDir = join(root, '.wf-test')
const reports = existsSync(outDir) ? readdirSync(outDir).filter((f) => /^vitest(-.+)?\.json$/.test(f)) : []

const firstLines = (text, n) =>
  stripVTControlCharacters(text)
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== '')
    .slice(0, n)

const lines = []
for (const file of reports.sort()) {
  const label = file === 'vitest.json' ? 'this Node' : file.slice('vitest-'.length, -'.json'.length)
  let report
  try {
    report = JSON.parse(readFileSync(join(outDir, file), 'utf8'))
  } catch {
    lines.push(`${label}: no readable report (${file}): the run itself failed; see its output above`)
    continue
  }
  for (const suite of report.testResults ?? []) {
    const where = relative(root, suite.name)
    const failed = (suite.assertionResults ?? []).filter((t) => t.status === 'failed')
    for (const test of failed) {
      lines.push(`${label} ${where} > ${test.fullName}`)
      for (const line of firstLines((test.failureMessages ?? []).join('\n'), 4)) lines.push(`    ${line}`)
    }
    // A file that failed outside its tests (an import error, a hook, an unhandled rejection).
    if (suite.status === 'failed' && failed.length === 0) {
      lines.push(`${label} ${where} (the file, outside its tests)`)
      for (const line of firstLines(suite.message ?? '', 4)) lines.push(`    ${line}`)
    }
  }
}
if (lines.length > 0) {
  console.log('failed tests:')
  for (const line of lines) console.log(`  ${line.slice(0, 300)}`)
}
