// How the `wf` command prints: aligned tables, status colours (only on a TTY, never with
// NO_COLOR), durations and times, and values (JSON when they are JSON, util.inspect otherwise).

import { inspect, stripVTControlCharacters, styleText } from 'node:util'
import type { WorkflowStatus } from '@wf/core'
import { isJsonable } from '@wf/core/internal'
import type { StepStatus } from '../types.js'

/** Where and how a command writes. */
export interface Out {
  color: boolean
  json: boolean
  stdout(text: string): void
  stderr(text: string): void
}

/** Whether to colour a stream: a TTY, `NO_COLOR` unset or empty, `--no-color` not given. */
export function useColor(stream: NodeJS.WriteStream, flag: boolean): boolean {
  const noColor = process.env.NO_COLOR
  return flag && Boolean(stream.isTTY) && (noColor === undefined || noColor === '')
}

export type Style = 'red' | 'green' | 'yellow' | 'magenta' | 'cyan' | 'dim' | 'bold'

/** `text` in `style` when `out` is coloured. */
export function paint(out: Pick<Out, 'color'>, style: Style, text: string): string {
  // useColor has decided, for the stream wf writes to: styleText must not judge again by
  // process.stdout (a Node whose styleText takes no options always styles, which is as wanted).
  return out.color ? styleText(style, text, { validateStream: false }) : text
}

const STATUS_STYLE: Record<WorkflowStatus | StepStatus, Style> = {
  SUCCESSFUL: 'green',
  FAILED: 'red',
  RUNNING: 'cyan',
  RESUMABLE: 'yellow',
  CANCELED: 'magenta',
  PENDING: 'dim',
  CONTINUED: 'cyan',
}

export function status(out: Pick<Out, 'color'>, value: WorkflowStatus | StepStatus): string {
  return paint(out, STATUS_STYLE[value], value)
}

const visibleLength = (text: string): number => stripVTControlCharacters(text).length

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][], out: Pick<Out, 'color'>): string {
  const all = [header.map((h) => paint(out, 'bold', h)), ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((row) => visibleLength(row[i] ?? ''))))
  return all
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - visibleLength(cell)),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

/** `1.2s`, `340ms`, `2m05s`, `1h02m`; `-` when unknown. */
export function duration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return '-'
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 3_600_000)
    return `${Math.floor(ms / 60_000)}m${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`
  return `${Math.floor(ms / 3_600_000)}h${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')}m`
}

/** A local time without the time-zone noise: `2026-11-26 21:40:01`. */
export function time(ms: number | undefined): string {
  if (ms === undefined) return '-'
  const d = new Date(ms)
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
}

/** A value for a human: indented JSON when it is JSON, else util.inspect. */
export function formatValue(value: unknown, out: Pick<Out, 'color'>): string {
  return isJsonable(value)
    ? JSON.stringify(value, null, 2)
    : inspect(value, { depth: null, colors: out.color })
}

/** A value inside `--json` output: itself when it is JSON, else its util.inspect text, flagged. */
export function jsonValue(value: unknown): { output: unknown; jsonable: boolean } {
  return isJsonable(value)
    ? { output: value, jsonable: true }
    : { output: inspect(value, { depth: null }), jsonable: false }
}

/** Longest id or key a message quotes whole; longer ones keep their start and end around `…`. */
export const READABLE_LENGTH = 80

/** `text` cut to `max` characters with `…` in the middle (ids differ at both ends: a prefix and a counter). */
export function shorten(text: string, max = READABLE_LENGTH): string {
  if (text.length <= max) return text
  if (max <= 1) return '…'.slice(0, max)
  const head = Math.ceil((max - 1) / 2)
  const tail = max - 1 - head
  return `${text.slice(0, head)}…${tail > 0 ? text.slice(-tail) : ''}`
}

/** A message with every quoted id or key longer than `max` shortened (`shorten`), for people; scripts get `--json`. */
export function shortenQuoted(message: string, max = READABLE_LENGTH): string {
  return message.replace(/"([^"\n]{2,})"/g, (whole, inner: string) =>
    inner.length > max ? `"${shorten(inner, max)}"` : whole,
  )
}

/** `text` cut to `width` (`shorten`), or whole when there is no width to fit. */
export function fitWidth(text: string, width: number | undefined): string {
  return width === undefined ? text : shorten(text, width)
}

/**
 * The width the first column of a table may take so that rows fit `columns` (the terminal's
 * width), given the width the other columns need; `undefined` when there is no terminal to fit.
 */
export function firstColumnWidth(columns: number | undefined, rest: number): number | undefined {
  if (columns === undefined || !Number.isFinite(columns) || columns <= 0) return undefined
  return Math.max(12, columns - rest - 2)
}
