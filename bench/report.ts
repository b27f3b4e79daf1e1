/**
 * The results: each Tandem figure beside the baselines measured in the same run, as a text table
 * for the terminal, a markdown table for the README, and JSON.
 */
import { pairedRatios, spread, type Spread } from './stats.ts'

export type Unit = 'tx/s' | 'req/s' | 'reads/s' | 'rows/s' | 'tasks/s' | 'ms' | 'µs'

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
  value: Spread
  baselines: Comparison[]
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

function number(value: number, unit: Unit): string {
  if (unit === 'ms') return value < 10 ? value.toFixed(2) : value.toFixed(1)
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
    f.baselines.forEach((b, i) => {
      out.push([
        i === 0 ? `${f.label} (${f.unit})` : '',
        i === 0 ? withSpread(f.value, (v) => number(v, f.unit)) : '',
        `${b.label} (${b.unit})`,
        withSpread(b.value, (v) => number(v, b.unit)),
        withSpread(b.ratio, ratio),
      ])
    })
  }
  return out
}

export function textTable(figures: readonly Figure[]): string {
  const body = rows(figures)
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)))
  const line = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n')
}

export function markdownTable(figures: readonly Figure[]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows(figures).map(line)].join('\n')
}
