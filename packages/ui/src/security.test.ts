// The guards of every request, on a real server over a real folder: /api needs the token (Bearer
// or the cookie the printed URL sets), on loopback, when bound to every interface and when bound to
// another address of this machine; a foreign Host is refused (DNS rebinding); a state-changing
// request from another origin is refused (CSRF).

import { networkInterfaces } from 'node:os'
import { InvalidOptionsError, Runtime, type Storage } from '@wf/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startUi, UiListenError, type UiServer } from './index.js'
import { folderBackend, request } from './test-support/harness.js'
import { add } from './test-support/steps.mjs'

let storage: Storage
let cleanup: () => Promise<void>
let ui: UiServer

beforeAll(async () => {
  ;({ storage, cleanup } = await folderBackend.open())
  await new Runtime(storage).run(add(1), { workflowId: 'one' })
  ui = await startUi({ storage, port: 0 })
})

afterAll(async () => {
  await ui?.close()
  await cleanup?.()
})

const cookieOf = (setCookie: string[] | undefined): string => (setCookie?.[0] ?? '').split(';')[0] ?? ''

describe('the token', () => {
  it('is generated at random when none is given, and printed in the URL', async () => {
    const other = await startUi({ storage, port: 0 })
    try {
      expect(ui.token).toMatch(/^[\w-]{43}$/)
      expect(other.token).not.toBe(ui.token)
      expect(ui.url).toBe(`http://127.0.0.1:${ui.port}/?token=${ui.token}`)
    } finally {
      await other.close()
    }
  })

  it('is required on every /api request: none or a wrong one gets 401', async () => {
    const none = await request(ui.port, 'GET', '/api/workflows')
    expect(none.status).toBe(401)
    expect(none.json.error.code).toBe('WF_UI_UNAUTHORIZED')
    expect(none.headers['www-authenticate']).toContain('Bearer')
    const wrong = await request(ui.port, 'GET', '/api/workflows', { authorization: 'Bearer not-the-token' })
    expect(wrong.status).toBe(401)
    const inQuery = await request(ui.port, 'GET', `/api/workflows?token=${ui.token}`)
    expect(inQuery.status).toBe(401)
  })

  it('is accepted as a Bearer token', async () => {
    const reply = await request(ui.port, 'GET', '/api/workflows', { authorization: `Bearer ${ui.token}` })
    expect(reply.status).toBe(200)
    expect(reply.json.workflows.map((w: { workflowId: string }) => w.workflowId)).toEqual(['one'])
  })

  it('set as an HttpOnly SameSite=Strict cookie by the printed URL, which then drops it from the address', async () => {
    const open = await request(ui.port, 'GET', `/?token=${ui.token}`)
    expect(open.status).toBe(303)
    expect(open.headers.location).toBe('/')
    const setCookie = open.headers['set-cookie']?.[0] ?? ''
    expect(setCookie).toContain('HttpOnly')
    expect(setCookie).toContain('SameSite=Strict')
    const reply = await request(ui.port, 'GET', '/api/workflows', {
      cookie: cookieOf(open.headers['set-cookie']),
    })
    expect(reply.status).toBe(200)
    const wrong = await request(ui.port, 'GET', '/?token=wrong')
    expect(wrong.status).toBe(401)
    expect(wrong.headers['set-cookie']).toBeUndefined()
  })

  it('is required when bound to every interface too', async () => {
    const wide = await startUi({ storage, host: '0.0.0.0', port: 0 })
    try {
      expect(wide.url).toBe(`http://127.0.0.1:${wide.port}/?token=${wide.token}`)
      expect((await request(wide.port, 'GET', '/api/workflows')).status).toBe(401)
      const ok = await request(wide.port, 'GET', '/api/workflows', { authorization: `Bearer ${wide.token}` })
      expect(ok.status).toBe(200)
    } finally {
      await wide.close()
    }
  })

  it('given explicitly must be long enough to guess hard', async () => {
    await expect(startUi({ storage, port: 0, token: 'short' })).rejects.toThrow(InvalidOptionsError)
    const given = await startUi({ storage, port: 0, token: 'a-long-enough-token-1234' })
    try {
      const ok = await request(given.port, 'GET', '/api/info', {
        authorization: 'Bearer a-long-enough-token-1234',
      })
      expect(ok.status).toBe(200)
    } finally {
      await given.close()
    }
  })
})

