// The dashboard with many workflows (issue #25): 10,000 workflows on a folder (its default durability)
// or in an S3 bucket (--backend=s3: the gateway of WF_S3_ENDPOINT, a new bucket), then the time of the
// API call behind the runs page (`GET /api/workflows?limit=200`, what the page asks for; first call
// and the median of the next ones), of the page after it (its cursor), of filtered calls, and the
// runs page's first paint in Debian's headless Chromium (driven by playwright-core): first
// contentful paint and the moment the table is drawn, from the start of the navigation, each in a
// new browser context.
//
//   node bench/ui.mjs [--backend=folder|s3] [--count=10000] [--rounds=5] [--quick]   (after `pnpm build`)
//
// Prints a Markdown table and writes the raw numbers to <tmpdir>/wf-bench-ui-last.json. Needs
// /usr/bin/chromium (scripts/install-chromium.sh) or WF_CHROMIUM for the page's part.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const arg = (name, fallback) => {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`))
  return found ? Number(found.split('=')[1]) : fallback
}
const quick = process.argv.includes('--quick')
const COUNT = arg('count', quick ? 1000 : 10_000)
const ROUNDS = arg('rounds', quick ? 3 : 5)
const FAILED_EVERY = 20 // 5 % FAILED
const PENDING_EVERY = 50 // 2 % PENDING (stored for a worker, never run)
const backend = process.argv.find((a) => a.startsWith('--backend='))?.slice('--backend='.length) ?? 'folder'
if (backend !== 'folder' && backend !== 's3') throw new Error(`--backend=${backend}: folder or s3`)
const dist = (pkg) => import(pathToFileURL(join(root, 'packages', pkg, 'dist/index.js')).href)
const core = await dist('core')
const { createFileSystemStorage } = await dist('storage-fs')
const { WorkflowClient } = await dist('client')
const { s3FromEnv, openBackend, importS3Client } = await import('./backends.mjs')
const { startUi } = await dist('ui')
// biome-ignore lint/suspicious/noUndeclaredEnvVars: a benchmark script, not a turbo task.
const executablePath = process.env.WF_CHROMIUM || '/usr/bin/chromium'

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const ms = (x) => (x === undefined ? '-' : `${Math.round(x).toLocaleString('en-US')} ms`)

