/**
 * What a long write costs the rest of the master, with the write budget (long writes on their own
 * thread, the default) and without it (--write-budget 0: every write on the event loop): a client
 * sends bulk INSERTs of 100,000 rows back to back, alone, then while another asks GET /readyz,
 * one at a time, on the same master (a master and 1 replica, synchronous=full, both variants running, measured
 * in turn, alternating first).
 *
 * Estimate before measuring: a bulk INSERT of 100,000 rows takes ~150 ms of SQLite here. On the
 * event loop, /readyz waits for the statement under way: ~75 ms on average, ~150 ms at worst.
 * With the budget it waits at most ~20 ms (the budget, spent once before the request moves).
 * The bulk writes pay that 20 ms once each, plus the thread's message hop: ~0.9× the rows/s.
 */
import { waitFor } from '../tests/harness/cluster.ts'
import { call } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { percentile } from './stats.ts'

export interface LongWriteSettings {
  reps: number
  seconds: number
}

export interface LongWriteResult {
  /** Per variant, one sample per repetition. */
  readyzP99Ms: { budget: number[]; loop: number[] }
  bulkRowsPerSec: { budget: number[]; loop: number[] }
}

const rowsPerWrite = 100_000
const bulkSql = `INSERT INTO bulk(v) SELECT 'row ' || x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ${rowsPerWrite}) SELECT x FROM c)`

async function startVariant(resources: Resources, name: string, args: string[]): Promise<NodeProcess> {
  const master = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path(name, 'master'), args: ['--synchronous', 'full', ...args] }))
  const replica = resources.node(
    await NodeProcess.start({ role: 'replica', dataDir: resources.path(name, 'replica1'), masterUrl: master.url, args: ['--synchronous', 'full'] }),
  )
  await waitFor(async () => ((await call('GET', `${replica.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => `replica ${replica.url} streaming`)
  const created = await call('POST', `${master.url}/db/execute`, ['CREATE TABLE bulk (id INTEGER PRIMARY KEY, v TEXT)'])
  if (created.status !== 200) throw new Error(`creating the bulk table failed: ${created.text}`)
  return master
}

/** Bulk writes back to back for `seconds`, while `during` runs; rows per second of the writer's time. */
async function bulkWrites(master: NodeProcess, seconds: number): Promise<number> {
  const until = performance.now() + seconds * 1000
  const started = performance.now()
  let rows = 0
  while (performance.now() < until) {
    const answer = await call('POST', `${master.url}/db/execute`, [bulkSql])
    if (answer.json?.results?.[0]?.rows_affected !== rowsPerWrite) throw new Error(`a bulk write failed: ${answer.text.slice(0, 300)}`)
    rows += rowsPerWrite
  }
  return rows / ((performance.now() - started) / 1000)
}

/**
 * One run: the bulk writes alone (their rows/s: nothing else competes for the cores), then again
 * with /readyz probes one at a time beside them (their p99).
 */
async function run(master: NodeProcess, seconds: number): Promise<{ readyzP99Ms: number; bulkRowsPerSec: number }> {
  const bulkRowsPerSec = await bulkWrites(master, seconds)
  const writing = bulkWrites(master, seconds)
  const until = performance.now() + seconds * 1000
  const latencies: number[] = []
  while (performance.now() < until) {
    const sent = performance.now()
    const ready = await call('GET', `${master.url}/readyz`)
    if (ready.status !== 200) throw new Error(`/readyz answered ${ready.status}: ${ready.text}`)
    latencies.push(performance.now() - sent)
  }
  await writing
  await call('POST', `${master.url}/db/execute`, ['DELETE FROM bulk'])
  return { readyzP99Ms: percentile(latencies.sort((a, b) => a - b), 99), bulkRowsPerSec }
}

export async function measureLongWrites(resources: Resources, s: LongWriteSettings, log: (line: string) => void): Promise<LongWriteResult> {
  const budget = await startVariant(resources, 'long-writes-budget', [])
  const loop = await startVariant(resources, 'long-writes-loop', ['--write-budget', '0'])
  const result: LongWriteResult = { readyzP99Ms: { budget: [], loop: [] }, bulkRowsPerSec: { budget: [], loop: [] } }
  for (let rep = 0; rep < s.reps; rep++) {
    for (const name of rep % 2 === 0 ? (['budget', 'loop'] as const) : (['loop', 'budget'] as const)) {
      const r = await run(name === 'budget' ? budget : loop, s.seconds)
      result.readyzP99Ms[name].push(r.readyzP99Ms)
      result.bulkRowsPerSec[name].push(r.bulkRowsPerSec)
    }
    log(
      `long writes ${rep + 1}/${s.reps}: /readyz p99 ${result.readyzP99Ms.budget.at(-1)!.toFixed(1)} vs ${result.readyzP99Ms.loop.at(-1)!.toFixed(1)} ms, ` +
        `bulk ${Math.round(result.bulkRowsPerSec.budget.at(-1)!)} vs ${Math.round(result.bulkRowsPerSec.loop.at(-1)!)} rows/s`,
    )
  }
  return result
}

export function longWriteFigures(r: LongWriteResult): Figure[] {
  return [
    figure('long_writes_readyz_p99', `GET /readyz p99 on a master taking bulk INSERTs of ${rowsPerWrite.toLocaleString('en')} rows back to back (long writes on their own thread)`, 'ms', r.readyzP99Ms.budget, [
      { label: 'the same with --write-budget 0 (every write on the event loop)', unit: 'ms', samples: r.readyzP99Ms.loop },
    ]),
    figure('long_writes_rows', `Those bulk INSERTs, one client, with the write budget`, 'rows/s', r.bulkRowsPerSec.budget, [
      { label: 'the same with --write-budget 0', unit: 'rows/s', samples: r.bulkRowsPerSec.loop },
    ]),
  ]
}

export function longWriteNote(s: LongWriteSettings): string {
  return `Long writes: two masters with 1 replica each (synchronous=full), one with the default --write-budget 20ms, one with --write-budget 0; in each run one client sends INSERT … SELECT of ${rowsPerWrite.toLocaleString('en')} rows back to back for ${s.seconds} s alone (rows/s: rows inserted ÷ the writer's time), then ${s.seconds} s more while another client sends GET /readyz one at a time (p99 over those probes); the two masters alternate first in each repetition.`
}