describe('the Host header', () => {
  it('refuses a foreign Host with 403, on the API and on the page, token or not', async () => {
    for (const path of ['/api/workflows', '/', '/app.js']) {
      const reply = await request(ui.port, 'GET', path, {
        host: `evil.example:${ui.port}`,
        authorization: `Bearer ${ui.token}`,
      })
      expect(reply.status, path).toBe(403)
      expect(reply.json.error.code).toBe('WF_UI_FORBIDDEN_HOST')
    }
  })

  it('accepts localhost, 127.0.0.1 and [::1], and the host it was started with', async () => {
    for (const host of ['localhost', '127.0.0.1', '[::1]']) {
      const reply = await request(ui.port, 'GET', '/api/info', {
        host: `${host}:${ui.port}`,
        authorization: `Bearer ${ui.token}`,
      })
      expect(reply.status, host).toBe(200)
    }
    const named = await startUi({ storage, port: 0, host: '0.0.0.0', allowedHosts: ['wf.lan'] })
    try {
      const reply = await request(named.port, 'GET', '/api/info', {
        host: `wf.lan:${named.port}`,
        authorization: `Bearer ${named.token}`,
      })
      expect(reply.status).toBe(200)
    } finally {
      await named.close()
    }
  })
})

// This machine's first IPv4 address that is not loopback (a LAN's, a container's eth0).
const external = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address

describe('bound to an address of this machine other than loopback, reached through it', () => {
  let bound: UiServer | undefined
  const get = (path: string, headers: Record<string, string>) =>
    request(bound?.port ?? 0, 'GET', path, headers, external)

  beforeAll(async () => {
    if (external !== undefined) bound = await startUi({ storage, host: external, port: 0 })
  })

  afterAll(async () => {
    await bound?.close()
  })

  it('needs the token: none or a wrong one gets 401, the right one is served', async (ctx) => {
    if (bound === undefined) return ctx.skip('this machine has no IPv4 address other than loopback')
    expect(bound.url).toBe(`http://${external}:${bound.port}/?token=${bound.token}`)
    const own = { host: `${external}:${bound.port}` }
    const none = await get('/api/workflows', own)
    expect(none.status).toBe(401)
    expect(none.json.error.code).toBe('WF_UI_UNAUTHORIZED')
    expect((await get('/api/workflows', { ...own, authorization: 'Bearer not-the-token' })).status).toBe(401)
    expect((await get('/?token=not-the-token', own)).status).toBe(401)
    const ok = await get('/api/workflows', { ...own, authorization: `Bearer ${bound.token}` })
    expect(ok.status).toBe(200)
    expect(ok.json.workflows.map((w: { workflowId: string }) => w.workflowId)).toEqual(['one'])
  })

  it('refuses a Host it was not given with 403, on the API and the page, token or not', async (ctx) => {
    if (bound === undefined) return ctx.skip('this machine has no IPv4 address other than loopback')
    const foreign = `evil.example:${bound.port}`
    for (const path of ['/api/workflows', '/']) {
      const attempts: Record<string, string>[] = [
        { host: foreign },
        { host: foreign, authorization: `Bearer ${bound.token}` },
      ]
      for (const headers of attempts) {
        const reply = await get(path, headers)
        expect(reply.status, `${path} ${JSON.stringify(headers)}`).toBe(403)
        expect(reply.json.error.code).toBe('WF_UI_FORBIDDEN_HOST')
      }
    }
  })
})

