// The dashboard's page: plain DOM, no framework and no build step. Every value that comes from
// the storage (ids, metadata, errors, outputs) goes into the page through `h()`, which makes text
// nodes: nothing is ever parsed as HTML. Routes live in the hash: `#/` (runs), `#/w/<id>`,
// `#/schedules`.

const POLL_MS = 2000
const main = document.getElementById('main')
const where = document.getElementById('where')
let info = { readOnly: true, canResume: false, statuses: [] }
let timer
let dagre = null // the graph layout library, once loaded
let generation = 0 // bumped by every navigation: a late answer for a page left behind is dropped

/** An element with properties from a short safe list, and children as nodes or text. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue
    if (key === 'class') el.className = value
    // Only links within the page or to this server's API: never a URL taken from storage.
    else if (key === 'href') el.setAttribute('href', /^(#|\/api\/)/.test(String(value)) ? value : '#/')
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else if (key === 'download') el.setAttribute('download', '')
    else if (['title', 'type', 'placeholder', 'value', 'disabled'].includes(key)) el[key] = value
    else el.dataset[key] = String(value)
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** One API call; `body` (a value) is sent as JSON, `text` as it is (an event's payload, already JSON). */
async function api(path, method = 'GET', { body, text } = {}) {
  const sent = text ?? (body === undefined ? undefined : JSON.stringify(body))
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: {
      accept: 'application/json',
      ...(sent === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: sent,
  })
  const answer = await res.json().catch(() => ({}))
  if (!res.ok)
    throw new ApiFailure(res.status, answer.error?.code ?? 'HTTP', answer.error?.message ?? res.statusText)
  return answer
}

function time(ms) {
  if (ms === undefined) return '-'
  const d = new Date(ms)
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

function duration(ms) {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 3_600_000)
    return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`
}

const badge = (status) => h('span', { class: `status s-${String(status).toLowerCase()}` }, status)
const active = (status) => status === 'RUNNING' || status === 'PENDING'

/** What a parked workflow waits for, in words: the events, and until when (a sleep, or an event's timeout). */
function waitingText(waiting) {
  if (!waiting) return null
  const events = waiting.events ?? []
  const until =
    waiting.until === undefined
      ? ''
      : `until ${time(waiting.until)} (${waiting.until > Date.now() ? `in ${duration(waiting.until - Date.now())}` : 'due'})`
  if (events.length) return `waiting for ${events.join(', ')}${until ? `, ${until}` : ''}`
  return `sleeping ${until}`
}

/** Replaces `el`'s content; absent parts (null, false) are left out, lists are spread. */
function fillWith(el, ...nodes) {
  // replaceChildren would turn null into the text "null" and a list into "[object …]".
  el.replaceChildren(...nodes.flat().filter((n) => n !== undefined && n !== null && n !== false))
}

/** Replaces the page's content. */
const show = (...nodes) => fillWith(main, ...nodes)

/** Whether the page that asked (at `asked`) is still the one shown. */
const current = (asked) => asked === generation

function failure(error) {
  if (error instanceof ApiFailure && error.status === 401)
    return h(
      'div',
      { class: 'notice' },
      h('p', {}, 'This dashboard needs its token.'),
      h(
        'p',
        { class: 'dim' },
        'Open the URL that `wf ui` printed (…/?token=…): it keeps the token in a cookie.',
      ),
    )
  return h('div', { class: 'notice error' }, h('strong', {}, error.code ?? 'error'), ' ', error.message)
}

/** Whether the user is typing in the page (a refresh would throw the input away). */
const typing = () =>
  main.contains(document.activeElement) &&
  (/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) || document.activeElement.closest('form'))

function poll(render, when) {
  clearTimeout(timer)
  if (when) timer = setTimeout(() => (typing() ? poll(render, when) : render()), POLL_MS)
}

// ---- runs -------------------------------------------------------------------------------------

/** The runs page's filters, kept in the hash so a filtered view can be bookmarked and shared. */
const FILTERS = ['status', 'prefix', 'createdAfter', 'createdBefore', 'metadata']

function runsQuery() {
  const q = new URLSearchParams(location.hash.split('?')[1] ?? '')
  return Object.fromEntries(FILTERS.map((f) => [f, q.get(f) ?? '']))
}

function runsHash(filters) {
  const q = new URLSearchParams()
  for (const f of FILTERS) if (filters[f]) q.set(f, filters[f])
  const s = q.toString()
  return s ? `#/?${s}` : '#/'
}

