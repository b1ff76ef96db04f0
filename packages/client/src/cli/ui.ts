// `wf ui`: starts the dashboard of @wf/ui on this storage. @wf/ui is resolved from the
// application (the working directory), not from @wf/client: the dashboard depends on the client,
// so the client must not depend on it, and users who never open a browser do not install it.

import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { WfError } from '@wf/core'
import { Command } from 'commander'
import type { WorkflowClient } from '../client.js'
import { type Out, paint } from './format.js'
import { importModules } from './modules.js'
import { wholeNumber } from './worker.js'

/** `wf ui` was run where @wf/ui cannot be resolved. */
export class UiNotInstalledError extends WfError<'WF_UI_NOT_INSTALLED'> {
  constructor(cwd: string, cause: unknown) {
    super('WF_UI_NOT_INSTALLED', `install @wf/ui: npm i -D @wf/ui (it is not installed in ${cwd} or above)`, {
      cause,
    })
  }
}

/** What `wf ui` needs of @wf/ui (its startUi), typed here since the client does not depend on it. */
interface UiModule {
  startUi(options: {
    client: WorkflowClient
    host?: string
    port?: number
    token?: string
    readOnly?: boolean
    importModules?: readonly string[]
    allowedHosts?: readonly string[]
  }): Promise<{ url: string; host: string; port: number; token: string; close(): Promise<void> }>
}

interface UiCommandOptions {
  host?: string
  port?: number
  token?: string
  open?: boolean
  readOnly?: boolean
  import: string[]
  allowHost: string[]
}

/** What the `ui` command takes from the program: its client and output, and the configured imports. */
export interface UiCommandContext {
  context(command: Command): { client: WorkflowClient; out: Out }
  importsOf(given: string[]): string[]
}

async function loadUi(cwd: string): Promise<UiModule> {
  let path: string
  try {
    path = createRequire(join(cwd, 'package.json')).resolve('@wf/ui')
  } catch (error) {
    throw new UiNotInstalledError(cwd, error)
  }
  return (await import(pathToFileURL(path).href)) as UiModule
}

/** Opens `url` in the desktop's browser; a machine without one just keeps the printed URL. */
function openBrowser(url: string): void {
  const [command, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]]
  try {
    spawn(command, args as string[], { stdio: 'ignore', detached: true })
      .on('error', () => {})
      .unref()
  } catch {
    // no browser to open: the URL is printed
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]'])

/** The `ui` command; it resolves once SIGINT or SIGTERM has stopped the server. */
export function uiCommand(ctx: UiCommandContext): Command {
  const collect = (value: string, previous: string[]): string[] => [...previous, value]
  return new Command('ui')
    .description(
      'open a web dashboard of this storage: runs, step graphs, outputs, errors, actions (needs @wf/ui)',
    )
    .option('--host <address>', 'the address to listen on (default 127.0.0.1: this machine only)')
    .option('--port <n>', 'the port (default 7390; 0 for any free port)', wholeNumber('--port', 0))
    .option('--token <token>', 'the token the API needs (default: a random one, printed in the URL)')
    .option('--open', 'open the dashboard in the browser')
    .option(
      '--read-only',
      'no actions: no cancel, resume, fork, delete or event, no pause, resume, trigger, backfill or delete of a schedule',
    )
    .option(
      '--import <module>',
      'modules that define the steps, so the dashboard can resume (repeatable)',
      collect,
      [],
    )
    .option(
      '--allow-host <name>',
      'another name the dashboard answers to, e.g. on a LAN (repeatable)',
      collect,
      [],
    )
    .action(async (options: UiCommandOptions, command: Command) => {
      const cwd = process.cwd()
      const ui = await loadUi(cwd)
      const imports = ctx.importsOf(options.import)
      // Import first: a module may register the storage's URI scheme (a storage plugin).
      await importModules(imports, cwd)
      const { client, out } = ctx.context(command)
      const server = await ui.startUi({
        client,
        ...(options.host === undefined ? {} : { host: options.host }),
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.token === undefined ? {} : { token: options.token }),
        readOnly: options.readOnly ?? false,
        importModules: imports,
        allowedHosts: options.allowHost,
      })
      if (out.json) out.stdout(JSON.stringify({ url: server.url, host: server.host, port: server.port }))
      else {
        out.stdout(`wf ui: ${server.url}`)
        out.stderr(
          `${paint(out, 'dim', 'open the URL above (it carries the token); Ctrl-C stops the dashboard')}\n`,
        )
        if (!LOOPBACK.has(server.host))
          out.stderr(
            `${paint(out, 'yellow', 'wf ui:')} listening on ${server.host}: the token travels over plain HTTP, so use a network you trust\n`,
          )
      }
      if (options.open) openBrowser(server.url)
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop)
          process.off('SIGTERM', stop)
          resolve()
        }
        process.on('SIGINT', stop)
        process.on('SIGTERM', stop)
      })
      await server.close()
    })
}
