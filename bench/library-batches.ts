/**
 * Library writes of many rows per transaction: 64 callers, each awaiting `node.write()` of one
 * 100-row transaction (100 one-row INSERTs, `transaction: true`) before the next, on an
 * in-process master with 2 replica processes — beside raw SQLite running the same 100 INSERTs per
 * transaction back to back (rawBatchedRowsPerSec), in rows per second.
 *
 * Back-of-envelope estimate, written before measuring: raw SQLite pays ~2–3 µs per row plus one
 * fsync per 100 rows: ~300–400k rows/s. Tandem runs the same INSERTs inside a savepoint per
 * request, captures them in a session changeset (~1 µs per row), appends the changeset to its log
 * and fsyncs once per group-committed batch of requests, while the two replicas decode and apply
 * every row on the same 2 cores (~2 µs per row each): ~120–200k rows/s, ~0.35–0.55× raw.
 *
 * Method: each repetition runs raw SQLite (`rawRows` rows), then Tandem for `seconds`, back to
 * back; the ratio is per repetition.
 */
import { startLibraryCluster } from './bench-cluster.ts'
import { libraryWritesPerSec } from './library-writes.ts'
import { rawBatchedRowsPerSec } from './raw-sqlite.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'

export interface LibraryBatchSettings {
  reps: number
  seconds: number
  callers: number
  rowsPerTransaction: number
  /** Rows raw SQLite writes per repetition (it is timed by count, not by the clock). */
  rawRows: number
}

export interface LibraryBatchSamples {
  /** Rows per second. */
  library: number[]
  raw: number[]
}

const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

export async function measureLibraryBatches(resources: Resources, s: LibraryBatchSettings, log: (line: string) => void): Promise<LibraryBatchSamples> {
  const library = await startLibraryCluster(resources, 'library-batches', 2)
  const rowsPerSec = async (durationMs: number) => s.rowsPerTransaction * (await libraryWritesPerSec(library.master, s.callers, durationMs, s.rowsPerTransaction))
  try {
    log('[library batches] warming up')
    await rowsPerSec(1000)
    rawBatchedRowsPerSec(resources.path('raw-batched-warmup'), 20_000, s.rowsPerTransaction)
    const out: LibraryBatchSamples = { library: [], raw: [] }
    for (let rep = 1; rep <= s.reps; rep++) {
      const tag = `[library batches ${rep}/${s.reps}]`
      out.raw.push(rawBatchedRowsPerSec(resources.path('raw-batched'), s.rawRows, s.rowsPerTransaction))
      log(`${tag} raw SQLite, ${s.rowsPerTransaction} rows per transaction: ${fmt(out.raw.at(-1)!)} rows/s`)
      out.library.push(await rowsPerSec(s.seconds * 1000))
      log(`${tag} Tandem library, ${s.callers} callers × ${s.rowsPerTransaction}-row transactions: ${fmt(out.library.at(-1)!)} rows/s`)
    }
    return out
  } finally {
    await library.stop()
  }
}

export function libraryBatchFigures(b: LibraryBatchSamples, s: LibraryBatchSettings): Figure[] {
  return [
    figure(`library_rows_${s.callers}x${s.rowsPerTransaction}`, `Library writes, ${s.callers} callers × ${s.rowsPerTransaction}-row transactions`, 'rows/s', b.library, [
      { label: `raw SQLite, ${s.rowsPerTransaction} rows per transaction`, unit: 'rows/s', samples: b.raw },
    ]),
  ]
}

export function libraryBatchNote(s: LibraryBatchSettings): string {
  return (
    `Library batches: ${s.callers} async callers of node.write() on an in-process master with 2 replica processes, each request ${s.rowsPerTransaction} one-row INSERTs with transaction: true, ${s.seconds} s per run; ` +
    `raw SQLite runs the same ${s.rowsPerTransaction} INSERTs per transaction (${fmt(s.rawRows)} rows per run) back to back with it.`
  )
}