describe('a state-changing request', () => {
  it('from another origin is refused with 403, even with the cookie or the token', async () => {
    const open = await request(ui.port, 'GET', `/?token=${ui.token}`)
    const cookie = cookieOf(open.headers['set-cookie'])
    const attempts: Record<string, string>[] = [
      { cookie, origin: 'http://evil.example' },
      { authorization: `Bearer ${ui.token}`, origin: 'http://evil.example' },
      { cookie, origin: `http://127.0.0.1:${ui.port + 1}` },
      { cookie }, // a cookie alone, without Origin: not a page of this server
      { authorization: `Bearer ${ui.token}`, 'sec-fetch-site': 'cross-site' },
    ]
    for (const headers of attempts) {
      const reply = await request(ui.port, 'POST', '/api/workflows/one/cancel', headers)
      expect(reply.status, JSON.stringify(headers)).toBe(403)
      expect(reply.json.error.code).toBe('WF_UI_CROSS_ORIGIN')
    }
    const status = await request(ui.port, 'GET', '/api/workflows/one', { cookie })
    expect(status.json.workflow.status).toBe('SUCCESSFUL')
  })

  it('from its own page (same Origin, the cookie), or a script with the Bearer token, is served', async () => {
    const open = await request(ui.port, 'GET', `/?token=${ui.token}`)
    const cookie = cookieOf(open.headers['set-cookie'])
    const page = await request(ui.port, 'POST', '/api/workflows/one/cancel', {
      cookie,
      origin: `http://127.0.0.1:${ui.port}`,
      'sec-fetch-site': 'same-origin',
    })
    expect(page.status).toBe(200)
    expect(page.json.status).toBe('SUCCESSFUL') // it had finished: nothing to cancel
    const script = await request(ui.port, 'POST', '/api/workflows/one/cancel', {
      authorization: `Bearer ${ui.token}`,
    })
    expect(script.status).toBe(200)
  })
})

describe('the page', () => {
  it('is served without the token, with a CSP that allows only its own files, and is never framed', async () => {
    const page = await request(ui.port, 'GET', '/')
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(page.headers['content-security-policy']).toContain("default-src 'none'")
    expect(page.headers['content-security-policy']).toContain("script-src 'self'")
    expect(page.headers['x-frame-options']).toBe('DENY')
    expect(page.headers['referrer-policy']).toBe('no-referrer')
    expect(page.text).not.toMatch(/https?:\/\//)
    const script = await request(ui.port, 'GET', '/app.js')
    expect(script.status).toBe(200)
    expect(script.text).not.toContain('innerHTML')
    // The SVG namespace is a name, never fetched.
    expect(script.text).not.toMatch(/https?:\/\/(?!127\.0\.0\.1|www\.w3\.org\/2000\/svg')/)
    // The graph's layout library, from this package's build (dist/vendor), not from the internet.
    const layout = await request(ui.port, 'GET', '/vendor/dagre.js')
    expect(layout.status).toBe(200)
    expect(layout.headers['content-type']).toBe('text/javascript; charset=utf-8')
    expect(layout.headers['content-security-policy']).toContain("default-src 'none'")
    expect(layout.text).toContain('@dagrejs/dagre')
    expect(layout.text).not.toMatch(/https?:\/\//)
    expect((await request(ui.port, 'GET', '/vendor/dagre.LICENSE.txt')).status).toBe(404)
    expect((await request(ui.port, 'GET', '/../package.json')).status).toBe(404)
  })
})

describe('startUi', () => {
  it('refuses bad options with InvalidOptionsError', async () => {
    await expect(startUi({ storage, port: 70000 })).rejects.toThrow(InvalidOptionsError)
    await expect(startUi({ storage, host: '' })).rejects.toThrow(InvalidOptionsError)
    await expect(startUi({ storage, client: {} as never })).rejects.toThrow(InvalidOptionsError)
    await expect(startUi({ storage, importModules: 'x' as never })).rejects.toThrow(InvalidOptionsError)
  })

  it('says when the port is taken', async () => {
    await expect(startUi({ storage, port: ui.port })).rejects.toThrow(UiListenError)
    await expect(startUi({ storage, port: ui.port })).rejects.toThrow(`port ${ui.port} is in use`)
  })
})
