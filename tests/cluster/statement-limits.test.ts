/**
 * Statements that run away (issue 16, part 1), against real processes: a statement past its limit
 * is stopped on every endpoint, on a master and a replica, and answered rqlite's error; the node
 * answers point reads meanwhile; a write stopped that way leaves nothing behind and does not take
 * the writes it was batched with; a read whose client went away is dropped; SIGTERM stops a node
 * whatever statement it is running.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import { connect } from 'node:net'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { NodeProcess } from '../harness/node-process.ts'
import { call, type Reply } from '../harness/http.ts'

/** Counts for ever: only a time limit, a cancel or a signal stops it. */
const runaway = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c'
const runawayRows = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x FROM c'
const pointRead = 'SELECT v FROM t WHERE id = 1'

const query = (node: string, sql: string, params = '') => call('GET', `${node}/db/query?q=${encodeURIComponent(sql)}${params}`)

/** Every way a read reaches a node; `local` is the query string that keeps it on that node. */
const readEndpoints = {
  'GET /db/query': (node: string, sql: string, local: string) => call('GET', `${node}/db/query?q=${encodeURIComponent(sql)}${local}`),
  'POST /db/query': (node: string, sql: string, local: string) => call('POST', `${node}/db/query?${local.slice(1)}`, [sql]),
  'POST /db/request': (node: string, sql: string, local: string) => call('POST', `${node}/db/request?${local.slice(1)}`, [sql]),
}

async function readsInFlight(node: string): Promise<number> {
  const status = await call('GET', `${node}/status`)
  return (status.json.reads.workers as { in_flight: number }[]).reduce((sum, w) => sum + w.in_flight, 0)
}

async function longWrites(node: string): Promise<{ running: boolean; total: number }> {
  return (await call('GET', `${node}/status`)).json.master.long_writes
}

/** Tracks whether a request has been answered yet. */
function pending<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false
  const tracked = promise.finally(() => {
    settled = true
  })
  return { promise: tracked, settled: () => settled }
}

