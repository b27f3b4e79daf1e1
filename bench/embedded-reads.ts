/**
 * Point reads by primary key from an embedded replica, beside raw SQLite reading the same file.
 *
 * Back-of-envelope estimate, written before measuring: a prepared `SELECT … WHERE id = ?` on a
 * warm page cache costs a B-tree descent of 2–3 cached pages, one row object and the call into
 * the binding: ~1.5–3 µs, so raw SQLite answers 300–600k reads/s on one core. The embedded
 * replica adds a Map lookup by SQL text (statements are prepared once, under the SQL policy,
 * which costs nothing per step) and a spread of the parameter array: tens of nanoseconds, so
 * ~0.85–0.95× raw. Its apply connection, idle here, shares the file.
 *
 * Method: the master (a real process) holds `rows` rows in the bench table; an embedded replica
 * in this process copies them and syncs; raw SQLite opens the replica's own file read-only
 * (`readOnly: true`, the binding's defaults otherwise). Each repetition reads the same
 * pseudo-random ids for `seconds` with each reader, back to back, alternating which goes first;
 * the ratio is per repetition. Reads run in blocks of 1,000 between clock checks, and each
 * reader sums the payload lengths it read, checked equal per id, so no read is optimized away
 * and both read the same rows.
 *
 * Standalone (prints JSON):
 *   node --import tsx -e "import('./bench/embedded-reads.ts').then(async (m) => { const r = new (await import('./bench/resources.ts')).Resources(); try { console.log(JSON.stringify(await m.measureEmbeddedReads(r), null, 2)) } finally { await r.close() } })"
 */
import { DatabaseSync } from '@photostructure/sqlite'
import { openReplica } from '../src/index.ts'
import { silentLogger } from '../src/shared/logger.ts'
import { databasePath } from '../src/storage/index.ts'
import { execute } from '../tests/harness/http.ts'
import { startProcessCluster } from './bench-cluster.ts'
import type { Resources } from './resources.ts'
import { pairedRatios, spread, type Spread } from './stats.ts'
import { insertManySql, payload } from './workload.ts'

export interface EmbeddedReadsSettings {
  /** Repetitions; the report shows their median. Default 3. */
  reps: number
  /** Each reader's timed run per repetition. Default 2. */
  seconds: number
  /** Rows in the bench table. Default 100,000. */
  rows: number
}

export interface EmbeddedReadsResult {
  /** Point reads per second through `db.get(sql, [id])`. */
  embedded: Spread
  /** Point reads per second through raw `statement.get(id)` on the same file. */
  raw: Spread
  /** embedded ÷ raw, per repetition. */
  ratio: Spread
  rows: number
}

const readSql = 'SELECT id, payload FROM bench WHERE id = ?'
const blockReads = 1000

export async function measureEmbeddedReads(resources: Resources, settings: Partial<EmbeddedReadsSettings> = {}): Promise<EmbeddedReadsResult> {
  const { reps = 3, seconds = 2, rows = 100_000 } = settings
  const cluster = await startProcessCluster(resources, 'embedded-reads', 0)
  const perStatement = 1000
  for (let written = 0; written < rows; written += perStatement) {
    const count = Math.min(perStatement, rows - written)
    const result = await execute(cluster.master.url, [[insertManySql(count), ...Array.from({ length: count }, () => payload)]])
    if (result.status !== 200 || result.body.results[0]?.error !== undefined) throw new Error(`filling the bench table failed: ${JSON.stringify(result.body)}`)
  }

  const path = resources.path('embedded-reads', 'embedded')
  const db = await openReplica({ master: cluster.master.url, path, logger: silentLogger, openTimeoutMs: 120_000 })
  resources.onClose(() => db.close())
  await db.sync({ timeoutMs: 60_000 })
  const raw = new DatabaseSync(databasePath(path), { readOnly: true })
  const rawRead = raw.prepare(readSql)

  // The same ids for both readers: a fixed-seed LCG over 1..rows.
  const ids = new Int32Array(1 << 16)
  let seed = 12345
  for (let i = 0; i < ids.length; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    ids[i] = 1 + (seed % rows)
  }
  const readers = {
    embedded: (id: number) => db.get<{ id: number; payload: string }>(readSql, [id]),
    raw: (id: number) => rawRead.get(id) as { id: number; payload: string } | undefined,
  }
  // Both readers must return the same row for an id, and every id must exist.
  for (const id of ids.subarray(0, 100)) {
    const a = readers.embedded(id)
    const b = readers.raw(id)
    if (a === undefined || b === undefined || a.payload !== b.payload || a.id !== id || b.id !== id) throw new Error(`the readers disagree on row ${id}`)
  }

  const timed = (read: (id: number) => { payload: string } | undefined, durationMs: number): number => {
    let reads = 0
    let bytes = 0
    const started = performance.now()
    let elapsed = 0
    while (elapsed < durationMs) {
      for (let i = 0; i < blockReads; i++) bytes += read(ids[(reads + i) & (ids.length - 1)]!)!.payload.length
      reads += blockReads
      elapsed = performance.now() - started
    }
    if (bytes !== reads * payload.length) throw new Error(`read ${bytes} payload bytes in ${reads} reads`)
    return reads / (elapsed / 1000)
  }

  try {
    // Warm-up: JIT both paths and the page cache.
    timed(readers.embedded, 300)
    timed(readers.raw, 300)
    const embedded: number[] = []
    const baseline: number[] = []
    for (let rep = 0; rep < reps; rep++) {
      if (rep % 2 === 0) {
        embedded.push(timed(readers.embedded, seconds * 1000))
        baseline.push(timed(readers.raw, seconds * 1000))
      } else {
        baseline.push(timed(readers.raw, seconds * 1000))
        embedded.push(timed(readers.embedded, seconds * 1000))
      }
    }
    return { embedded: spread(embedded), raw: spread(baseline), ratio: pairedRatios(embedded, baseline), rows }
  } finally {
    raw.close()
    await db.close()
  }
}