/** A `datetime-local` value (local time) as an ISO instant for the API, and back. */
const toIso = (local) => (local ? new Date(local).toISOString() : '')
const toLocal = (iso) => {
  if (!iso) return ''
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  const pad = (n) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** Rows a page of the runs table asks for; the API takes at most MAX_LIMIT. */
const PAGE = 200
const MAX_LIMIT = 1000
/**
 * The runs table as this visit of the page shows it, kept across its refreshes: how many rows are
 * shown ("more" included: a refresh loads as many again), and why the last "more" failed.
 */
let runsShown = { generation: -1, count: 0, failure: undefined }
let runsLoad = 0 // bumped by every load of rows: a refresh under way when "more" is clicked is dropped

async function renderRuns() {
  const filters = runsQuery()
  const { status } = filters
  where.textContent = 'runs'
  const params = new URLSearchParams()
  for (const f of FILTERS) if (filters[f]) params.set(f, filters[f])
  const pageOf = (cursor, limit = PAGE) => {
    const q = new URLSearchParams(params)
    q.set('limit', String(Math.min(MAX_LIMIT, Math.max(PAGE, limit))))
    if (cursor) q.set('cursor', cursor)
    return api(`/api/workflows?${q}`)
  }
  const asked = generation
  if (runsShown.generation !== asked) runsShown = { generation: asked, count: 0, failure: undefined }
  const shown = runsShown
  const load = ++runsLoad
  let page
  let rows
  let cursor
  try {
    page = await pageOf(undefined, shown.count)
    rows = [...page.workflows]
    cursor = page.cursor
    // A refresh reloads as many rows as are shown, those "more" added too, not the first page alone.
    while (cursor && rows.length < shown.count) {
      const next = await pageOf(cursor, shown.count - rows.length)
      rows.push(...next.workflows)
      cursor = next.cursor
    }
    if (!current(asked) || load !== runsLoad) return
  } catch (error) {
    if (!current(asked) || load !== runsLoad) return
    // A filter the API refused: say so and offer a way back; anything else may pass (retry).
    const refused = error instanceof ApiFailure && error.status === 400
    show(failure(error), refused ? h('p', {}, h('a', { href: '#/' }, 'clear the filters')) : null)
    return poll(renderRuns, !refused)
  }
  const live = (page.counts.RUNNING ?? 0) + (page.counts.PENDING ?? 0) > 0
  const more = async (after, button) => {
    button.disabled = true
    // No refresh while the next page loads (one under way is dropped): it would draw the rows without it.
    clearTimeout(timer)
    const mine = ++runsLoad
    try {
      const next = await pageOf(after)
      if (!current(asked) || mine !== runsLoad) return
      rows.push(...next.workflows)
      shown.failure = undefined
      draw(next.cursor)
    } catch (error) {
      if (!current(asked) || mine !== runsLoad) return
      // Said above the button, which is drawn again enabled: another click tries again.
      shown.failure = error
      draw(after)
    }
    poll(renderRuns, live)
  }
  const counts = h(
    'nav',
    { class: 'counts' },
    h(
      'a',
      { href: runsHash({ ...filters, status: '' }), class: status ? 'count' : 'count on' },
      `all ${page.total}`,
    ),
    info.statuses.map((s) =>
      h(
        'a',
        { href: runsHash({ ...filters, status: s }), class: status === s ? 'count on' : 'count' },
        badge(s),
        ` ${page.counts[s] ?? 0}`,
      ),
    ),
  )
  const input = (name, props, read = (v) => v.trim()) => {
    const el = h('input', { ...props, title: props.placeholder ?? name })
    el.addEventListener('change', () => {
      location.hash = runsHash({ ...filters, [name]: read(el.value) })
    })
    return el
  }
  const filterBar = h(
    'div',
    { class: 'filters' },
    input('prefix', { type: 'search', placeholder: 'id prefix', value: filters.prefix }),
    h(
      'label',
      { class: 'dim small' },
      ' created from ',
      input('createdAfter', { type: 'datetime-local', value: toLocal(filters.createdAfter) }, toIso),
    ),
    h(
      'label',
      { class: 'dim small' },
      ' to ',
      input('createdBefore', { type: 'datetime-local', value: toLocal(filters.createdBefore) }, toIso),
    ),
    ' ',
    input('metadata', { type: 'search', placeholder: 'metadata {"team":"data"}', value: filters.metadata }),
  )
  const draw = (cursor) => {
    shown.count = rows.length
    // In the API's order: newest first.
    const table = h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['workflow', 'status', 'created', 'ended', 'duration', 'metadata'].map((t) => h('th', {}, t)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((w) =>
          h(
            'tr',
            {},
            h(
              'td',
              { class: 'id' },
              h('a', { href: `#/w/${encodeURIComponent(w.workflowId)}` }, w.workflowId),
            ),
            h(
              'td',
              {},
              badge(w.status),
              w.waitingFor ? h('div', { class: 'dim small' }, waitingText(w.waitingFor)) : null,
            ),
            h('td', {}, time(w.createdAt)),
            h('td', {}, time(w.endedAt)),
            h('td', {}, w.endedAt === undefined ? '-' : duration(w.endedAt - w.createdAt)),
            h('td', { class: 'meta' }, Object.keys(w.metadata).length ? JSON.stringify(w.metadata) : ''),
          ),
        ),
      ),
    )
    const unreadable = page.errors.length
      ? h('p', { class: 'notice' }, `${page.errors.length} record(s) could not be read: run \`wf doctor\`.`)
      : null
    const moreButton = cursor ? h('button', { type: 'button' }, 'more') : null
    moreButton?.addEventListener('click', () => more(cursor, moreButton))
    show(
      counts,
      filterBar,
      unreadable,
      rows.length ? table : h('p', { class: 'dim' }, 'no workflows'),
      cursor && shown.failure ? failure(shown.failure) : null,
      moreButton,
    )
  }
  draw(cursor)
  poll(renderRuns, live)
}

