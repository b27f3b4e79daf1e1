/**
 * Runs in a worker thread: writes a consistent copy of the database to a new file with
 * VACUUM INTO, from a read transaction of its own. In WAL mode that neither blocks the master's
 * writer nor restarts when it commits (the backup API restarts on every write made through
 * another connection, so under steady writes it may never finish).
 */
import { parentPort, workerData } from 'node:worker_threads'
import { openConnection } from './sqlite.ts'

const { source, target } = workerData as { source: string; target: string }
const connection = openConnection(source, { readOnly: true })
try {
  connection.prepare('VACUUM INTO ?').run(target)
  parentPort?.postMessage({ ok: true })
} catch (error) {
  parentPort?.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) })
} finally {
  connection.close()
}