describe('statements past --query-timeout, on a master and a replica', () => {
  let cluster: Cluster

  before(async () => {
    const args = ['--query-timeout', '3s']
    cluster = await Cluster.start({ replicas: 1, masterArgs: args, replicaArgs: args })
    const created = await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(id, v) VALUES (1, 'one')"])
    assert.equal(created.status, 200, created.text)
    await cluster.converged()
  })

  after(async () => {
    await cluster?.stop()
  })

  for (const [name, send] of Object.entries(readEndpoints)) {
    for (const where of ['master', 'replica'] as const) {
      test(`${name} on the ${where}: the runaway answers query timeout; a point read and /readyz answer while it runs`, async () => {
        const node = where === 'master' ? cluster.master.url : cluster.replicas[0]!.url
        const local = where === 'master' ? '' : '&level=none'
        const slow = pending(send(node, runaway, local))
        await waitFor(async () => ((await readsInFlight(node)) > 0 ? true : undefined), 20_000, () => 'the runaway read on a read thread')
        const point = await query(node, pointRead, local)
        assert.equal(point.status, 200, point.text)
        assert.deepEqual(point.json.results[0].values, [['one']])
        const ready = await call('GET', `${node}/readyz`)
        assert.equal(ready.status, 200, ready.text)
        assert.equal(slow.settled(), false, 'the point read and /readyz were answered while the runaway ran')
        const answer = await slow.promise
        assert.equal(answer.status, 200, answer.text)
        assert.equal(answer.json.results[0].error, 'query timeout')
        // The thread is free again: nothing is left running.
        assert.equal(await readsInFlight(node), 0)
      })
    }
  }

  test('a runaway write answers execute timeout and applies nothing; the rest of its request and the writes beside it commit and replicate', async () => {
    const master = cluster.master.url
    const writes = Array.from({ length: 10 }, (_, i) => call('POST', `${master}/db/execute`, [[`INSERT INTO t(v) VALUES (?)`, `beside ${i}`]]))
    const stopped = call('POST', `${master}/db/execute`, [`INSERT INTO t(v) SELECT x FROM (${runawayRows})`, "INSERT INTO t(v) VALUES ('after it')"])
    const inTransaction = call('POST', `${master}/db/execute?transaction`, ["INSERT INTO t(v) VALUES ('rolled back')", `INSERT INTO t(v) SELECT x FROM (${runawayRows})`])
    const [answer, transactionAnswer, ...others] = await Promise.all([stopped, inTransaction, ...writes])
    assert.equal(answer.status, 200, answer.text)
    assert.equal(answer.json.results[0].error, 'execute timeout')
    assert.equal(answer.json.results[1].rows_affected, 1)
    assert.equal(transactionAnswer.json.results[1].error, 'execute timeout')
    for (const other of others) assert.equal(other.json.results[0].rows_affected, 1, other.text)
    const rows = await query(master, 'SELECT v FROM t WHERE id > 1 ORDER BY v')
    assert.deepEqual(rows.json.results[0].values.map((r: string[]) => r[0]), ['after it', ...Array.from({ length: 10 }, (_, i) => `beside ${i}`)])
    await cluster.converged()
  })

  test('a runaway write runs on the long-write thread: reads, /readyz, replication and the jobs API answer meanwhile; writes queue behind it', async () => {
    const master = cluster.master.url
    const replica = cluster.replicas[0]!.url
    const before = await longWrites(master)
    const slow = pending(call('POST', `${master}/db/execute`, [`INSERT INTO t(v) SELECT x FROM (${runawayRows})`]))
    await waitFor(async () => ((await longWrites(master)).running ? true : undefined), 20_000, () => 'the runaway write on the long-write thread')
    const behind = pending(call('POST', `${master}/db/execute`, [["INSERT INTO t(v) VALUES (?)", 'behind the runaway']]))
    const point = await query(master, pointRead)
    assert.deepEqual(point.json.results[0].values, [['one']])
    for (const node of [master, replica]) {
      const ready = await call('GET', `${node}/readyz`)
      assert.equal(ready.status, 200, `${node}: ${ready.text}`)
    }
    const jobs = await call('GET', `${master}/jobs`)
    assert.equal(jobs.status, 200, jobs.text)
    assert.equal(slow.settled(), false, 'everything above was answered while the runaway ran')
    assert.equal(behind.settled(), false, 'a write waits for the one SQLite writer')
    const answer = await slow.promise
    assert.equal(answer.json.results[0].error, 'execute timeout', answer.text)
    const next = await behind.promise
    assert.equal(next.json.results[0].rows_affected, 1, next.text)
    assert.equal((await longWrites(master)).total, before.total + 1)
    await cluster.converged()
  })

  test('a long write that succeeds commits from the long-write thread: its rows, its index and its idempotency record replicate', async () => {
    const master = cluster.master.url
    const before = await longWrites(master)
    const bulk = [
      'CREATE TABLE bulk (id INTEGER PRIMARY KEY, v TEXT)',
      "INSERT INTO bulk(v) SELECT 'row ' || x FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 300000) SELECT x FROM c)",
      'CREATE INDEX bulk_v ON bulk(v)',
    ]
    const headers = { 'Idempotency-Key': 'bulk-load-1' }
    const first = await call('POST', `${master}/db/execute?transaction`, bulk, { headers })
    assert.equal(first.status, 200, first.text)
    assert.equal(first.json.results[1].rows_affected, 300000)
    assert.ok((await longWrites(master)).total > before.total, 'the request ran on the long-write thread')
    const again = await call('POST', `${master}/db/execute?transaction`, bulk, { headers })
    assert.equal(again.json.lsn, first.json.lsn, 'a retry is answered from the first run')
    const after = await call('POST', `${master}/db/execute`, [["INSERT INTO t(v) VALUES (?)", 'after the bulk load']])
    assert.equal(after.json.lsn, first.json.lsn + 1, 'the next entry follows the long one')
    await cluster.converged()
    const replica = cluster.replicas[0]!.url
    const rows = await query(replica, "SELECT count(*), (SELECT count(*) FROM sqlite_schema WHERE name = 'bulk_v') FROM bulk", '&level=none')
    assert.deepEqual(rows.json.results[0].values, [[300000, 1]])
  })
})

