import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openApplier } from './database.ts'
import { WalFlusher } from './wal-flusher.ts'

test('a flush before anything was committed has nothing to sync', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-wal-'))
  const flusher = new WalFlusher(join(dir, 'none.db'))
  await flusher.flush()
  assert.equal(flusher.syncs, 0)
  flusher.close()
  rmSync(dir, { recursive: true, force: true })
})

test('flushes that arrive while one runs share the next one: many commits, few syncs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-wal-'))
  const path = join(dir, 'db')
  const connection = openApplier(path, 'normal')
  connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
  const flusher = new WalFlusher(path)
  const insert = connection.prepare('INSERT INTO t(v) VALUES (?)')
  const waits: Promise<void>[] = []
  for (let i = 0; i < 50; i++) {
    insert.run(`row ${i}`)
    waits.push(flusher.flush())
  }
  await Promise.all(waits)
  // The first call starts a sync; the 49 made while it runs all wait for one more.
  assert.equal(flusher.syncs, 2)
  await flusher.flush()
  assert.equal(flusher.syncs, 3)
  flusher.close()
  await assert.rejects(flusher.flush(), /closed/)
  connection.close()
  rmSync(dir, { recursive: true, force: true })
})
