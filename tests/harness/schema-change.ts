import assert from 'node:assert/strict'
import type { Cluster } from './cluster.ts'
import { execute, query } from './http.ts'

/**
 * A statement cached by a read connection, run again after another connection changed the
 * schema: SQLite re-prepares it as it runs, and the columns must be those of the new rows. Reads
 * keep a statement's columns while the node's schema generation stands still (SchemaGeneration):
 * a rename keeps the number of columns and a table made anew keeps the names, so only a
 * generation moved by the master's pipeline and by the replica's applier tells them apart.
 */
export async function schemaChangeBetweenReads(cluster: Cluster): Promise<void> {
  const ok = async (statements: unknown[]) => assert.equal((await execute(cluster.master.url, statements)).status, 200)
  await ok(['CREATE TABLE widened (id INTEGER PRIMARY KEY, a TEXT)', "INSERT INTO widened VALUES (1, 'x')"])
  await cluster.converged()
  for (const url of [cluster.master.url, cluster.replicas[0]!.url]) {
    for (let i = 0; i < 3; i++) assert.deepEqual((await query(url, 'SELECT * FROM widened', 'level=none')).body.results[0]?.columns, ['id', 'a'])
  }
  await ok(['ALTER TABLE widened ADD COLUMN b INTEGER DEFAULT 7'])
  await cluster.converged()
  for (const url of [cluster.master.url, cluster.replicas[0]!.url]) {
    const result = (await query(url, 'SELECT * FROM widened', 'level=none')).body.results[0]
    assert.deepEqual([result?.columns, result?.values], [['id', 'a', 'b'], [[1, 'x', 7]]], url)
  }
  await ok(['ALTER TABLE widened RENAME COLUMN a TO label'])
  await cluster.converged()
  for (const url of [cluster.master.url, cluster.replicas[0]!.url]) {
    assert.deepEqual((await query(url, 'SELECT * FROM widened', 'level=none')).body.results[0]?.columns, ['id', 'label', 'b'], url)
  }
  await ok(['DROP TABLE widened', 'CREATE TABLE widened (id INTEGER PRIMARY KEY, label BLOB, b TEXT)', "INSERT INTO widened VALUES (2, x'00', 'y')"])
  await cluster.converged()
  for (const url of [cluster.master.url, cluster.replicas[0]!.url]) {
    const result = (await query(url, 'SELECT * FROM widened', 'level=none')).body.results[0]
    assert.deepEqual([result?.columns, result?.types], [['id', 'label', 'b'], ['integer', 'blob', 'text']], url)
  }
  await ok(['DROP TABLE widened'])
}
