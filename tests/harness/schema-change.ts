import assert from 'node:assert/strict'
import type { Cluster } from './cluster.ts'
import { execute, query } from './http.ts'

/**
 * A statement cached by a read connection, run again after another connection changed the
 * schema: SQLite re-prepares it as it runs, and the columns must be those of the new rows.
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
  await ok(['DROP TABLE widened'])
}
