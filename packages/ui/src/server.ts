// `startUi`: the dashboard's HTTP server. node:http, no framework: a handful of routes, a static
// page of three files, and guards that must be read whole to be trusted (security.ts).

import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { WorkflowClient } from '@wf/client'
import { InvalidOptionsError, type StorageSpec } from '@wf/core'
import { type ApiContext, errorResponse, isStateChanging, route } from './api.js'
import { API_ERROR_CODES, ApiError, UiListenError } from './errors.js'
import { Runs } from './runs.js'
import {
  allowedHostNames,
  checkHost,
  checkSameOrigin,
  checkToken,
  cookieName,
  generateToken,
  isWildcard,
  sameToken,
} from './security.js'

/** Options of `startUi()`. */
export interface UiOptions {
  /** The client to read and act through (it is not closed by `close()`). Give this or `storage`. */
  client?: WorkflowClient
  /** Where the workflows are (a `Storage` or a URI, as `new WorkflowClient({ storage })` takes); closed by `close()`. */
  storage?: StorageSpec
  /** The address to listen on. Default `127.0.0.1`: only this machine. */
  host?: string
  /** The port; 0 picks a free one. Default 7390. */
  port?: number
  /** The token every /api request needs; one is generated when not given. At least 16 characters. */
  token?: string
  /** Serve no action: cancel, resume, fork, delete, events and schedule actions answer 403. */
  readOnly?: boolean
  /**
   * Modules that define the steps (paths or package names, resolved from `cwd`), imported at start:
   * resume is offered only when some are given, since a resume runs the steps in this process.
   */
  importModules?: readonly string[]
  /** Extra names the `Host` header may carry (beside localhost, 127.0.0.1, [::1] and `host`). */
  allowedHosts?: readonly string[]
  /** Where relative `importModules` resolve from. Default `process.cwd()`. */
  cwd?: string
}

/** A running dashboard. */
export interface UiServer {
  /** The URL to open, with the token (`http://127.0.0.1:7390/?token=…`). */
  url: string
  /** The URL without the token. */
  origin: string
  token: string
  host: string
  port: number
  /** Stops listening (and closes the storage when `startUi` opened it). */
  close(): Promise<void>
}

const DEFAULT_PORT = 7390
const OUTPUT_LIMIT = 256 * 1024
const BODY_LIMIT = 1024 * 1024
const ASSETS = new URL('../assets/', import.meta.url)
// The layout library's browser build, copied there by the build (scripts/vendor.mjs); ../dist from
// src/ (tests) and from dist/ alike.
const VENDOR = new URL('../dist/vendor/', import.meta.url)
const STATIC: Record<string, { file: string; type: string; base?: URL }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/vendor/dagre.js': { file: 'dagre.js', type: 'text/javascript; charset=utf-8', base: VENDOR },
}
// The page loads only its own files, is never framed, and never sends the URL (with its token) on.
const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
}

function isClient(value: unknown): value is WorkflowClient {
  const c = value as Partial<WorkflowClient> | null
  return (
    typeof c === 'object' &&
    c !== null &&
    [
      'listAll',
      'getMetadata',
      'getGraph',
      'getOutput',
      'cancel',
      'resumeAsync',
      'delete',
      'listEvents',
      'sendEvent',
      'fork',
      'listSchedules',
      'triggerSchedule',
      'pauseSchedule',
      'resumeSchedule',
    ].every((m) => typeof (c as Record<string, unknown>)[m] === 'function')
  )
}

function validate(options: UiOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new InvalidOptionsError('startUi options must be an object')
  const { client, storage, host, port, token, readOnly, importModules, allowedHosts } = options
  if (client !== undefined && storage !== undefined)
    throw new InvalidOptionsError('give startUi either client or storage, not both')
  if (client !== undefined && !isClient(client))
    throw new InvalidOptionsError('client must be a WorkflowClient from @wf/client')
  if (host !== undefined && (typeof host !== 'string' || host.trim() === ''))
    throw new InvalidOptionsError('host must be an address or host name, e.g. 127.0.0.1')
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw new InvalidOptionsError(`port must be a whole number from 0 to 65535, got ${String(port)}`)
  if (
    token !== undefined &&
    (typeof token !== 'string' || !/^[\x21-\x7e]{16,}$/.test(token) || /[;,"\\]/.test(token))
  )
    throw new InvalidOptionsError(
      'token must be at least 16 visible ASCII characters without ; , " or \\ (or leave it out: one is generated)',
    )
  if (readOnly !== undefined && typeof readOnly !== 'boolean')
    throw new InvalidOptionsError('readOnly must be a boolean')
  for (const [name, list] of [
    ['importModules', importModules],
    ['allowedHosts', allowedHosts],
  ] as const) {
    if (list !== undefined && (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '')))
      throw new InvalidOptionsError(`${name} must be an array of non-empty strings`)
  }
}

/** A module specifier as import() takes it: paths by file URL (from `cwd`), names from `cwd`'s node_modules. */
function moduleUrl(spec: string, cwd: string): string {
  if (/^(file|data|node):/.test(spec)) return spec
  if (isAbsolute(spec) || spec.startsWith('.')) return pathToFileURL(resolve(cwd, spec)).href
  try {
    return pathToFileURL(createRequire(join(cwd, 'index.js')).resolve(spec)).href
  } catch {
    return spec // an ESM-only package: let import() resolve it
  }
}

/** A request's body as UTF-8 text, refused past BODY_LIMIT (an event's payload, a fork's options). */
async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > BODY_LIMIT)
      throw new ApiError(
        413,
        API_ERROR_CODES.tooLarge,
        `the request body is over ${BODY_LIMIT} bytes: send a smaller payload (large values belong in a step's output)`,
      )
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  })
  res.end(text)
}