// ---- one workflow -----------------------------------------------------------------------------

const open = new Set() // step ids whose detail is open, kept across refreshes
let reveal // the step whose detail a click on the graph opened: scrolled to once drawn
const outputs = new Map() // `${workflowId}\n${stepId}` → output text, fetched on demand
const argsShown = new Map() // `${workflowId}\n${stepId}` → arguments text, fetched on demand

async function renderWorkflow(id) {
  where.textContent = id
  const asked = generation
  let detail
  try {
    detail = await api(`/api/workflows/${encodeURIComponent(id)}`)
    if (!current(asked)) return
  } catch (error) {
    if (!current(asked)) return
    show(h('p', {}, h('a', { href: '#/' }, '← runs')), failure(error))
    return poll(() => renderWorkflow(id), false)
  }
  const { workflow, graph, events } = detail
  const rerender = () => renderWorkflow(id)
  const act = async (button, method, path, question, options) => {
    if (question && !confirm(question)) return
    button.disabled = true
    try {
      const answer = await api(path, method, options)
      if (method === 'DELETE') location.hash = '#/'
      else if (answer.forkedFrom) location.hash = `#/w/${encodeURIComponent(answer.workflowId)}`
      else rerender()
    } catch (error) {
      main.prepend(failure(error))
      button.disabled = false
    }
  }
  // Fork from a step: offered in each step's detail once the workflow has ended.
  const forkFrom =
    info.readOnly || active(workflow.status)
      ? undefined
      : (button, stepId) =>
          act(
            button,
            'POST',
            `${path}/fork`,
            `Fork ${id} from ${stepId}? A new workflow keeps what does not depend on it and runs it again${info.canResume ? ' here' : ' (PENDING: a worker runs it)'}.`,
            { body: { fromStep: stepId } },
          )
  const path = `/api/workflows/${encodeURIComponent(id)}`
  const actions = h('div', { class: 'actions' })
  if (!info.readOnly) {
    const s = workflow.status
    if (s !== 'SUCCESSFUL' && s !== 'CANCELED') {
      const b = h('button', { type: 'button', class: 'danger' }, 'cancel')
      b.addEventListener('click', () =>
        act(b, 'POST', `${path}/cancel`, `Cancel ${id}? It cannot be resumed afterwards.`),
      )
      actions.append(b)
    }
    if (s === 'FAILED' || s === 'RESUMABLE') {
      const b = h(
        'button',
        { type: 'button', disabled: !info.canResume, title: info.resumeRefusal },
        'resume',
      )
      b.addEventListener('click', () => act(b, 'POST', `${path}/resume`))
      actions.append(b)
      if (!info.canResume) actions.append(h('span', { class: 'dim small' }, info.resumeRefusal))
    }
    if (s === 'FAILED' || s === 'CANCELED' || s === 'RESUMABLE') {
      const b = h(
        'button',
        {
          type: 'button',
          title: 'a new workflow from the first failed (or unfinished) step; pick another step in its detail',
        },
        'fork',
      )
      b.addEventListener('click', () =>
        act(
          b,
          'POST',
          `${path}/fork`,
          `Fork ${id} from its failed step${info.canResume ? '' : ' (PENDING: a worker runs it)'}?`,
          { body: {} },
        ),
      )
      actions.append(b)
    }
    if (!active(s)) {
      const b = h('button', { type: 'button', class: 'danger' }, 'delete')
      b.addEventListener('click', () => act(b, 'DELETE', path, `Delete ${id} and all its checkpoints?`))
      actions.append(b)
    }
  }
  const sendForm =
    info.readOnly || workflow.status === 'SUCCESSFUL' || workflow.status === 'CANCELED'
      ? null
      : eventForm(id, path, workflow.waitingFor?.events?.[0], rerender)
  const stats = workflow.stats
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'status'),
    h('dd', {}, badge(workflow.status)),
    h('dt', {}, 'created'),
    h('dd', {}, time(stats.startTime)),
    h('dt', {}, 'ended'),
    h('dd', {}, time(stats.endTime)),
    h('dt', {}, 'duration'),
    h('dd', {}, stats.endTime === undefined ? '-' : duration(stats.endTime - stats.startTime)),
    h('dt', {}, 'runs'),
    h('dd', {}, String(stats.runs)),
    h('dt', {}, 'steps'),
    h('dd', {}, `${graph.committed} of ${graph.total} committed`),
    workflow.runner && [h('dt', {}, 'runner'), h('dd', {}, `${workflow.runner.host}:${workflow.runner.pid}`)],
    workflow.waitingFor && [
      h('dt', {}, 'waiting'),
      h(
        'dd',
        {},
        `parked, held by no process: ${waitingText(workflow.waitingFor)}`,
        h('div', { class: 'dim small' }, `in ${workflow.waitingFor.steps.join(', ')}`),
      ),
    ],
    h('dt', {}, 'metadata'),
    h('dd', {}, h('code', {}, JSON.stringify(workflow.userMetadata))),
  )
  const error = workflow.error
    ? h(
        'div',
        { class: 'notice error' },
        h('strong', {}, `${workflow.error.name}: `),
        workflow.error.message,
        ` (step ${workflow.error.stepId})`,
      )
    : null
  show(
    h('p', {}, h('a', { href: '#/' }, '← runs')),
    h('h1', {}, workflow.workflowId),
    actions,
    facts,
    error,
    h('h2', {}, 'steps'),
    dagre && graph.steps.length
      ? stepGraph(
          graph.steps,
          graph.rootStepId,
          (stepId) => {
            open.add(stepId)
            reveal = stepId
            rerender()
          },
          rerender,
        )
      : null,
    stepList(id, graph.steps, graph.rootStepId, forkFrom),
    events.length || sendForm ? h('h2', {}, 'events') : null,
    events.length ? eventTable(events) : null,
    sendForm,
    h('h2', {}, 'timeline'),
    timeline(workflow, graph.steps) ?? h('p', { class: 'dim' }, 'no step has committed yet'),
    workflow.runtime
      ? h('details', {}, h('summary', {}, 'runtime'), h('pre', {}, JSON.stringify(workflow.runtime, null, 2)))
      : null,
  )
  if (reveal !== undefined) {
    // A node was clicked: bring its detail into view.
    for (const li of main.querySelectorAll('ul.steps li'))
      if (li.dataset.stepId === reveal) li.scrollIntoView({ block: 'nearest' })
    reveal = undefined
  }
  poll(rerender, active(workflow.status))
}

