/**
 * What an HTTP worker answers itself and what it leaves to the node's process (worker-reads.ts),
 * decided from the state the node publishes in shared memory (shared-node-state.ts): the two
 * ends here map the same file, as the two processes do.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogStore } from '../replication-log/log-store.ts'
import { SchemaGeneration, openWriter } from '../storage/index.ts'
import { parseQueryParams, type QueryParams } from '../http-api/query-params.ts'
import { SharedNodeState, type PublishedState } from './shared-node-state.ts'
import { WorkerReads, stateCurrentMs } from './worker-reads.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-worker-reads-'))
after(() => rmSync(dir, { recursive: true, force: true }))

const dbPath = join(dir, 'tandem.db')
const writer = openWriter(dbPath, 'off')
LogStore.ensureSchema(writer.connection, (fn) => writer.policy.internally(fn))
writer.policy.internally(() => writer.connection.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'one')"))

/** The node's writer commits entry `lsn` of `epoch` (its rows do not matter here: its position does). */
function commitEntry(lsn: number, epoch = 3): void {
  writer.policy.internally(() => writer.connection.exec(`INSERT INTO _tandem_log (lsn, epoch, time, crc, ops) VALUES (${lsn}, ${epoch}, 0, 0, x'')`))
}
commitEntry(10)

const schema = new SchemaGeneration()
const statePath = join(dir, 'http-workers.state')
const node = SharedNodeState.create(statePath, schema)
const reads = new WorkerReads(dbPath, SharedNodeState.open(statePath), { queryTimeoutMs: 30_000, inlineReadMaxUs: 50 })
after(() => reads.close())

const replica: PublishedState = { role: 'replica', epoch: 3, lsn: 10, readable: true, sinceContactMs: 0 }
const params = (query: Record<string, string>): QueryParams => parseQueryParams(query)
const pointRead = [{ sql: 'SELECT v FROM t WHERE id = 1' }]

describe('an HTTP worker', () => {
  test('answers a level=none read with the rows, and the position of the snapshot it read', () => {
    node.publish(replica)
    const answer = reads.answer(pointRead, params({ level: 'none' }))
    assert.ok(answer !== undefined)
    assert.equal(answer.headers['x-tandem-lsn'], '10')
    assert.equal(answer.epoch, 3)
    assert.deepEqual(JSON.parse(answer.body).results[0].values, [['one']])
  })

  test('answers a min_lsn only when both the published LSN and its snapshot reached it', () => {
    node.publish({ ...replica, lsn: 10 })
    assert.equal(reads.answer(pointRead, params({ min_lsn: '11' })), undefined, 'not published yet')
    // Published, not yet in the file: an LSN published ahead of its commit would not fool it.
    node.publish({ ...replica, lsn: 11 })
    assert.equal(reads.answer(pointRead, params({ min_lsn: '11' })), undefined, 'not committed yet')
    commitEntry(11)
    const answer = reads.answer(pointRead, params({ min_lsn: '11' }))
    assert.equal(answer?.headers['x-tandem-lsn'], '11')
  })

  test('reports the newer epoch of the data and of the node: a promotion seen in the file first counts', () => {
    commitEntry(12, 4)
    node.publish({ ...replica, lsn: 12, epoch: 3 })
    assert.equal(reads.answer(pointRead, params({ level: 'none' }))?.epoch, 4)
    node.publish({ ...replica, lsn: 12, epoch: 5 })
    assert.equal(reads.answer(pointRead, params({ level: 'none' }))?.epoch, 5)
  })

  test('answers a freshness only when the time since the master was heard, counted up to now, allows it', async () => {
    node.publish({ ...replica, sinceContactMs: 100 })
    assert.ok(reads.answer(pointRead, params({ freshness: '1s' })) !== undefined)
    assert.equal(reads.answer(pointRead, params({ freshness: '50ms' })), undefined)
    node.publish({ ...replica, sinceContactMs: 0 })
    await new Promise((resolve) => setTimeout(resolve, 120))
    // Published as 0 ms ago, but 120 ms have passed since: a read asking for 100 ms goes to the node.
    assert.equal(reads.answer(pointRead, params({ freshness: '100ms' })), undefined)
    node.publish({ ...replica, sinceContactMs: undefined })
    assert.equal(reads.answer(pointRead, params({ freshness: '1h' })), undefined, 'a master never heard')
    // freshness_strict needs the data's age, which only the node knows.
    node.publish(replica)
    assert.equal(reads.answer(pointRead, params({ freshness: '1h', freshness_strict: 'true' })), undefined)
  })

  test('takes level weak (the default) on a master only; strong and linearizable never', () => {
    node.publish(replica)
    assert.equal(reads.answer(pointRead, params({})), undefined, 'weak on a replica is the master\'s')
    node.publish({ ...replica, role: 'master' })
    assert.ok(reads.answer(pointRead, params({})) !== undefined)
    assert.equal(reads.answer(pointRead, params({ level: 'strong' })), undefined)
    assert.equal(reads.answer(pointRead, params({ level: 'linearizable' })), undefined)
    assert.ok(reads.answer(pointRead, params({ level: 'auto' })) !== undefined)
  })

  test('leaves everything to the node while it is not readable, or its file is being replaced', () => {
    node.publish({ ...replica, readable: false })
    assert.equal(reads.answer(pointRead, params({ level: 'none' })), undefined)
    node.publish(replica)
    node.closeFile()
    assert.equal(reads.answer(pointRead, params({ level: 'none' })), undefined)
    node.openFile()
    assert.ok(reads.answer(pointRead, params({ level: 'none' })) !== undefined, 'the new file is opened')
  })

  test('answers nothing for a node that stopped publishing (paused or stuck): not even level=none', async () => {
    node.publish(replica)
    assert.ok(reads.answer(pointRead, params({ level: 'none' })) !== undefined)
    await new Promise((resolve) => setTimeout(resolve, stateCurrentMs + 100))
    assert.equal(reads.answer(pointRead, params({ level: 'none' })), undefined)
    node.publish(replica)
    assert.ok(reads.answer(pointRead, params({ level: 'none' })) !== undefined)
  })

  test('leaves pretty, db_timeout and refused SQL to the node, which answers them with its errors', () => {
    node.publish(replica)
    assert.equal(reads.answer(pointRead, params({ level: 'none', pretty: 'true' })), undefined)
    assert.equal(reads.answer(pointRead, params({ level: 'none', db_timeout: '1s' })), undefined)
    assert.equal(reads.answer([{ sql: "ATTACH 'x.db' AS x" }], params({ level: 'none' })), undefined)
    assert.equal(reads.answer([], params({ level: 'none' })), undefined)
  })

  test('sees a schema change the node commits: the new columns, not the ones it learned before', () => {
    node.publish(replica)
    const star = [{ sql: 'SELECT * FROM t' }]
    assert.deepEqual(JSON.parse(reads.answer(star, params({ level: 'none' }))!.body).results[0].columns, ['id', 'v'])
    schema.changing(() => writer.policy.internally(() => writer.connection.exec('ALTER TABLE t ADD COLUMN w INTEGER')))
    assert.deepEqual(JSON.parse(reads.answer(star, params({ level: 'none' }))!.body).results[0].columns, ['id', 'v', 'w'])
  })

  test('leaves a read that runs past its budget to the node (the node runs it on a read thread)', () => {
    node.publish(replica)
    const long = [{ sql: 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT count(*) FROM c' }]
    assert.equal(reads.answer(long, params({ level: 'none' })), undefined)
    assert.equal(reads.answer(long, params({ level: 'none' })), undefined, 'and it is not tried again')
  })
})