const dir = mkdtempSync(join(tmpdir(), 'wf-bench-ui-'))
/** The storage the workflows live in: the folder (filled without fsync, read with it) or a new bucket. */
let open
if (backend === 's3') {
  const s3 = s3FromEnv()
  if (!s3)
    throw new Error('--backend=s3 needs WF_S3_ENDPOINT (and WF_S3_ACCESS_KEY_ID, WF_S3_SECRET_ACCESS_KEY)')
  const sdk = await importS3Client(root)
  const bucket = `wf-bench-ui-${Date.now().toString(36)}`
  const client = new sdk.S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
  })
  await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
  open = () => openBackend(root, 's3', { s3, bucket, prefix: 'wf/' })
} else {
  open = (fill) => createFileSystemStorage({ root: dir, ...(fill ? { durability: 'none' } : {}) })
}
try {
  // ---- the workflows: on the folder filled without fsync (fast), read below with it (the default)
  const fillStarted = Date.now()
  {
    const storage = await open(true)
    const runtime = new core.Runtime(storage)
    const ok = core.step('bench-ui.ok', (n) => n + 1)
    const bad = core.step(
      'bench-ui.bad',
      (n) => {
        throw new RangeError(`bad ${n}`)
      },
      { maxRetries: 0 },
    )
    const id = (i) => `run-${String(i).padStart(6, '0')}`
    const one = async (i) => {
      const metadata = { team: i % 3 === 0 ? 'data' : 'ops', n: i }
      if (i % PENDING_EVERY === 0) return runtime.submit(ok(i), { workflowId: id(i), metadata })
      if (i % FAILED_EVERY === 0)
        return runtime.run(ok(bad(i)), { workflowId: id(i), metadata }).catch(() => undefined)
      return runtime.run(ok(ok(i)), { workflowId: id(i), metadata })
    }
    for (let i = 0; i < COUNT; i += 64)
      await Promise.all(Array.from({ length: Math.min(64, COUNT - i) }, (_, k) => one(i + k)))
    await storage.close?.()
  }
  const fillMs = Date.now() - fillStarted
  console.log(`filled ${COUNT} workflows in ${ms(fillMs)}`)

  const storage = await open(false)
  const ui = await startUi({ client: new WorkflowClient({ storage }), port: 0 })
  const auth = { authorization: `Bearer ${ui.token}` }
  const timeCall = async (path) => {
    const t0 = performance.now()
    const res = await fetch(`${ui.origin}${path}`, { headers: auth })
    const body = await res.json()
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(body)}`)
    return { ms: performance.now() - t0, body }
  }
  const api = {}
  let counts
  let cursor
  for (const [label, path] of [
    ['runs page (limit 200)', '/api/workflows?limit=200'],
    ['FAILED only (limit 200)', '/api/workflows?status=FAILED&limit=200'],
    [
      'metadata filter (limit 200)',
      `/api/workflows?limit=200&metadata=${encodeURIComponent('{"team":"data"}')}`,
    ],
  ]) {
    const first = await timeCall(path)
    const next = []
    for (let r = 0; r < ROUNDS; r++) next.push((await timeCall(path)).ms)
    counts ??= first.body.counts
    cursor ??= first.body.cursor
    api[label] = {
      first: first.ms,
      median: median(next),
      runs: next,
      rows: first.body.workflows.length,
      total: first.body.total,
    }
    console.log(
      `${label}: first ${ms(first.ms)}, then median ${ms(median(next))} (${first.body.workflows.length} rows of ${first.body.total})`,
    )
  }

  // The page after the first (the "more" button), from the first page's cursor.
  if (cursor !== undefined) {
    const path = `/api/workflows?limit=200&cursor=${encodeURIComponent(cursor)}`
    const first = await timeCall(path)
    const next = []
    for (let r = 0; r < ROUNDS; r++) next.push((await timeCall(path)).ms)
    api['the next page (limit 200, its cursor)'] = {
      first: first.ms,
      median: median(next),
      runs: next,
      rows: first.body.workflows.length,
    }
    console.log(
      `next page: first ${ms(first.ms)}, then median ${ms(median(next))} (${first.body.workflows.length} rows)`,
    )
  }

  // ---- first paint in Chromium ------------------------------------------------------------------
  let paint
  if (!existsSync(executablePath)) {
    console.log(`no Chromium at ${executablePath}: the page's part is skipped (scripts/install-chromium.sh)`)
  } else {
    const require = createRequire(join(root, 'packages/ui/package.json'))
    const { chromium } = require('playwright-core')
    const browser = await chromium.launch({
      executablePath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    })
    paint = { fcp: [], table: [] }
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
        const page = await context.newPage()
        // The cookie first (the printed URL redirects to /), so the measured load is the page alone.
        await page.goto(ui.url)
        await page.waitForSelector('main table tbody tr', { timeout: 120_000 })
        await page.goto('about:blank')
        await page.goto(`${ui.origin}/`)
        // performance.now() when the first row is there: from the navigation's start.
        const table = await (
          await page.waitForFunction(
            () => document.querySelector('main table tbody tr') && performance.now(),
            null,
            {
              polling: 'raf',
              timeout: 120_000,
            },
          )
        ).jsonValue()
        const fcp = await page.evaluate(
          () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
        )
        paint.fcp.push(fcp)
        paint.table.push(table)
        console.log(`page load ${r + 1}: first contentful paint ${ms(fcp)}, table drawn ${ms(table)}`)
        await context.close()
      }
    } finally {
      await browser.close()
    }
  }
  await ui.close()
  await storage.close?.()

  const lines = [
    `### The dashboard with ${COUNT.toLocaleString('en-US')} workflows ${backend === 's3' ? 'in an S3 bucket (Ceph RGW)' : 'on the folder'} (bench/ui.mjs)`,
    '',
    `${COUNT.toLocaleString('en-US')} workflows (${Object.entries(counts)
      .filter(([, n]) => n > 0)
      .map(([status, n]) => `${n.toLocaleString('en-US')} ${status}`)
      .join(
        ', ',
      )}; 2 steps each, metadata \`{ team, n }\`) ${backend === 's3' ? 'in a new bucket of the local gateway' : 'on a folder'}; ${cpus().length} cores, Node ${process.versions.node}; ${ROUNDS} rounds after the first.`,
    '',
    '| what | first | median of the next |',
    '| --- | ---: | ---: |',
    ...Object.entries(api).map(
      ([label, a]) => `| \`GET /api/workflows\`, ${label} | ${ms(a.first)} | ${ms(a.median)} |`,
    ),
  ]
  if (paint)
    lines.push(
      `| runs page: first contentful paint (headless Chromium) | ${ms(paint.fcp[0])} | ${ms(median(paint.fcp.slice(1)))} |`,
      `| runs page: table drawn (200 rows), from navigation start | ${ms(paint.table[0])} | ${ms(median(paint.table.slice(1)))} |`,
    )
  console.log(`\n${lines.join('\n')}\n`)
  const raw = join(tmpdir(), 'wf-bench-ui-last.json')
  writeFileSync(
    raw,
    JSON.stringify(
      { backend, count: COUNT, rounds: ROUNDS, fillMs, api, paint, at: new Date().toISOString() },
      null,
      2,
    ),
  )
  console.log(`raw numbers: ${raw}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