const drafts = new Map() // workflow id → { name, payload } typed in its event form, kept across refreshes

/** Sends an event: its name and a JSON payload (`POST /api/workflows/:id/events/:name`). */
function eventForm(id, path, waitedFor, done) {
  const draft = drafts.get(id) ?? { name: waitedFor ?? '', payload: '' }
  drafts.set(id, draft)
  const name = h('input', { type: 'text', placeholder: 'event name', value: draft.name })
  const payload = h('input', {
    type: 'text',
    placeholder: 'payload (JSON, empty: null)',
    value: draft.payload,
  })
  name.addEventListener('input', () => {
    draft.name = name.value
  })
  payload.addEventListener('input', () => {
    draft.payload = payload.value
  })
  const button = h('button', { type: 'submit' }, 'send event')
  const form = h('form', { class: 'send-event' }, name, ' ', payload, ' ', button)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const text = payload.value.trim()
    if (name.value.trim() === '') return name.focus()
    try {
      if (text !== '') JSON.parse(text)
    } catch {
      form.prepend(h('div', { class: 'notice error' }, 'the payload must be JSON, e.g. {"ok":true} or "yes"'))
      return
    }
    button.disabled = true
    try {
      await api(`${path}/events/${encodeURIComponent(name.value.trim())}`, 'POST', { text })
      drafts.delete(id)
      done()
    } catch (error) {
      form.prepend(failure(error))
      button.disabled = false
    }
  })
  return form
}

function outputPath(id, stepId, download = true, what = 'output') {
  const path = `/api/workflows/${encodeURIComponent(id)}/steps/${encodeURIComponent(stepId)}/${what}`
  return download ? `${path}?download=1` : path
}

/** A value the API sent as text (an output, a step's arguments), cut with a link to the whole. */
function valueBlock(label, value, href) {
  return h(
    'div',
    { class: `value-${label}` },
    h('div', { class: 'dim small' }, value.json ? `${label} (JSON)` : `${label} (inspected: not JSON)`),
    h('pre', {}, value.text),
    value.truncated
      ? h(
          'p',
          { class: 'dim small' },
          `cut at ${value.text.length} of ${value.length} characters: `,
          h('a', { href, download: true }, 'download it whole'),
        )
      : null,
  )
}

