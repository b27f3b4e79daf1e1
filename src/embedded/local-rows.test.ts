import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SqlError } from '../client/index.ts'
import { openWriter } from '../storage/index.ts'
import { LocalRows } from './local-rows.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-local-rows-'))
const writer = openWriter(join(dir, 'db'), 'off')
writer.connection.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'one')`)
const rows = new LocalRows(join(dir, 'db'), 'embedded://test')
after(() => {
  rows.close()
  writer.connection.close()
  rmSync(dir, { recursive: true, force: true })
})

test('an embedded read with a missing or extra parameter is an SqlError, as over HTTP, not a NULL bound', () => {
  assert.throws(() => rows.all('SELECT v FROM t WHERE id = ? OR v = ?', [1]), (e) => e instanceof SqlError && /takes 2 parameters but 1 was given/.test(e.message))
  assert.throws(() => rows.get('SELECT v FROM t WHERE id = :id AND v = :v', { id: 1 }), (e) => e instanceof SqlError && /named parameter :v/.test(e.message))
  assert.throws(() => rows.get('SELECT v FROM t WHERE id = ?', [1, 2]), (e) => e instanceof SqlError)
  assert.deepEqual({ ...rows.get<object>('SELECT v FROM t WHERE id = ?', [1]) }, { v: 'one' })
  assert.deepEqual(rows.all('SELECT v FROM t WHERE id = :id', { id: 1 }).map((row) => ({ ...row })), [{ v: 'one' }])
})
