/**
 * Tandem's own SQLite (native/tandem-sqlite.c, built into build/tandem-sqlite.node), which
 * captures tables without a PRIMARY KEY by rowid, measured two ways:
 *
 * 1. Engine A/B: the same cluster (a master and 2 replicas, synchronous=full) on Tandem's build
 *    beside one started with TANDEM_SQLITE=binding (the published @photostructure/sqlite), back
 *    to back in each repetition: 64-connection HTTP writes on the master and point reads on a
 *    replica (paired-clusters.ts).
 * 2. What capturing a table without a PRIMARY KEY costs: on the Tandem-engine cluster's master,
 *    one-row INSERTs into `bench_loose (payload TEXT NOT NULL)` beside the same INSERTs into the
 *    keyed `bench` table, back to back in each repetition, alternating first, at 64 connections
 *    (CPU-bound) and 1 (latency-bound). The replicas must then hold as many bench_loose rows as
 *    the master, or the run fails.
 *
 * Estimate before measuring: a rowid table's session change record carries the rowid as one
 * extra 8-byte key column (the session's preupdate hook reads it for free; the changeset grows by
 * ~9 bytes per row against ~50 for the keyed row), and the replica applies it by rowid as it
 * applies the keyed table by its INTEGER PRIMARY KEY, which is the rowid too: ~0.95–1.05×, within
 * the noise. Our build of SQLite 3.53 at -O2 with the same compile options as the published
 * binding runs the same statements through the same code; the binding layers differ by a few
 * hundred ns per statement against ~20–40 µs of CPU per request: ~0.95–1.05×, within the noise.
 */
import { closedLoop } from './http-load.ts'
import { call, measurePair, pointReadIds, startPairedCluster, type PairedCluster, type PairResult, type PairSettings } from './paired-clusters.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { insertOneBody, payload } from './workload.ts'

export type RowidTablesSettings = PairSettings

type Engine = 'tandem' | 'binding'
type Table = 'loose' | 'keyed'

export interface RowidTablesResult extends PairResult<Engine> {
  /** What GET /status said of each cluster's master. */
  sqlite: Record<Engine, { engine: string; version: string; rowid_tables: boolean }>
  /** Writes per second into each table on the 'tandem' cluster, one sample per repetition. */
  writesMany: Record<Table, number[]>
  writesOne: Record<Table, number[]>
  /** count(*) of bench_loose on the master and on each replica, after the last write. */
  looseRows: { master: number; replicas: number[]; acknowledged: number }
}

const createLooseSql = 'CREATE TABLE IF NOT EXISTS bench_loose (payload TEXT NOT NULL)'
const insertLooseSql = 'INSERT INTO bench_loose(payload) VALUES (?)'
const insertLooseBody = JSON.stringify([[insertLooseSql, payload]])
const bodies: Record<Table, string> = { loose: insertLooseBody, keyed: insertOneBody }

interface StatusBody {
  sqlite?: { engine: string; version: string; rowid_tables: boolean }
}

/** GET /status on `url`: which SQLite the node runs. */
async function sqliteOf(url: string, cluster: PairedCluster): Promise<{ engine: string; version: string; rowid_tables: boolean }> {
  const answer = await call(`${url}/status`, cluster)
  if (answer.status !== 200) throw new Error(`GET ${url}/status: HTTP ${answer.status} ${answer.text}`)
  const sqlite = (JSON.parse(answer.text) as StatusBody).sqlite
  if (sqlite === undefined) throw new Error(`GET ${url}/status says nothing of its SQLite engine: ${answer.text}`)
  return sqlite
}

/** One write through /db/execute that must succeed, statement and all: its LSN. */
async function executeOrThrow(cluster: PairedCluster, body: string, what: string): Promise<number> {
  const answer = await call(`${cluster.master.url}/db/execute`, cluster, body)
  const parsed = JSON.parse(answer.text) as { lsn?: number; results?: { error?: string }[] }
  const failed = parsed.results?.find((r) => r.error !== undefined)
  if (answer.status !== 200 || failed !== undefined || typeof parsed.lsn !== 'number') throw new Error(`${what} failed: HTTP ${answer.status} ${answer.text}`)
  return parsed.lsn
}