/** When each step ran, as bars along the workflow's span (a step without a committed run has none). */
function timeline(workflow, steps) {
  const all = []
  const walk = (list, depth) => {
    for (const s of list) {
      all.push([s, depth])
      walk(s.children, depth + 1)
    }
  }
  walk(steps, 0)
  const ran = all.filter(([s]) => s.startTime !== undefined)
  if (ran.length === 0) return null
  const start = Math.min(workflow.stats.startTime, ...ran.map(([s]) => s.startTime))
  const end = Math.max(workflow.stats.endTime ?? Date.now(), ...ran.map(([s]) => s.endTime))
  const span = Math.max(1, end - start)
  return h(
    'div',
    { class: 'timeline' },
    ran.map(([s, depth]) => {
      const bar = h('span', {
        class: `bar s-${s.status.toLowerCase()}`,
        title: `${s.name}: ${duration(s.endTime - s.startTime)}`,
      })
      // CSSOM, not a style attribute: allowed by the page's Content-Security-Policy.
      bar.style.marginLeft = `${((s.startTime - start) / span) * 100}%`
      bar.style.width = `max(2px, ${((s.endTime - s.startTime) / span) * 100}%)`
      const label = h('span', { class: 'label' }, `${'  '.repeat(depth)}${s.name}`)
      return h(
        'div',
        { class: 'row' },
        label,
        h('span', { class: 'track' }, bar),
        h('span', { class: 'dim small' }, duration(s.endTime - s.startTime)),
      )
    }),
  )
}

function stepList(id, steps, rootStepId, forkFrom) {
  return h(
    'ul',
    { class: 'steps' },
    steps.map((step) => {
      const detail = h('div', { class: 'step-detail' })
      const row = h(
        'div',
        { class: 'step' },
        badge(step.status),
        ' ',
        h('strong', {}, step.name),
        ' ',
        h('span', { class: 'dim' }, step.stepId),
        step.stepId === rootStepId ? h('span', { class: 'dim' }, ' (output)') : null,
        step.attempts === undefined ? null : h('span', { class: 'dim' }, ` · ${step.attempts} attempt(s)`),
        step.startTime === undefined
          ? null
          : h('span', { class: 'dim' }, ` · ${duration(step.endTime - step.startTime)}`),
        step.codeChanged ? h('span', { class: 'warn' }, ' · code changed') : null,
        step.caughtContinuation
          ? h('span', { class: 'warn' }, ' · caught a failure in its continuation')
          : null,
      )
      const toggle = () => {
        if (open.has(step.stepId)) open.delete(step.stepId)
        else open.add(step.stepId)
        fill()
      }
      row.addEventListener('click', toggle)
      const fill = () => {
        if (!open.has(step.stepId)) return detail.replaceChildren()
        const key = `${id}\n${step.stepId}`
        const output = outputs.get(key)
        const outputNode = output ? valueBlock('output', output, outputPath(id, step.stepId)) : null
        const loader = (label, what, cache) => {
          const b = h('button', { type: 'button' }, `show ${label}`)
          b.addEventListener('click', async () => {
            try {
              cache.set(key, await api(outputPath(id, step.stepId, false, what)))
            } catch (error) {
              cache.set(key, { json: false, text: `${error.code}: ${error.message}`, truncated: false })
            }
            fill()
          })
          return b
        }
        const load = loader('output', 'output', outputs)
        const args = argsShown.get(key)
        const argsNode = args
          ? valueBlock('arguments', args, outputPath(id, step.stepId, true, 'args'))
          : loader('arguments', 'args', argsShown)
        fillWith(
          detail,
          step.error
            ? h(
                'div',
                { class: 'notice error' },
                h('strong', {}, `${step.error.name}: `),
                step.error.message,
                step.error.stack ? h('pre', {}, step.error.stack) : null,
              )
            : null,
          step.failures
            ? h(
                'div',
                {},
                h(
                  'div',
                  { class: 'dim small' },
                  `${step.failures.attempts} failed attempt(s)${step.failures.caught ? ', the last caught by catchExceptions' : ''}`,
                ),
                h(
                  'ol',
                  {},
                  step.failures.errors.map((e) =>
                    h(
                      'li',
                      {},
                      `#${e.attempt} ${time(e.time)} ${e.name}: ${e.message}`,
                      e.stack ? h('pre', {}, e.stack) : null,
                    ),
                  ),
                ),
              )
            : null,
          h(
            'div',
            { class: 'dim small' },
            `started ${time(step.startTime)} · ended ${time(step.endTime)} · depends on ${step.dependsOn.join(', ') || 'nothing'}`,
          ),
          h('div', { class: 'dim small' }, 'options ', h('code', {}, JSON.stringify(step.options))),
          argsNode,
          outputNode ?? (step.kind ? load : null),
          forkFrom ? forkButton(step.stepId, forkFrom) : null,
        )
      }
      fill()
      return h(
        'li',
        {
          class: `s-${step.status.toLowerCase()}`,
          stepId: step.stepId,
          stepName: step.name,
          status: step.status,
        },
        row,
        detail,
        step.children.length ? stepList(id, step.children, rootStepId, forkFrom) : null,
      )
    }),
  )
}

