/**
 * The fault suite's table: one row per scenario run. Each scenario prints its row as it
 * finishes; when TANDEM_FAULTS_REPORT names a file (run.ts sets it), the row is also appended
 * there as a JSON line, and run.ts prints the whole table at the end.
 */
import { appendFileSync } from 'node:fs'
import type { FaultReport } from './fault-checker.ts'
import type { HistoryData } from './history.ts'

export interface ScenarioRow {
  scenario: string
  seed: number
  operations: number
  acknowledged: number
  lost: number
  /** Distinct log entries that held the lost writes. */
  lostEntries: number
  /** How long before the fault the oldest lost write was acknowledged. */
  lossWindowMs: number
  splitBrainAcks: number
  divergence: number
  unhealed: number
  /** Longest time with no acknowledged write. */
  unavailabilityMs: number
  /** Counts of the other rules that were broken (read-your-writes, ...). */
  otherViolations: Record<string, number>
  durationMs: number
}

const columns: [string, (row: ScenarioRow) => string][] = [
  ['scenario', (r) => r.scenario],
  ['operations', (r) => String(r.operations)],
  ['acknowledged', (r) => String(r.acknowledged)],
  ['lost', (r) => (r.lost === 0 ? '0' : `${r.lost} (${r.lostEntries} entries, ${r.lossWindowMs} ms)`)],
  ['split-brain acks', (r) => String(r.splitBrainAcks)],
  ['divergence after heal', (r) => String(r.divergence + r.unhealed)],
  ['unavailability ms', (r) => String(r.unavailabilityMs)],
  ['other violations', (r) => Object.entries(r.otherViolations).map(([rule, n]) => `${rule} ${n}`).join(', ') || '-'],
  ['seed', (r) => String(r.seed)],
  ['s', (r) => (r.durationMs / 1000).toFixed(1)],
]

export function renderTable(rows: readonly ScenarioRow[]): string {
  const cells = [columns.map(([name]) => name), ...rows.map((row) => columns.map(([, cell]) => cell(row)))]
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)))
  const line = (values: string[]) => `| ${values.map((v, i) => v.padEnd(widths[i]!)).join(' | ')} |`
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n')
}

export function printRow(row: ScenarioRow): void {
  process.stdout.write(`${renderTable([row])}\n`)
}

export function saveRow(row: ScenarioRow): void {
  const file = process.env['TANDEM_FAULTS_REPORT']
  if (file !== undefined && file !== '') appendFileSync(file, `${JSON.stringify(row)}\n`)
}

/** The faults and promotions of a run, in ms from the workload's start, and the longest gap. */
export function timeline(history: HistoryData, report: FaultReport): string {
  const at = (t: number) => `+${Math.round(t - history.startedAt)} ms`.padStart(10)
  const events = [
    ...history.faults.map((f) => ({ t: f.at, text: `${f.what} ${f.node}${f.detail === undefined ? '' : `: ${f.detail.slice(0, 200)}`}` })),
    ...history.promotions.map((p) => ({ t: p.completeAt, text: `promoted ${p.node} to epoch ${p.epoch} after LSN ${p.lsn} (took ${Math.round(p.completeAt - p.invokeAt)} ms)` })),
    { t: report.unavailableSince, text: `longest time without an acknowledged write begins (${report.unavailabilityMs} ms)` },
    { t: history.stoppedAt, text: 'workload stopped' },
  ].sort((a, b) => a.t - b.t)
  return [...events.map((e) => `${at(e.t)}  ${e.text}`), outcomes(history)].join('\n')
}

/** Writes by client kind and outcome, with the reasons of those not ok: what the clients saw. */
export function outcomes(history: HistoryData): string {
  const kinds = new Map<string, Map<string, number>>()
  for (const op of history.operations) {
    if (op.op !== 'write') continue
    const kind = op.process.replace(/\d+$/, '')
    const reason = op.outcome === 'ok' ? 'ok' : `${op.outcome} ${(op.error ?? '').replace(/^HTTP (\d+) ?/, '$1 ').trim()}`
    const counts = kinds.get(kind) ?? new Map<string, number>()
    counts.set(reason, (counts.get(reason) ?? 0) + 1)
    kinds.set(kind, counts)
  }
  const names: Record<string, string> = { h: 'raw clients', w: 'raw writers', p: 'pinned clients', t: 'tandem/client' }
  return [...kinds]
    .map(([kind, counts]) => `  writes of ${names[kind] ?? kind}: ${[...counts].sort((a, b) => b[1] - a[1]).map(([reason, n]) => `${reason} ${n}`).join(', ')}`)
    .join('\n')
}