/** count(*) of bench_loose on the node at `url` once it has applied `lsn`. */
async function looseCount(url: string, cluster: PairedCluster, lsn: number): Promise<number> {
  const q = encodeURIComponent('SELECT count(*) FROM bench_loose')
  const answer = await call(`${url}/db/query?level=none&min_lsn=${lsn}&min_lsn_timeout=30s&q=${q}`, cluster)
  const parsed = JSON.parse(answer.text) as { results?: { values?: unknown[][]; error?: string }[] }
  const count = parsed.results?.[0]?.values?.[0]?.[0]
  if (answer.status !== 200 || typeof count !== 'number') throw new Error(`counting bench_loose on ${url} at LSN ${lsn} failed: HTTP ${answer.status} ${answer.text}`)
  return count
}

export async function measureRowidTables(resources: Resources, s: RowidTablesSettings, log: (line: string) => void): Promise<RowidTablesResult> {
  const binding = await startPairedCluster(resources, { name: 'engine-binding', args: [], env: { TANDEM_SQLITE: 'binding' }, headers: {}, dispatcher: undefined })
  const tandem = await startPairedCluster(resources, { name: 'engine-tandem', args: [], headers: {}, dispatcher: undefined })
  const clusters: Record<Engine, PairedCluster> = { tandem, binding }
  const sqlite = {} as RowidTablesResult['sqlite']
  for (const name of ['tandem', 'binding'] as const) {
    const cluster = clusters[name]
    sqlite[name] = await sqliteOf(cluster.master.url, cluster)
    if (sqlite[name].engine !== name) throw new Error(`the '${name}' cluster's master runs SQLite engine '${sqlite[name].engine}', not '${name}' (is TANDEM_SQLITE set in this shell, or build/tandem-sqlite.node missing?)`)
    for (const replica of cluster.replicas) {
      const there = await sqliteOf(replica.url, cluster)
      if (there.engine !== name) throw new Error(`the '${name}' cluster's replica ${replica.url} runs SQLite engine '${there.engine}', not '${name}'`)
    }
  }
  log(`rowid tables: engines tandem ${sqlite.tandem.version} (rowid tables ${sqlite.tandem.rowid_tables}), binding ${sqlite.binding.version} (rowid tables ${sqlite.binding.rowid_tables})`)

  const pair = await measurePair(s, { tandem, binding }, (rep, r) =>
    log(`engine ${rep + 1}/${s.reps}: writes ${Math.round(r.writes.tandem.at(-1)!)} vs ${Math.round(r.writes.binding.at(-1)!)}/s, reads ${Math.round(r.reads.tandem.at(-1)!)} vs ${Math.round(r.reads.binding.at(-1)!)}/s`),
  )
  // The rest runs on the 'tandem' cluster alone.
  await Promise.all([binding.master, ...binding.replicas].map((node) => node.kill('SIGKILL')))

  await executeOrThrow(tandem, JSON.stringify([createLooseSql]), 'creating bench_loose')
  await executeOrThrow(tandem, insertLooseBody, 'the first write into bench_loose')
  let acknowledged = 1
  const url = `${tandem.master.url}/db/execute`
  const writes = async (table: Table, connections: number, durationSec: number) => {
    const run = await closedLoop(url, { connections, durationSec, headers: tandem.headers, body: bodies[table] })
    if (table === 'loose') acknowledged += run.ok
    return run.perSec
  }
  // Warm both statements and both tables' pages at each concurrency before timing.
  for (const table of ['loose', 'keyed'] as const) {
    await writes(table, s.connections, 1)
    await writes(table, 1, 1)
  }
  const writesMany: Record<Table, number[]> = { loose: [], keyed: [] }
  const writesOne: Record<Table, number[]> = { loose: [], keyed: [] }
  for (let rep = 0; rep < s.reps; rep++) {
    const order: Table[] = rep % 2 === 0 ? ['loose', 'keyed'] : ['keyed', 'loose']
    for (const table of order) writesMany[table].push(await writes(table, s.connections, s.seconds))
    for (const table of order) writesOne[table].push(await writes(table, 1, s.seconds))
    log(
      `rowid tables ${rep + 1}/${s.reps}: ${s.connections} clients ${Math.round(writesMany.loose.at(-1)!)} vs ${Math.round(writesMany.keyed.at(-1)!)} tx/s (no PK vs keyed), ` +
        `1 client ${Math.round(writesOne.loose.at(-1)!)} vs ${Math.round(writesOne.keyed.at(-1)!)} tx/s`,
    )
  }

  // A last write into bench_loose: its LSN is past every write the load committed, answered or not.
  const lastLsn = await executeOrThrow(tandem, insertLooseBody, 'the last write into bench_loose')
  acknowledged += 1
  const master = await looseCount(tandem.master.url, tandem, lastLsn)
  const replicas: number[] = []
  for (const replica of tandem.replicas) replicas.push(await looseCount(replica.url, tandem, lastLsn))
  // autocannon drops the answers still in flight when a run ends, so the master may hold a few more.
  if (master < acknowledged) throw new Error(`bench_loose holds ${master} rows on the master, fewer than the ${acknowledged} writes acknowledged`)
  if (replicas.some((count) => count !== master)) throw new Error(`bench_loose holds ${master} rows on the master but ${replicas.join(' and ')} on its replicas at LSN ${lastLsn}`)
  log(`rowid tables: bench_loose holds ${master} rows on the master and on both replicas (${acknowledged} writes acknowledged)`)
  return { ...pair, sqlite, writesMany, writesOne, looseRows: { master, replicas, acknowledged } }
}

