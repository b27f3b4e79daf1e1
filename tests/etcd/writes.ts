/** What the failover tests write and check: a table of values, acknowledged one by one. */
import assert from 'node:assert/strict'
import { waitFor } from '../harness/cluster.ts'
import { call, checksum } from '../harness/http.ts'
import type { NodeProcess } from '../harness/node-process.ts'

/** Creates table t and writes `count` values with sync=1, each acknowledged; returns them in order. */
export async function writeAcknowledged(masterUrl: string, count: number): Promise<string[]> {
  assert.equal((await call('POST', `${masterUrl}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])).status, 200)
  const acknowledged: string[] = []
  for (let i = 0; i < count; i++) {
    const reply = await call('POST', `${masterUrl}/db/execute?sync=1`, [['INSERT INTO t(v) VALUES (?)', `before ${i}`]])
    assert.equal(reply.status, 200, reply.text)
    acknowledged.push(`before ${i}`)
  }
  return acknowledged
}

/** The values of t on `url`, in id order, read locally. */
export async function valuesOf(url: string): Promise<unknown[]> {
  const reply = await call('GET', `${url}/db/query?level=none&q=${encodeURIComponent('SELECT v FROM t ORDER BY id')}`)
  return reply.json.results[0].values.map((row: unknown[]) => row[0])
}

/** Waits until every node is at the same LSN with the same checksum. */
export async function oneHistory(nodes: NodeProcess[], describe: () => string): Promise<void> {
  await waitFor(async () => {
    const all = await Promise.all(nodes.map((n) => checksum(n.url).catch(() => undefined)))
    return all.every((s) => s !== undefined && s.lsn === all[0]!.lsn && s.checksum === all[0]!.checksum) ? true : undefined
  }, 30_000, describe)
}

