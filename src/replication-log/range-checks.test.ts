import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openConnection } from '../storage/index.ts'
import { RangeChecks, ensureChecksSchema, verifyNewestCheck } from './range-checks.ts'

test('range checks walk every table a range at a time, composite, text and BLOB keys included, and a changed row is found', () => {
  const db = openConnection(':memory:')
  ensureChecksSchema(db)
  db.exec(`
    CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
    CREATE TABLE b (k TEXT, n BLOB, v REAL, PRIMARY KEY (k, n)) WITHOUT ROWID;
  `)
  for (let i = 0; i < 25; i++) {
    db.prepare('INSERT INTO a(v) VALUES (?)').run(`a${i}`)
    db.prepare('INSERT INTO b(k, n, v) VALUES (?, ?, ?)').run(`k${i % 3}`, new Uint8Array([i, 255 - i]), i / 3)
  }
  const checks = new RangeChecks(10)
  const seen: { table_name: string; rows: number; last_key: string | null }[] = []
  // a: 10, 10, 5 rows (the end); b: the same; then a again.
  for (let i = 0; i < 7; i++) {
    checks.record(db)
    assert.equal(verifyNewestCheck(db), undefined, `check ${i} agrees with the rows it was made from`)
    seen.push(db.prepare('SELECT table_name, rows, last_key FROM _tandem_checks ORDER BY id DESC LIMIT 1').get() as (typeof seen)[0])
  }
  assert.deepEqual(seen.map((c) => [c.table_name, c.rows, c.last_key === null]), [
    ['a', 10, false], ['a', 10, false], ['a', 5, true], ['b', 10, false], ['b', 10, false], ['b', 5, true], ['a', 10, false],
  ])
  // A row inside the newest check's range changes after it was made: the check no longer agrees.
  db.exec(`UPDATE a SET v = 'changed' WHERE id = 3`)
  assert.match(verifyNewestCheck(db) ?? '', /table "a".*with different checksums/)
  // A row missing is found too.
  db.exec(`UPDATE a SET v = 'a2' WHERE id = 3; DELETE FROM a WHERE id = 4`)
  assert.match(verifyNewestCheck(db) ?? '', /9 rows here and 10 on the master/)
  // Only the newest checks are kept.
  for (let i = 0; i < 20; i++) checks.record(db)
  assert.equal((db.prepare('SELECT count(*) AS n FROM _tandem_checks').get() as { n: number }).n, 16)
})