function forkButton(stepId, forkFrom) {
  const b = h('button', { type: 'button' }, 'fork from this step')
  b.addEventListener('click', () => forkFrom(b, stepId))
  return b
}

/** The events sent to a workflow, in the order accepted, with the step that took each. */
function eventTable(events) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['#', 'event', 'sent', 'taken by'].map((t) => h('th', {}, t)),
      ),
    ),
    h(
      'tbody',
      {},
      events.map((e) =>
        h(
          'tr',
          {},
          h('td', {}, String(e.seq)),
          h('td', {}, e.name),
          h('td', {}, time(e.sentAt)),
          h(
            'td',
            { class: e.takenBy ? 'id' : 'dim' },
            e.takenBy ??
              (e.foreign
                ? 'never: sent to an earlier workflow with this id'
                : `pending: no step has taken it yet`),
          ),
        ),
      ),
    ),
  )
}

// ---- the step graph ---------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg'
const collapsed = new Set() // continuation steps drawn closed, kept across refreshes

/** An SVG element with attributes (numbers and names only: values from storage go in as text). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue
    if (key.startsWith('data-')) el.setAttribute(key, String(value))
    else if (key === 'class') el.setAttribute('class', value)
    else el.setAttribute(key, String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

const NODE_H = 40
const CHAR_W = 7.2 // of the 12px monospace labels

/**
 * The steps drawn as a graph laid out by dagre, left to right: a node per step coloured by its
 * status, an edge from each input to the step that takes it; a continuation's steps drawn inside a
 * box beside the step that returned them (click the ▾ to close it). A click on a node calls `pick`.
 */
function stepGraph(steps, rootStepId, pick, redraw) {
  // dagre's layout grows faster than the steps: past a few hundred it would hold the page for
  // seconds at every refresh. Closed continuations count as one node.
  const shown = countShown(steps)
  if (shown > GRAPH_LIMIT)
    return h(
      'p',
      { class: 'notice dim' },
      `${shown} steps: too many to draw as a graph (at most ${GRAPH_LIMIT}); the list below has them all.`,
    )
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false })
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 46, marginx: 8, marginy: 8 })
  g.setDefaultEdgeLabel(() => ({}))
  const drawn = new Map() // stepId → step
  const clusters = new Map() // cluster id → the continuation step
  const add = (list, parent) => {
    for (const step of list) {
      drawn.set(step.stepId, step)
      const open = step.children.length > 0 && !collapsed.has(step.stepId)
      const label = `${step.children.length ? (open ? '▾ ' : '▸ ') : ''}${step.name}`
      const sub = step.children.length && !open ? `${countSteps(step.children)} steps inside` : step.status
      g.setNode(step.stepId, {
        width: Math.max(label.length, sub.length) * CHAR_W + 24,
        height: NODE_H,
        label,
        sub,
      })
      if (parent) g.setParent(step.stepId, parent)
      if (open) {
        const cluster = `${step.stepId}\u0000continuation`
        clusters.set(cluster, step)
        g.setNode(cluster, { label: `continuation of ${step.name}` })
        if (parent) g.setParent(cluster, parent)
        add(step.children, cluster)
        // The step returned the sub-graph: an edge to each of its steps that needs no other.
        const inside = new Set(step.children.map((c) => c.stepId))
        for (const child of step.children)
          if (!child.dependsOn.some((d) => inside.has(d)))
            g.setEdge(step.stepId, child.stepId, { returns: true })
      }
    }
  }
  add(steps, undefined)
  for (const step of drawn.values())
    for (const dep of step.dependsOn) if (drawn.has(dep)) g.setEdge(dep, step.stepId, {})
  dagre.layout(g)
  const { width, height } = g.graph()
  const svg = s('svg', {
    class: 'graph',
    width: Math.ceil(width),
    height: Math.ceil(height),
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
    role: 'img',
    'aria-label': 'step graph',
  })
  svg.append(
    s(
      'defs',
      {},
      s(
        'marker',
        {
          id: 'arrow',
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: 'auto',
        },
        s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }),
      ),
    ),
  )
  // Boxes of continuations first (under their steps), nested as the steps are.
  const groups = new Map()
  const groupOf = (parent) => (parent ? groups.get(parent) : svg)
  const order = [...clusters.keys()].sort((a, b) => depth(g, a) - depth(g, b))
  for (const cluster of order) {
    const n = g.node(cluster)
    const step = clusters.get(cluster)
    const box = s(
      'g',
      { class: 'cluster', 'data-continuation-of': step.stepId },
      s('rect', { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 6 }),
      s('text', { x: n.x - n.width / 2 + 8, y: n.y - n.height / 2 + 14, class: 'cluster-label' }, n.label),
    )
    groups.set(cluster, box)
    groupOf(g.parent(cluster)).append(box)
  }
  for (const e of g.edges()) {
    const { points, returns } = g.edge(e)
    const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ')
    svg.append(s('path', { d, class: returns ? 'edge returns' : 'edge', 'marker-end': 'url(#arrow)' }))
  }
  for (const [stepId, step] of drawn) {
    const n = g.node(stepId)
    const x = n.x - n.width / 2
    const y = n.y - n.height / 2
    const node = s(
      'g',
      {
        class: `node s-${step.status.toLowerCase()}${stepId === rootStepId ? ' output' : ''}`,
        'data-step-id': stepId,
        'data-step-name': step.name,
        'data-status': step.status,
        tabindex: 0,
      },
      s(
        'title',
        {},
        `${step.name} (${stepId}): ${step.status}${stepId === rootStepId ? ', the output' : ''}`,
      ),
      s('rect', { x, y, width: n.width, height: n.height, rx: 5 }),
      s('text', { x: x + 10, y: y + 16, class: 'name' }, n.label),
      s('text', { x: x + 10, y: y + 31, class: 'sub' }, n.sub),
    )
    if (step.children.length) {
      // The ▾/▸ of a continuation opens or closes its box; anywhere else shows the step's detail.
      const toggle = s(
        'rect',
        { x, y, width: 22, height: 22, class: 'toggle' },
        s('title', {}, 'open or close'),
      )
      toggle.addEventListener('click', (event) => {
        event.stopPropagation()
        if (collapsed.has(stepId)) collapsed.delete(stepId)
        else collapsed.add(stepId)
        redraw()
      })
      node.append(toggle)
    }
    node.addEventListener('click', () => pick(stepId))
    node.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') pick(stepId)
    })
    groupOf(g.parent(stepId)).append(node)
  }
  return h('div', { class: 'graph-wrap' }, svg)
}

