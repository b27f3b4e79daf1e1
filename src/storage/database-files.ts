import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'

export function databasePath(dataDir: string): string {
  return join(dataDir, 'tandem.db')
}

/**
 * Puts `replacement` (a complete database file, fsynced) in place of the database at `path`.
 * The caller has closed every connection after a TRUNCATE checkpoint, so the WAL holds nothing
 * the old file needs; the rename is atomic, so a crash leaves either the old database or the
 * new one, never a mix.
 */
export function replaceDatabase(path: string, replacement: string): void {
  rmSync(`${path}-wal`, { force: true })
  rmSync(`${path}-shm`, { force: true })
  renameSync(replacement, path)
  const dir = openSync(dirname(path), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
