/**
 * A database as a whole, in and out of a node: the SQL text of GET /db/backup?fmt=sql, and the
 * file a new master loads with --import (the same load as POST /db/load: master/database-load.ts).
 */
import { Readable } from 'node:stream'
import { TandemError } from '../shared/errors.ts'
import type { Logger } from '../shared/logger.ts'
import { loadSourceOf, type LoadSource } from '../master/database-load.ts'
import { dumpLines, openReader } from '../storage/index.ts'
import type { MasterRole } from './master-role.ts'

/** The dump of the database at `dbPath`, read in one read transaction on a connection of its own, closed at the end. */
export function dumpDatabase(dbPath: string): Readable {
  const reader = openReader(dbPath)
  // Tandem's own reads: past the SQL policy, and past --query-timeout and --max-result-bytes (a
  // dump is as large as the database; cut short, it would end mid-line behind a 200).
  const internally = <T>(fn: () => T) => (reader.watched === undefined ? reader.policy.internally(fn) : reader.watched.exempt(() => reader.policy.internally(fn)))
  internally(() => reader.connection.exec('BEGIN'))
  const lines = internally(() => dumpLines(reader.connection))
  return Readable.from(
    (function* () {
      try {
        for (;;) {
          const next = internally(() => lines.next())
          if (next.done === true) return
          yield next.value
        }
      } finally {
        if (reader.connection.isOpen) reader.connection.close()
      }
    })(),
  )
}

/**
 * --import: a new master loads `file`. A master that holds data already (a restart with the same
 * command line) leaves it as it is, and says so.
 */
export async function importDatabase(master: MasterRole, file: string, logger: Logger): Promise<void> {
  const lsn = master.pipeline.lastLsn
  if (lsn > 0) {
    logger.warn({ file, lsn }, '--import ignored: this master already holds a database (load a file into it with tandem load or POST /db/load)')
    return
  }
  let source: LoadSource
  try {
    source = loadSourceOf(file)
  } catch (error) {
    throw new TandemError('BAD_REQUEST', `--import ${file} cannot be read: ${(error as Error).message}`)
  }
  const started = Date.now()
  logger.info({ file }, 'importing')
  const outcome = await master.write({ load: source })
  logger.info({ file, lsn: outcome.lsn, ...outcome.load, ms: Date.now() - started }, 'imported: every replica copies it')
}