describe('a node without a time limit: db_timeout, clients that go away, and SIGTERM', () => {
  let cluster: Cluster
  let node: NodeProcess

  before(async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--query-timeout', '0'] })
    node = cluster.master
    await call('POST', `${node.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(id, v) VALUES (1, 'one')"])
  })

  after(async () => {
    await cluster?.stop()
  })

  test("rqlite's db_timeout stops a read and a write that would otherwise never end", async () => {
    const read = await call('GET', `${node.url}/db/query?db_timeout=300ms&q=${encodeURIComponent(runaway)}`)
    assert.equal(read.json.results[0].error, 'query timeout', read.text)
    const write = await call('POST', `${node.url}/db/execute?db_timeout=300ms`, [`INSERT INTO t(v) SELECT x FROM (${runawayRows})`])
    assert.equal(write.json.results[0].error, 'execute timeout', write.text)
    const request = await call('POST', `${node.url}/db/request?db_timeout=0.3s`, [runaway])
    assert.equal(request.json.results[0].error, 'query timeout', request.text)
    const bad = await call('GET', `${node.url}/db/query?db_timeout=soon&q=${encodeURIComponent(pointRead)}`)
    assert.equal(bad.status, 400)
    assert.equal(bad.json.code, 'BAD_REQUEST')
  })

  test('50 reads whose clients went away are dropped or stopped, and the next read runs', async () => {
    const before = (await call('GET', `${node.url}/status`)).json.reads.cancelled as number
    const controllers = Array.from({ length: 50 }, () => new AbortController())
    const reads = controllers.map((c) => call('GET', `${node.url}/db/query?q=${encodeURIComponent(runaway)}`, undefined, { signal: c.signal }).catch((error: unknown) => error))
    await waitFor(async () => ((await readsInFlight(node.url)) === 50 ? true : undefined), 20_000, () => 'the 50 reads in flight')
    for (const c of controllers) c.abort()
    await Promise.all(reads)
    await waitFor(async () => ((await readsInFlight(node.url)) === 0 ? true : undefined), 20_000, () => 'every abandoned read gone from the read thread')
    const after = (await call('GET', `${node.url}/status`)).json.reads.cancelled as number
    assert.equal(after - before, 50)
    // A read that needs the read thread (never seen, and not cheap) is answered: nothing holds it.
    const next = await call('GET', `${node.url}/db/query?q=${encodeURIComponent('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000) SELECT count(*) FROM c')}`)
    assert.deepEqual(next.json.results[0].values, [[100000]])
  })

  test('SIGTERM stops a node busy in a read that would never end, and one busy in such a write on the long-write thread or on its event loop', async () => {
    const read = call('GET', `${node.url}/db/query?q=${encodeURIComponent(runaway)}`)
    await waitFor(async () => ((await readsInFlight(node.url)) > 0 ? true : undefined), 20_000, () => 'the runaway read on a read thread')
    // A client that opened a connection and never sent a byte does not hold the stop either.
    const quiet = connect(Number(new URL(node.url).port), '127.0.0.1')
    quiet.on('error', () => {})
    await once(quiet, 'connect')
    const exited = await Promise.race([node.kill('SIGTERM').then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 15_000))])
    assert.equal(exited, true, 'the node did not exit within 15 s of SIGTERM')
    quiet.destroy()
    assert.equal(node.child?.exitCode, 0)
    assert.equal((await read).json.code, 'SHUTTING_DOWN')

    await node.restart()
    const onThread = call('POST', `${node.url}/db/execute`, [`INSERT INTO t(v) SELECT x FROM (${runawayRows})`]).catch((error: unknown) => error)
    await waitFor(async () => ((await longWrites(node.url)).running ? true : undefined), 20_000, () => 'the runaway write on the long-write thread')
    await node.kill('SIGTERM')
    assert.equal(node.child?.exitCode, 0)
    assert.equal(((await onThread) as Partial<Reply>).json?.code, 'SHUTTING_DOWN')

    // --write-budget 0: every write runs on the event loop, however long.
    await node.restart({ args: [...(node.spec.args ?? []), '--write-budget', '0'] })
    const write = call('POST', `${node.url}/db/execute`, [`INSERT INTO t(v) SELECT x FROM (${runawayRows})`]).catch((error: unknown) => error)
    // The write holds the event loop: /status would not answer. Its request is on the way once
    // the node has accepted it; give the master the time to take it from the socket.
    await waitFor(async () => {
      const answered = await Promise.race([call('GET', `${node.url}/status`, undefined, { signal: AbortSignal.timeout(500) }).then(() => true, () => false), new Promise((r) => setTimeout(() => r(false), 600))])
      return answered ? undefined : true
    }, 20_000, () => 'the master busy in the runaway write')
    await node.kill('SIGTERM')
    assert.equal(node.child?.exitCode, 0)
    const answer = (await write) as Partial<Reply>
    assert.equal(answer.json?.code, 'SHUTTING_DOWN')
    await node.restart()
    const rows = await query(node.url, 'SELECT count(*) FROM t')
    assert.deepEqual(rows.json.results[0].values, [[1]], 'nothing of the stopped writes was applied')
  })
})

/** The most memory the process ever held (VmHWM), in MB. */
function peakRssMb(node: NodeProcess): number {
  const status = readFileSync(`/proc/${node.child!.pid}/status`, 'utf8')
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) / 1024
}

describe('results past --max-result-bytes', () => {
  let cluster: Cluster

  before(async () => {
    cluster = await Cluster.start({ replicas: 1, masterArgs: ['--max-result-bytes', '1MiB'], replicaArgs: ['--max-result-bytes', '1MiB'] })
    await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(id, v) VALUES (1, 'one')"])
    await cluster.converged()
  })

  after(async () => {
    await cluster?.stop()
  })

  const manyRows = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000) SELECT x FROM c'

  test('a read past it fails with result too large on every endpoint, on master and replica; the statements beside it answer', async () => {
    for (const node of [cluster.master.url, cluster.replicas[0]!.url]) {
      for (const [name, send] of Object.entries(readEndpoints)) {
        const answer = await send(node, manyRows, '&level=none')
        assert.equal(answer.status, 200, `${name}: ${answer.text}`)
        assert.match(answer.json.results[0].error, /^result too large: the statement's rows pass --max-result-bytes \(1048576 bytes/, name)
      }
      const both = await call('POST', `${node}/db/query?level=none`, [manyRows, pointRead])
      assert.deepEqual(both.json.results[1].values, [['one']])
    }
  })

  test('a write returning rows past it applies nothing; the rest of its request does', async () => {
    const answer = await call('POST', `${cluster.master.url}/db/execute`, [`INSERT INTO t(v) SELECT x FROM (${manyRows}) RETURNING id`, "INSERT INTO t(v) VALUES ('kept')"])
    assert.match(answer.json.results[0].error, /^result too large/, answer.text)
    assert.equal(answer.json.results[1].rows_affected, 1)
    const count = await query(cluster.master.url, 'SELECT count(*) FROM t')
    assert.deepEqual(count.json.results[0].values, [[2]])
    await cluster.converged()
  })
})

describe('a 10M-row result with the default limits', () => {
  let cluster: Cluster

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
  })

  after(async () => {
    await cluster?.stop()
  })

  test('is refused on a replica, which stays under 768 MB (it once took 2.36 GB; ~470 MB measured) and answers on', async () => {
    const replica = cluster.replicas[0]!
    const tenMillion = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10000000) SELECT x FROM c'
    const answer = await query(replica.url, tenMillion, '&level=none')
    assert.match(answer.json.results[0].error, /^result too large: the statement's rows pass --max-result-bytes \(67108864 bytes/, answer.text)
    const peak = peakRssMb(replica)
    assert.ok(peak < 768, `the replica peaked at ${Math.round(peak)} MB`)
    const next = await query(replica.url, 'SELECT 1', '&level=none')
    assert.deepEqual(next.json.results[0].values, [[1]])
  })
})

describe('many large SQL texts', () => {
  let cluster: Cluster

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
  })

  after(async () => {
    await cluster?.stop()
  })

  test('40 distinct SQL texts of 8 MB each leave the replica under 768 MB (they once took 2.95 GB)', async () => {
    const replica = cluster.replicas[0]!
    const padding = 'x'.repeat(8 * 1024 * 1024)
    for (let i = 0; i < 40; i++) {
      const answer = await call('POST', `${replica.url}/db/query?level=none`, [`SELECT ${i} /* ${padding} */`])
      assert.deepEqual(answer.json.results[0].values, [[i]], answer.text.slice(0, 200))
    }
    const peak = peakRssMb(replica)
    assert.ok(peak < 768, `the replica peaked at ${Math.round(peak)} MB`)
  })
})
