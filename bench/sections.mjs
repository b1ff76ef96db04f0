// Sections of bench/RESULTS.md that a script of their own writes (bench/cancel.mjs,
// bench/events.mjs, bench/sleep.mjs, bench/ab.mjs, bench/durable.mjs), between markers: `pnpm bench` rewrites the rest
// of the file and carries these over unchanged.

const marker = (name, end) => `<!-- ${name}:${end ? 'end' : 'begin'} -->`

/** The section `name` of `text` with its markers, or '' when it has none. */
export function sectionOf(text, name) {
  const begin = text.indexOf(marker(name, false))
  const end = text.indexOf(marker(name, true))
  if (begin === -1 || end === -1 || end < begin) return ''
  return text.slice(begin, end + marker(name, true).length)
}

/** `text` with section `name` replaced by `body` (appended when absent). */
export function withSection(text, name, body) {
  const section = `${marker(name, false)}\n${body.trim()}\n${marker(name, true)}`
  const old = sectionOf(text, name)
  if (old) return text.replace(old, section)
  return `${text.trimEnd()}\n\n${section}\n`
}

/** Carries the script-written sections of `previous` over into a freshly written report. */
export function carrySections(
  previous,
  report,
  names = ['cancel', 'events', 'sleep', 'ab', 'durable', 'ui', 'schedules', 'pipeline'],
) {
  let text = report
  for (const name of names) {
    const old = sectionOf(previous, name)
    if (old) text = `${text.trimEnd()}\n\n${old}\n`
  }
  return text
}
