import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * A node's id lives in its data directory, outside the database: a snapshot copies the master's
 * database, and must not copy the master's identity with it.
 */
export function loadNodeId(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'node-id')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const id = randomUUID().slice(0, 8)
  writeFileSync(file, `${id}\n`)
  return id
}