const GRAPH_LIMIT = 400

/** The nodes a graph of `list` draws: a closed continuation's steps are not drawn. */
function countShown(list) {
  return list.reduce((n, c) => n + 1 + (collapsed.has(c.stepId) ? 0 : countShown(c.children)), 0)
}

function countSteps(list) {
  return list.reduce((n, c) => n + 1 + countSteps(c.children), 0)
}

function depth(g, node) {
  let d = 0
  for (let p = g.parent(node); p; p = g.parent(p)) d++
  return d
}

// ---- schedules --------------------------------------------------------------------------------

/** A run of skipped ticks, in words. */
function skippedText(s) {
  const why = {
    overlap: 'the previous run was still going',
    missed: 'too late to catch up',
    paused: 'paused',
  }
  const ticks = s.count > 1 ? `${s.count} ticks ${time(s.tick)} to ${time(s.until)}` : `tick ${time(s.tick)}`
  return `${ticks}: ${why[s.reason] ?? s.reason}`
}

const undeclared =
  'not declared in the dashboard process: restart it with --import <module that declares the schedule>, or use `wf schedules trigger` / `wf schedules backfill`'
let backfilled // what the last backfill made, shown once

async function renderSchedules() {
  where.textContent = 'schedules'
  const asked = generation
  let list
  try {
    list = await api('/api/schedules')
    if (!current(asked)) return
  } catch (error) {
    if (!current(asked)) return
    show(failure(error))
    return poll(renderSchedules, true)
  }
  const act = async (button, path, method = 'POST', options = {}) => {
    if (options.confirm && !confirm(options.confirm)) return
    button.disabled = true
    try {
      const answer = await api(path, method, options.body === undefined ? undefined : { body: options.body })
      if (answer.workflowId) location.hash = `#/w/${encodeURIComponent(answer.workflowId)}`
      else {
        // A backfill: say what it made (PENDING runs, for a worker), once.
        if (answer.created)
          backfilled = `backfill: ${answer.created.length} run(s) created (PENDING, for a worker), ${answer.existing.length} tick(s) had one already`
        renderSchedules()
      }
    } catch (error) {
      main.prepend(failure(error))
      button.disabled = false
    }
  }
  /** A form for `POST /api/schedules/:id/backfill`: the ticks from … to … (local time). */
  const backfillForm = (s, path) => {
    const from = h('input', { type: 'datetime-local', name: 'from', title: 'first tick' })
    const to = h('input', { type: 'datetime-local', name: 'to', title: 'last tick' })
    const go = h('button', { type: 'submit' }, 'backfill')
    const form = h('form', { class: 'backfill' }, from, ' to ', to, ' ', go)
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      act(go, `${path}/backfill`, 'POST', { body: { from: toIso(from.value), to: toIso(to.value) } })
    })
    return h(
      'details',
      {},
      h(
        'summary',
        { title: s.declaredHere ? 'one PENDING run per tick of a range' : undeclared },
        'backfill',
      ),
      s.declaredHere ? form : h('span', { class: 'dim small' }, undeclared),
    )
  }
  const columns = ['schedule', 'when', 'state', 'last run', 'next tick', 'skipped']
  if (!info.readOnly) columns.push('')
  const table = h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((t) => h('th', {}, t)),
      ),
    ),
    h(
      'tbody',
      {},
      list.schedules.map((s) => {
        const path = `/api/schedules/${encodeURIComponent(s.scheduleId)}`
        let button = null
        let trigger = null
        let remove = null
        if (!info.readOnly) {
          button = h('button', { type: 'button' }, s.paused ? 'resume' : 'pause')
          button.addEventListener('click', () => act(button, `${path}/${s.paused ? 'resume' : 'pause'}`))
          // A run by hand needs the schedule's declaration (its build function) in this process.
          trigger = h(
            'button',
            {
              type: 'button',
              disabled: !s.declaredHere,
              title: s.declaredHere ? 'run it now: a PENDING workflow for a worker' : undeclared,
            },
            'trigger',
          )
          trigger.addEventListener('click', () => act(trigger, `${path}/trigger`))
          remove = h('button', { type: 'button', class: 'danger' }, 'delete')
          remove.addEventListener('click', () =>
            act(remove, path, 'DELETE', {
              confirm: `Delete schedule ${s.scheduleId}? A worker that still declares it stores it again.`,
            }),
          )
        }
        return h(
          'tr',
          {},
          h(
            'td',
            { class: 'id' },
            s.scheduleId,
            s.declaredBy
              ? h('div', { class: 'dim small' }, `declared by ${s.declaredBy.host}:${s.declaredBy.pid}`)
              : null,
          ),
          h(
            'td',
            {},
            s.description,
            h(
              'div',
              { class: 'dim small' },
              `overlap ${s.overlap}, catch-up ${s.catchUp}${s.spec.cron ? ` · cron ${s.spec.cron}` : ''}`,
            ),
          ),
          h('td', {}, s.paused ? h('span', { class: 'warn' }, 'paused') : 'active'),
          h(
            'td',
            { class: 'id' },
            s.lastRun ? h('a', { href: `#/w/${encodeURIComponent(s.lastRun)}` }, s.lastRun) : '-',
            h('div', { class: 'dim small' }, `last tick ${time(s.lastTick)}`),
          ),
          h(
            'td',
            {},
            s.paused ? '-' : time(s.nextTick),
            s.buffered === undefined
              ? null
              : h('div', { class: 'dim small' }, `${time(s.buffered)} waits for the previous run`),
          ),
          h(
            'td',
            {},
            s.skipped.length === 0
              ? h('span', { class: 'dim' }, 'none')
              : h(
                  'details',
                  {},
                  h('summary', {}, `${s.skipped.reduce((n, k) => n + (k.count ?? 1), 0)} tick(s)`),
                  h(
                    'ul',
                    { class: 'small' },
                    s.skipped.map((k) => h('li', {}, skippedText(k))),
                  ),
                ),
          ),
          info.readOnly ? null : h('td', {}, button, ' ', trigger, ' ', remove, backfillForm(s, path)),
        )
      }),
    ),
  )
  const said = backfilled ? h('p', { class: 'notice' }, backfilled) : null
  backfilled = undefined
  show(
    said,
    list.schedules.length
      ? table
      : h(
          'p',
          { class: 'dim' },
          'no schedules stored: a worker stores a schedule when it first polls with a module that declares it (schedule(…)).',
        ),
  )
  // The next tick moves on, and last runs appear: refresh while any schedule is active.
  poll(
    renderSchedules,
    list.schedules.some((s) => !s.paused),
  )
}

// ---- start ------------------------------------------------------------------------------------

async function render() {
  clearTimeout(timer)
  generation++
  const hash = location.hash || '#/'
  if (hash.startsWith('#/w/')) return renderWorkflow(decodeURIComponent(hash.slice(4)))
  if (hash === '#/schedules') return renderSchedules()
  return renderRuns()
}

window.addEventListener('hashchange', render)
// The layout library, from this package's own files (dist/vendor, copied at build time); without
// it (a checkout not built) the steps are shown as the list alone.
const loading = import('/vendor/dagre.js').then(
  (m) => m.default ?? m,
  () => null,
)
try {
  info = await api('/api/info')
} catch (error) {
  show(failure(error))
}
dagre = await loading
render()
