// The guards every request passes before it reaches a route: the `Host` header must name this
// server (a page on another site can reach 127.0.0.1 through DNS rebinding, and its requests then
// carry that site's name), `/api` needs the token (Bearer, or the cookie the page got from the
// printed URL), and a state-changing request must come from this server's own origin (no CSRF).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { API_ERROR_CODES, ApiError } from './errors.js'

/** A token for the printed URL: 32 random bytes, URL-safe. */
export function generateToken(): string {
  return randomBytes(32).toString('base64url')
}

/** Host names a loopback server always answers to. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]', '::1']

/** Whether `host` is a wildcard address (every interface), which no request names as its Host. */
export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]'
}

/** The names a request's `Host` may carry: loopback, the host bound to, and any extra ones given. */
export function allowedHostNames(host: string, extra: readonly string[]): Set<string> {
  const names = new Set(LOOPBACK_NAMES)
  const add = (name: string) => {
    const lower = name.toLowerCase()
    names.add(lower)
    // An IPv6 literal appears in Host within brackets.
    if (lower.includes(':') && !lower.startsWith('[')) names.add(`[${lower}]`)
  }
  if (!isWildcard(host)) add(host)
  for (const name of extra) add(name)
  return names
}

/** The host name of a `Host` header without its port (`[::1]:7390` → `[::1]`). */
export function hostNameOf(header: string): string {
  const lower = header.trim().toLowerCase()
  if (lower.startsWith('[')) {
    const end = lower.indexOf(']')
    return end === -1 ? lower : lower.slice(0, end + 1)
  }
  const colon = lower.lastIndexOf(':')
  return colon === -1 ? lower : lower.slice(0, colon)
}

/** Refuses a request whose `Host` is missing or not one of `allowed` (403). */
export function checkHost(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const header = req.headers.host
  if (header === undefined || !allowed.has(hostNameOf(header))) {
    throw new ApiError(
      403,
      API_ERROR_CODES.forbiddenHost,
      `this server does not answer to the host ${JSON.stringify(header ?? '')}: open it as localhost or 127.0.0.1 (or the --host it was started with; --allow-host adds a name)`,
    )
  }
}

/** The cookie the page keeps the token in; named by port, since cookies are shared by every port of a host. */
export function cookieName(port: number): string {
  return `wf-ui-token-${port}`
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** Compares in constant time (through digests, so lengths do not leak either). */
export function sameToken(given: string | undefined, token: string): boolean {
  if (given === undefined) return false
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

/** How a request proved it holds the token. */
export type Credential = 'bearer' | 'cookie'

/** The request's credential, or a 401 when it has none or a wrong one. */
export function checkToken(req: IncomingMessage, token: string, cookie: string): Credential {
  const auth = req.headers.authorization
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (match && sameToken(match[1], token)) return 'bearer'
  } else if (sameToken(readCookie(req, cookie), token)) return 'cookie'
  throw new ApiError(
    401,
    API_ERROR_CODES.unauthorized,
    'this API needs the token wf ui printed: send "Authorization: Bearer <token>", or open the printed URL (…/?token=<token>) in the browser',
    { 'WWW-Authenticate': 'Bearer realm="wf ui"' },
  )
}

/**
 * Refuses a state-changing request that may come from another site: its `Origin` must be this
 * server's own (`http://` + the Host it was sent to, already checked); without an `Origin`, only a
 * Bearer token will do (a script; a browser sends Origin on every cross-site POST and DELETE).
 */
export function checkSameOrigin(req: IncomingMessage, credential: Credential): void {
  const origin = req.headers.origin
  const fetchSite = req.headers['sec-fetch-site']
  const own = `http://${req.headers.host ?? ''}`.toLowerCase()
  const crossSite = fetchSite !== undefined && fetchSite !== 'same-origin' && fetchSite !== 'none'
  if (
    origin === undefined ? credential === 'bearer' && !crossSite : origin.toLowerCase() === own && !crossSite
  )
    return
  throw new ApiError(
    403,
    API_ERROR_CODES.crossOrigin,
    origin === undefined
      ? 'a request that changes something needs the Origin header of this page, or an "Authorization: Bearer <token>" header'
      : `a request that changes something must come from this page (${own}), not from ${JSON.stringify(origin)}`,
  )
}
