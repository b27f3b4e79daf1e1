import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
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

/** Whether a page can be written and synced in `dir` (a full disk cannot). */
export function diskTakesWrites(dir: string): boolean {
  const probe = join(dir, '.write-probe')
  try {
    const fd = openSync(probe, 'w')
    try {
      writeSync(fd, Buffer.alloc(4096))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    return true
  } catch {
    return false
  } finally {
    rmSync(probe, { force: true })
  }
}