export function rowidTablesFigures(r: RowidTablesResult, s: RowidTablesSettings): Figure[] {
  return [
    figure('engine_writes', `HTTP writes on Tandem's own SQLite build (native/tandem-sqlite.c), ${s.connections} clients`, 'tx/s', r.writes.tandem, [
      { label: `the same cluster on the published binding (TANDEM_SQLITE=binding), ${s.connections} clients`, unit: 'tx/s', samples: r.writes.binding },
    ]),
    figure('engine_reads', `HTTP point reads on a replica on Tandem's own SQLite build, ${s.connections} connections`, 'reads/s', r.reads.tandem, [
      { label: `the same on the published binding, ${s.connections} connections`, unit: 'reads/s', samples: r.reads.binding },
    ]),
    figure('rowid_writes_64', `HTTP 1-row writes into a table without a PRIMARY KEY (captured by rowid), ${s.connections} clients`, 'tx/s', r.writesMany.loose, [
      { label: `the same writes into the keyed bench table, same cluster, ${s.connections} clients`, unit: 'tx/s', samples: r.writesMany.keyed },
    ]),
    figure('rowid_writes_1', 'HTTP 1-row writes into a table without a PRIMARY KEY, 1 client', 'tx/s', r.writesOne.loose, [
      { label: 'the same writes into the keyed bench table, same cluster, 1 client', unit: 'tx/s', samples: r.writesOne.keyed },
    ]),
  ]
}

export function rowidTablesNote(r: RowidTablesResult, s: RowidTablesSettings): string {
  return (
    `Rowid tables: two clusters of a master and 2 replicas (synchronous=full), one on Tandem's own SQLite ${r.sqlite.tandem.version} (native/tandem-sqlite.c, which captures tables without a PRIMARY KEY by rowid), the other started with TANDEM_SQLITE=binding (the published @photostructure/sqlite, SQLite ${r.sqlite.binding.version}), each engine checked on every node's GET /status; autocannon with ${s.connections} keep-alive connections, ${s.seconds} s per run, alternating first in each repetition: one-row INSERTs into the keyed bench table on the master, point reads by primary key over ${pointReadIds} ids on the first replica, level=none. ` +
    `Then, on the Tandem-engine cluster alone, one-row INSERTs into bench_loose (payload TEXT NOT NULL: the bench table without its INTEGER PRIMARY KEY) beside the same into bench, back to back, alternating first, with ${s.connections} connections and with 1; afterwards both replicas held as many bench_loose rows as the master (${r.looseRows.master.toLocaleString('en')}), read at the LSN of a last write. ` +
    'Estimate before measuring: the rowid is one extra 8-byte key column in each change record, and the replicas apply by rowid as they apply the keyed table by its INTEGER PRIMARY KEY, itself the rowid: ~0.95–1.05× the keyed writes; our build of SQLite 3.53 at -O2 with the published binding\'s compile options runs the same statements through the same code: ~0.95–1.05× the binding.'
  )
}
