/** Damage done to a stopped node's files, as a bad sector or a stray write would. */
import { closeSync, openSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'

/** Overwrites the b-tree header of `table`'s root page in the node's database file. */
export function damageRootPage(dataDir: string, table: string): void {
  const path = join(dataDir, 'tandem.db')
  const db = new DatabaseSync(path)
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
  const { rootpage } = db.prepare('SELECT rootpage FROM sqlite_schema WHERE name = ?').get(table) as { rootpage: number }
  const { page_size: pageSize } = db.prepare('PRAGMA page_size').get() as { page_size: number }
  db.close()
  const fd = openSync(path, 'r+')
  writeSync(fd, Buffer.alloc(16, 0xff), 0, 16, (rootpage - 1) * pageSize)
  closeSync(fd)
}