/**
 * Starts the dashboard and resolves once it listens.
 *
 * ```ts
 * import { startUi } from '@wf/ui'
 * const ui = await startUi({ storage: './workflow_data' })
 * console.log(`open ${ui.url}`) // http://127.0.0.1:7390/?token=…
 * // …
 * await ui.close()
 * ```
 */
export async function startUi(options: UiOptions = {}): Promise<UiServer> {
  validate(options)
  const host = options.host ?? '127.0.0.1'
  const requestedPort = options.port ?? DEFAULT_PORT
  const token = options.token ?? generateToken()
  const readOnly = options.readOnly ?? false
  const imports = options.importModules ?? []
  const cwd = options.cwd ?? process.cwd()
  // Import before anything reads the storage: a module may register the storage's URI scheme.
  for (const spec of imports) await import(moduleUrl(spec, cwd))
  const owned = options.client === undefined
  const client = options.client ?? new WorkflowClient({ storage: options.storage })
  const resumed = new Map<string, Promise<unknown>>()
  const runs = new Runs(client, readOnly)
  const ctx: ApiContext = {
    client,
    readOnly,
    resumeRefusal:
      imports.length > 0
        ? undefined
        : 'resume runs the steps in the dashboard process, which has not imported them: restart it with --import <module that defines the steps> (or resume with `wf resume <id> --import …`, or a worker)',
    outputLimit: OUTPUT_LIMIT,
    runs,
    track: (workflowId, result) => {
      // The run's outcome is in the storage; a failure must not end the dashboard's process.
      const settled = result.then(
        () => undefined,
        () => undefined,
      )
      resumed.set(workflowId, settled)
      void settled.then(() => {
        resumed.delete(workflowId)
        runs.invalidate() // it ended: the counts change
      })
    },
  }
  const allowed = allowedHostNames(host, options.allowedHosts ?? [])
  let cookie = cookieName(requestedPort)

  const page = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const asset = STATIC[url.pathname]
    if (!asset || (req.method !== 'GET' && req.method !== 'HEAD'))
      throw new ApiError(404, 'WF_UI_NOT_FOUND', `no page at ${url.pathname}`)
    const given = url.searchParams.get('token')
    if (url.pathname === '/' && given !== null) {
      if (!sameToken(given, token))
        throw new ApiError(401, 'WF_UI_UNAUTHORIZED', 'wrong token: open the URL wf ui printed')
      // Keep the token in a cookie this site alone sends, and drop it from the address bar.
      res.writeHead(303, {
        ...PAGE_HEADERS,
        'Set-Cookie': `${cookie}=${token}; Path=/; HttpOnly; SameSite=Strict`,
        Location: '/',
      })
      res.end()
      return
    }
    const body = await readFile(new URL(asset.file, asset.base ?? ASSETS)).catch((error: unknown) => {
      // Not built (a checkout without `pnpm build`): the page draws its steps as a list instead.
      if ((error as { code?: unknown }).code === 'ENOENT')
        throw new ApiError(404, 'WF_UI_NOT_FOUND', `${url.pathname} is not built: run the package's build`)
      throw error
    })
    res.writeHead(200, { ...PAGE_HEADERS, 'Content-Type': asset.type, 'Content-Length': body.length })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      checkHost(req, allowed)
      const url = new URL(req.url ?? '/', 'http://localhost')
      const method = req.method ?? 'GET'
      if (url.pathname !== '/api' && !url.pathname.startsWith('/api/')) return await page(req, res, url)
      const credential = checkToken(req, token, cookie)
      let requestBody = ''
      if (isStateChanging(method)) {
        checkSameOrigin(req, credential)
        requestBody = await readBody(req)
      }
      const key = req.headers['idempotency-key']
      const { status, body, download } = await route(ctx, method, url.pathname, {
        query: url.searchParams,
        body: requestBody,
        ...(typeof key === 'string' ? { idempotencyKey: key } : {}),
      })
      if (download) {
        res.writeHead(status, {
          'Content-Type': download.type,
          'Content-Disposition': `attachment; filename="${download.filename}"`,
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
        })
        res.end(String(body))
      } else send(res, status, body)
    } catch (error) {
      const { status, headers, body } = errorResponse(error)
      if (!res.headersSent) send(res, status, body, headers)
      else res.destroy()
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res)
  })
  await new Promise<void>((done, fail) => {
    server.once('error', (error) => fail(new UiListenError(host, requestedPort, error)))
    server.listen(requestedPort, host, () => done())
  }).catch(async (error: unknown) => {
    if (owned) await client.close().catch(() => {})
    throw error
  })
  const port = (server.address() as AddressInfo).port
  cookie = cookieName(port)
  // A wildcard address is not a name to open: the URL names this machine's loopback.
  const urlHost = isWildcard(host)
    ? '127.0.0.1'
    : host.includes(':') && !host.startsWith('[')
      ? `[${host}]`
      : host
  const origin = `http://${urlHost}:${port}`
  return {
    url: `${origin}/?token=${encodeURIComponent(token)}`,
    origin,
    token,
    host,
    port,
    close: async () => {
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
      if (owned) await client.close()
    },
  }
}
