/**
 * The results: each Tandem figure beside the baselines measured in the same run, as a text table
 * for the terminal, a markdown table for the README, and JSON.
 */
import { pairedRatios, spread, type Spread } from './stats.ts'

export type Unit = 'tx/s' | 'req/s' | 'reads/s' | 'rows/s' | 'tasks/s' | 'ms' | 'µs' | 's' | 'MB' | 'MB/s'

export interface Comparison {
  label: string
  unit: Unit
  value: Spread
  /** Tandem ÷ baseline, per repetition (both measured in that repetition). */
  ratio: Spread
}

export interface Figure {
  id: string
  label: string
  unit: Unit
  /** null when the figure could not be measured in this build; `unavailable` says why. */
  value: Spread | null
  baselines: Comparison[]
  unavailable?: string
}

export function figure(id: string, label: string, unit: Unit, samples: number[], baselines: { label: string; unit: Unit; samples: number[] }[]): Figure {
  return {
    id,
    label,
    unit,
    value: spread(samples),
    baselines: baselines.map((b) => ({ label: b.label, unit: b.unit, value: spread(b.samples), ratio: pairedRatios(samples, b.samples) })),
  }
}

/** A row that says a figure is missing and why, in place of its numbers. */
export function unavailableFigure(id: string, label: string, unit: Unit, reason: string): Figure {
  return { id, label, unit, value: null, baselines: [], unavailable: reason }
}

function number(value: number, unit: Unit): string {
  if (unit === 'ms' || unit === 's') return value < 10 ? value.toFixed(2) : value.toFixed(1)
  if (unit === 'MB/s') return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')
  // Below 1 µs (a call awaited in-process): two significant digits, not a rounded 0.0.
  if (unit === 'µs') return value < 1 ? value.toPrecision(2) : value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')
  return Math.round(value).toLocaleString('en-US')
}

function ratio(value: number): string {
  return value >= 10 ? `${value.toFixed(0)}×` : value >= 1 ? `${value.toFixed(1)}×` : `${value.toFixed(2)}×`
}

function withSpread(s: Spread, format: (value: number) => string): string {
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`
}

const header = ['Measure', 'Tandem', 'Baseline (same run)', 'Baseline value', 'Tandem ÷ baseline']

function rows(figures: readonly Figure[]): string[][] {
  const out: string[][] = []
  for (const f of figures) {
    const value = f.value
    if (value === null) {
      out.push([`${f.label} (${f.unit})`, 'not available', f.unavailable ?? '', '—', '—'])
      continue
    }
    f.baselines.forEach((b, i) => {
      out.push([
        i === 0 ? `${f.label} (${f.unit})` : '',
        i === 0 ? withSpread(value, (v) => number(v, f.unit)) : '',
        `${b.label} (${b.unit})`,
        withSpread(b.value, (v) => number(v, b.unit)),
        withSpread(b.ratio, ratio),
      ])
    })
  }
  return out
}

export function textTable(figures: readonly Figure[]): string {
  return renderText(header, rows(figures))
}

export function markdownTable(figures: readonly Figure[]): string {
  return renderMarkdown(header, rows(figures))
}

/** Any table of cells, padded for a terminal. */
export function renderText(head: readonly string[], body: readonly (readonly string[])[]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)))
  const line = (cells: readonly string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function renderMarkdown(head: readonly string[], body: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`
  return [line(head), line(head.map(() => '---')), ...body.map(line)].join('\n')
}

/** `median (min–max)` of a spread, formatted in `unit`. */
export function spreadText(s: Spread, unit: Unit): string {
  return withSpread(s, (v) => number(v, unit))
}

/** `median (min–max)` of a spread of ratios. */
export function ratioText(s: Spread): string {
  return withSpread(s, ratio)
}
