/**
 * The SQL policy against real processes (issue 16, part 3): a master and one replica. What the
 * policy refuses is refused on every endpoint, on the master and through the replica, with
 * nothing applied anywhere; a hostile corpus never gets a 500, never makes the nodes differ and
 * never writes a file outside the nodes' data directories; parameters without values and bodies
 * that are not UTF-8 are errors.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Cluster } from '../harness/cluster.ts'
import { call, checksum, type Reply } from '../harness/http.ts'
import { hostileCorpus } from './sql-policy-corpus.ts'

const postJson = (url: string, body: unknown) => call('POST', url, JSON.stringify(body))

/** Every way a statement reaches a node. */
const endpoints = {
  execute: (node: string, sql: string) => postJson(`${node}/db/execute`, [sql]),
  request: (node: string, sql: string) => postJson(`${node}/db/request`, [sql]),
  queryPost: (node: string, sql: string) => postJson(`${node}/db/query`, [sql]),
  queryGet: (node: string, sql: string) => call('GET', `${node}/db/query?q=${encodeURIComponent(sql)}`),
}

describe('the SQL policy on a master and a replica', () => {
  let cluster: Cluster
  let master: string
  let replica: string

  /** What a refusal must leave as it was, on each node: the checksum and the whole schema. */
  const snapshot = async (node: string) => {
    const schema = await call('GET', `${node}/db/query?level=none&q=${encodeURIComponent('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name')}`)
    assert.equal(schema.status, 200, schema.text)
    const { lsn, checksum: sum } = await checksum(node)
    return { lsn, sum, schema: schema.json.results[0].values }
  }

  const assertChangesNothing = async (fn: () => Promise<void>) => {
    await cluster.converged()
    const before = [await snapshot(master), await snapshot(replica)]
    await fn()
    await cluster.converged()
    assert.deepEqual([await snapshot(master), await snapshot(replica)], before, 'nothing applied on either node')
  }

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    master = cluster.master.url
    replica = cluster.replicas[0]!.url
    const setup = await postJson(`${master}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)', 'INSERT INTO t VALUES (1, 1)'])
    assert.equal(setup.status, 200, setup.text)
    // Submitting a job makes the master create its job tables, which the refusals below aim at.
    const job = await postJson(`${master}/jobs`, { name: 'nobody', inputs: [1] })
    assert.ok(job.status < 300, job.text)
    await cluster.converged()
  })

  after(async () => {
    await cluster?.stop()
  })

  const refused = [
    'CREATE TRIGGER x AFTER INSERT ON _tandem_log BEGIN DELETE FROM _tandem_log; END',
    'CREATE TRIGGER x BEFORE INSERT ON main."_tandem_log" BEGIN SELECT RAISE(ABORT, \'no writes\'); END',
    'CREATE TRIGGER x AFTER INSERT ON [_TANDEM_JOBS] BEGIN DELETE FROM _tandem_log; END',
    'CREATE TRIGGER x AFTER INSERT ON /* c */ main . `_tandem_jobs` BEGIN SELECT 1; END',
    'CREATE INDEX i ON _tandem_log (lsn)',
    'CREATE UNIQUE INDEX i ON "_tandem_jobs" (id)',
    'CREATE TRIGGER x AFTER INSERT ON t BEGIN DELETE FROM _tandem_log; END',
    'CREATE TEMP TABLE x (id INTEGER PRIMARY KEY)',
    'CREATE TEMPORARY TABLE x (id INTEGER PRIMARY KEY)',
    'CREATE TABLE temp.x (id INTEGER PRIMARY KEY)',
    'CREATE TABLE "TEMP".x AS SELECT * FROM t',
    'CREATE TEMPORARY VIEW v AS SELECT * FROM t',
    'CREATE VIEW temp.v AS SELECT 1',
    'CREATE TEMP TRIGGER x AFTER INSERT ON t BEGIN UPDATE t SET v = v + 1000 WHERE id = NEW.id; END',
    'CREATE TRIGGER temp.x AFTER INSERT ON t BEGIN UPDATE t SET v = v + 1000 WHERE id = NEW.id; END',
    'CREATE TRIGGER "temp"."x" AFTER INSERT ON main.t BEGIN UPDATE t SET v = v + 1000 WHERE id = NEW.id; END',
  ]

  test('triggers and indexes on Tandem tables and every TEMP spelling are refused on the master and through the replica, nothing applied', async () => {
    await assertChangesNothing(async () => {
      for (const node of [master, replica]) {
        for (const path of ['/db/execute', '/db/request']) {
          for (const sql of refused) {
            const reply = await postJson(`${node}${path}`, [sql])
            const context = `${node === master ? 'master' : 'replica'} ${path} ${sql}: HTTP ${reply.status} ${reply.text}`
            assert.equal(reply.status, 400, context)
            assert.equal(reply.json?.code, 'SQL_REFUSED', context)
            assert.match(reply.json.error, /_tandem_|temporary/, context)
          }
        }
      }
    })
  })

  test('after a refused temporary trigger, a write to its table lands the same on the master and the replica', async () => {
    await postJson(`${master}/db/execute`, ['CREATE TRIGGER temp.bump AFTER INSERT ON t BEGIN UPDATE t SET v = v + 1000 WHERE id = NEW.id; END'])
    const insert = await postJson(`${replica}/db/execute`, ['INSERT INTO t VALUES (2, 1001)'])
    assert.equal(insert.status, 200, insert.text)
    await cluster.converged()
    for (const node of [master, replica]) {
      const reply = await call('GET', `${node}/db/query?level=none&q=${encodeURIComponent('SELECT v FROM t WHERE id = 2')}`)
      assert.deepEqual(reply.json.results[0].values, [[1001]], node)
    }
  })

  test('a parameter without a value is a per-statement error, not NULL, and nothing is written', async () => {
    await assertChangesNothing(async () => {
      for (const node of [master, replica]) {
        for (const [path, body, pattern] of [
          ['/db/execute', [['INSERT INTO t VALUES (?, ?)', 50]], /takes 2 parameters but 1 was given/],
          ['/db/execute', [['INSERT INTO t VALUES (:id, :v)', { id: 51 }]], /named parameter :v/],
          ['/db/execute', [['INSERT INTO t VALUES (?, ?)', 52, 1, 2]], /takes 2 parameters but 3 were given/],
          ['/db/request', [['INSERT INTO t VALUES (?, ?)', 53]], /takes 2 parameters/],
          ['/db/query', [['SELECT ?, ?', 1]], /takes 2 parameters but 1 was given/],
          ['/db/query', [['SELECT :a, :b', { a: 1 }]], /named parameter :b/],
          ['/db/request', [['SELECT :a, :b', { a: 1 }]], /named parameter :b/],
        ] as const) {
          const reply = await postJson(`${node}${path}`, body)
          const context = `${path} ${JSON.stringify(body)}: HTTP ${reply.status} ${reply.text}`
          assert.equal(reply.status, 200, context)
          assert.match(reply.json.results[0].error ?? '', pattern, context)
        }
      }
    })
  })

  test('a body that is not valid UTF-8 is a 400 on every endpoint, nothing run', async () => {
    const prefix = Buffer.from(`["INSERT INTO t VALUES (60, '`)
    const body = Buffer.concat([prefix, Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`')"]`)])
    await assertChangesNothing(async () => {
      for (const node of [master, replica]) {
        for (const path of ['/db/execute', '/db/request', '/db/query', '/db/execute?transaction']) {
          const reply = await call('POST', `${node}${path}`, body)
          const context = `${path}: HTTP ${reply.status} ${reply.text}`
          assert.equal(reply.status, 400, context)
          assert.equal(reply.json?.code, 'BAD_REQUEST', context)
          assert.match(reply.json.error, /UTF-8/, context)
        }
      }
    })
  })

  test('a corpus of hostile SQL on every endpoint of both nodes: no 500, the nodes agree, no file outside the data directories', async () => {
    const token = `tandem-hostile-${randomBytes(6).toString('hex')}`
    const outside = join(tmpdir(), token)
    const corpus = hostileCorpus(outside)
    assert.ok(corpus.length >= 50, `${corpus.length} statements`)
    const setup = await postJson(`${master}/db/execute`, ['CREATE TABLE h (id INTEGER PRIMARY KEY, v)'])
    assert.equal(setup.status, 200, setup.text)
    const failures: string[] = []
    for (const sql of corpus) {
      for (const node of [master, replica]) {
        for (const [name, send] of Object.entries(endpoints)) {
          let reply: Reply
          try {
            reply = await send(node, sql)
          } catch (error) {
            failures.push(`${name} ${sql.slice(0, 80)}: no answer (${String(error)})`)
            continue
          }
          if (reply.status >= 500) failures.push(`${name} ${sql.slice(0, 80)}: HTTP ${reply.status} ${reply.text.slice(0, 200)}`)
        }
      }
    }
    assert.deepEqual(failures, [], 'no request answers 500 or drops the connection')
    const sum = await cluster.converged()
    assert.ok(sum.length > 0)
    const [onMaster, onReplica] = [await snapshot(master), await snapshot(replica)]
    assert.deepEqual(onReplica, onMaster, 'the replica holds what the master holds, schema included')
    for (const node of [master, replica]) assert.equal((await call('GET', `${node}/readyz`)).status, 200, 'both nodes still serve')
    const strays = readdirSync(tmpdir()).filter((name) => name.includes(token))
    assert.deepEqual(strays, [], 'no file named in the corpus was created')
    assert.equal(existsSync(outside), false)
  })
})
