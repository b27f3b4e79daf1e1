/**
 * HTTP workers (issue 19): a node answers reads from more than one process (--http-workers),
 * each with its own read-only connection, and every read keeps its guarantees whichever process
 * answers it: min_lsn (read your writes), freshness, level=none. A worker that dies is replaced
 * while the node stays ready; a worker's connection passes the same gate as the node's own, and
 * bad bytes on it hurt nobody else.
 *
 * Every read here goes over a connection of its own (agent: false), so the node hands them out
 * in turn over its processes; an answer a worker gave says so (x-tandem-http-worker).
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { connect } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, get } from '../harness/http.ts'
import { basic, writeSecret, writeUsers } from '../harness/auth.ts'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
}

/** One request on a connection of its own. */
function fresh(nodeUrl: string, path: string, options: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(path, nodeUrl)
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', agent: false, headers: { ...(options.body === undefined ? {} : { 'content-type': 'application/json' }), ...options.headers } }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${path} in 30 s`)))
    req.end(options.body)
  })
}

const byWorker = (answer: Answer) => answer.headers['x-tandem-http-worker'] !== undefined
const select = (sql: string, params = 'level=none') => `/db/query?${params}&q=${encodeURIComponent(sql)}`

interface WorkersStatus {
  processes: number
  workers: { index: number; pid: number | null; ready: boolean; restarts: number; served: number }[]
}

async function workersOf(nodeUrl: string): Promise<WorkersStatus> {
  return (await get(`${nodeUrl}/status`)).body['http_workers'] as WorkersStatus
}

/** Resolves once every worker of the node is ready. */
function workersReady(nodeUrl: string, count: number): Promise<WorkersStatus> {
  return waitFor(async () => {
    const status = await workersOf(nodeUrl)
    return status.workers.length === count && status.workers.every((w) => w.ready) ? status : undefined
  }, 20_000, () => `${count} HTTP workers of ${nodeUrl} ready`)
}

describe('HTTP workers', () => {
  let cluster: Cluster
  /** A replica that applies each entry 300 ms after it arrives, answering on 3 processes. */
  let delayed: string
  before(async () => {
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--http-workers', '2'] })
    delayed = (await cluster.addReplica(['--http-workers', '3', '--apply-delay-ms', '300'])).url
    await execute(cluster.master.url, ['CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)'])
    await workersReady(delayed, 2)
    await workersReady(cluster.master.url, 1)
  })
  after(async () => {
    await cluster.stop()
  })

  test('a read with min_lsn sees the write it names on every process, even one that had not applied it yet', async () => {
    const answeredBy = { worker: 0, main: 0 }
    for (let i = 1; i <= 12; i++) {
      const written = await execute(cluster.master.url, [['INSERT INTO notes (id, text) VALUES (?, ?)', i, `note ${i}`]])
      assert.equal(written.status, 200, JSON.stringify(written.body))
      const lsn = written.body.lsn
      // Three reads at once over three connections: the replica's three processes in turn.
      const reads = await Promise.all([0, 1, 2].map(() => fresh(delayed, select(`SELECT text FROM notes WHERE id = ${i}`, `min_lsn=${lsn}`))))
      for (const read of reads) {
        assert.equal(read.status, 200, read.body)
        assert.deepEqual(JSON.parse(read.body).results[0].values, [[`note ${i}`]], `read ${i} after LSN ${lsn}: ${read.body}`)
        assert.ok(Number(read.headers['x-tandem-lsn']) >= lsn, `the answer's LSN ${String(read.headers['x-tandem-lsn'])} is at least ${lsn}`)
      }
      // Once it is applied, any process may answer at once (and the workers do, in turn).
      const again = await Promise.all([0, 1, 2].map(() => fresh(delayed, select(`SELECT text FROM notes WHERE id = ${i}`, `min_lsn=${lsn}`))))
      for (const read of again) {
        assert.deepEqual(JSON.parse(read.body).results[0].values, [[`note ${i}`]])
        answeredBy[byWorker(read) ? 'worker' : 'main']++
      }
    }
    assert.ok(answeredBy.worker > 0 && answeredBy.main > 0, `reads were answered by both the workers and the main process: ${JSON.stringify(answeredBy)}`)
    const status = await workersOf(delayed)
    assert.equal(status.processes, 3)
    assert.ok(status.workers.every((w) => w.served > 0), `every worker answered reads: ${JSON.stringify(status.workers)}`)
  })

  test('freshness holds on every process: a replica that stopped hearing its master refuses a read that asks for a fresher one', async () => {
    const sql = 'SELECT count(*) FROM notes'
    const fine = await Promise.all([0, 1, 2, 3, 4, 5].map(() => fresh(delayed, select(sql, 'freshness=10s'))))
    for (const read of fine) assert.equal(read.status, 200, read.body)
    assert.ok(fine.some(byWorker), 'a worker answered a read with freshness')
    cluster.master.pause()
    try {
      // The master is silent; past 1 s since it was last heard, freshness=1s must be refused everywhere.
      await waitFor(async () => {
        const status = (await get(`${delayed}/status`)).body as { replication?: { last_contact_ms_ago?: number | null } }
        const since = status.replication?.last_contact_ms_ago
        return since !== undefined && since !== null && since > 1500 ? true : undefined
      }, 20_000, () => 'the replica to notice its master went quiet')
      const stale = await Promise.all([0, 1, 2, 3, 4, 5].map(() => fresh(delayed, select(sql, 'freshness=1s'))))
      for (const read of stale) {
        assert.equal(read.headers['x-tandem-error'], 'REPLICA_TOO_STALE', `${read.status} ${read.body}`)
      }
      // level=none alone asks nothing of freshness: every process answers from its file.
      const none = await Promise.all([0, 1, 2].map(() => fresh(delayed, select(sql))))
      for (const read of none) assert.equal(read.status, 200, read.body)
      assert.ok(none.some(byWorker), 'a worker answered a level=none read while the master was quiet')
    } finally {
      cluster.master.resume()
    }
  })

  test('a worker that dies is replaced, and the node stays ready meanwhile', async () => {
    const before = await workersReady(delayed, 2)
    const victim = before.workers[0]!
    let probing = true
    const notReady: number[] = []
    const probes = (async () => {
      while (probing) {
        const ready = await fresh(delayed, '/readyz')
        if (ready.status !== 200) notReady.push(ready.status)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    })()
    process.kill(victim.pid!, 'SIGKILL')
    const after = await waitFor(async () => {
      const status = await workersOf(delayed)
      const replaced = status.workers.find((w) => w.index === victim.index)
      return replaced !== undefined && replaced.ready && replaced.pid !== victim.pid && replaced.restarts === victim.restarts + 1 ? status : undefined
    }, 20_000, () => `worker ${victim.index} replaced\n${cluster.logs()}`)
    probing = false
    await probes
    assert.deepEqual(notReady, [], '/readyz answered 200 throughout')
    // The new worker answers reads.
    const answered = await waitFor(async () => {
      const read = await fresh(delayed, select('SELECT count(*) FROM notes'))
      return read.headers['x-tandem-http-worker'] === String(victim.index) ? read : undefined
    }, 20_000, () => `the new worker ${victim.index} answers a read`)
    assert.deepEqual(JSON.parse(answered.body).results[0].values, [[12]])
    assert.equal(after.workers.length, 2)
  })

  test('a connection a worker holds carries any request: writes, status and reads after it', async () => {
    const url = new URL(delayed)
    const answers = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname)
      let text = ''
      socket.setEncoding('latin1')
      socket.on('data', (chunk: string) => {
        text += chunk
        if ((text.match(/HTTP\/1\.1 /g) ?? []).length >= 3 && text.endsWith('}')) socket.end()
      })
      socket.on('end', () => resolve(text))
      socket.on('error', reject)
      // Three requests at once in one write, the first a read (so a worker may get the connection).
      const host = `Host: ${url.host}\r\n`
      const body = `["INSERT INTO notes (text) VALUES ('pipelined')"]`
      socket.write(
        `GET ${select('SELECT 1')} HTTP/1.1\r\n${host}\r\n` +
          `GET /status HTTP/1.1\r\n${host}\r\n` +
          `POST /db/execute HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      )
    })
    const statuses = [...answers.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])
    assert.deepEqual(statuses, ['200', '200', '200'], answers.slice(0, 2000))
    assert.match(answers, /"rows_affected":1/)
  })

  test('bad bytes on a new connection get a 400 or a close, and the node answers everyone else', async () => {
    const url = new URL(delayed)
    const sendRaw = (bytes: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(Number(url.port), url.hostname)
        let text = ''
        socket.setEncoding('latin1')
        socket.on('data', (chunk: string) => (text += chunk))
        socket.on('close', () => resolve(text))
        socket.on('error', () => resolve(text))
        socket.write(bytes)
        setTimeout(() => socket.end(), 500)
      })
    const garbage = [
      'GET /db/query?q=SELECT%201 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
      'GET /db/query HTTP/9.9\x00\x01\x02\r\n\r\n',
      'POST /db/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n[1,2',
      `GET /db/query?q=${'x'.repeat(70_000)} HTTP/1.1\r\n\r\n`,
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
    ]
    const answers = await Promise.all(garbage.map(sendRaw))
    for (const [i, answer] of answers.entries()) {
      assert.ok(answer === '' || /^HTTP\/1\.1 4\d\d /.test(answer), `bad request ${i} got a 4xx or a close: ${answer.slice(0, 300)}`)
    }
    const read = await fresh(delayed, select('SELECT count(*) FROM notes'))
    assert.equal(read.status, 200, read.body)
    const status = await workersReady(delayed, 2)
    assert.ok(status.workers.every((w) => w.ready))
  })
})

describe('HTTP workers behind --auth', () => {
  let cluster: Cluster
  let dir: string
  const admin = basic('admin', 'admin pw')
  const reader = basic('reader', 'reader pw')
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tandem-workers-auth-'))
    const users = writeUsers(dir, 'users', [
      { username: 'admin', password: 'admin pw', perms: ['all'] },
      { username: 'reader', password: 'reader pw', perms: ['query'] },
    ])
    const secret = writeSecret(dir, 'secret', 'the workers test cluster secret, 32+ bytes')
    cluster = await Cluster.start({ replicas: 0, masterArgs: ['--http-workers', '3', '--auth', users, '--cluster-secret-file', secret] })
    await waitFor(async () => {
      const status = await fresh(cluster.master.url, '/status', { headers: { authorization: admin } })
      const workers = (JSON.parse(status.body) as { http_workers: WorkersStatus }).http_workers
      return workers.workers.length === 2 && workers.workers.every((w) => w.ready) ? true : undefined
    }, 20_000, () => 'the workers ready')
    const created = await fresh(cluster.master.url, '/db/execute', { method: 'POST', body: JSON.stringify(['CREATE TABLE t (id INTEGER PRIMARY KEY)']), headers: { authorization: admin } })
    assert.equal(created.status, 200, created.body)
  })
  after(async () => {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test('every process asks for the same credentials and permissions', async () => {
    const sql = select('SELECT count(*) FROM t')
    const anonymous = await Promise.all([0, 1, 2, 3, 4, 5].map(() => fresh(cluster.master.url, sql)))
    for (const answer of anonymous) assert.equal(answer.status, 401, answer.body)
    const wrong = await Promise.all([0, 1, 2].map(() => fresh(cluster.master.url, sql, { headers: { authorization: basic('reader', 'nope') } })))
    for (const answer of wrong) assert.equal(answer.status, 401, answer.body)
    const allowed = await Promise.all([0, 1, 2, 3, 4, 5].map(() => fresh(cluster.master.url, sql, { headers: { authorization: reader } })))
    for (const answer of allowed) assert.equal(answer.status, 200, answer.body)
    assert.ok(allowed.some(byWorker), 'a worker answered an allowed read')
    // A reader's write through /db/query is a read-only connection's error, on any process.
    const viaQuery = await Promise.all([0, 1, 2].map(() => fresh(cluster.master.url, '/db/query', { method: 'POST', body: JSON.stringify(['INSERT INTO t VALUES (1)']), headers: { authorization: reader } })))
    for (const answer of viaQuery) assert.match(answer.body, /attempt to change database via query operation/)
    const rows = await fresh(cluster.master.url, sql, { headers: { authorization: admin } })
    assert.deepEqual(JSON.parse(rows.body).results[0].values, [[0]])
  })

  test('a worker hands no one more than the node would: a reader cannot write or replicate through it', async () => {
    const url = new URL(cluster.master.url)
    const host = `Host: ${url.host}\r\nAuthorization: ${reader}\r\n`
    for (let i = 0; i < 4; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname)
        let answer = ''
        let upgraded = false
        socket.setEncoding('latin1')
        const upgrade = `GET /replication HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
        socket.on('data', (chunk: string) => {
          answer += chunk
          const answered = (answer.match(/HTTP\/1\.1 /g) ?? []).length
          // The upgrade once both answers are in: Node takes an upgrade out of turn.
          if (answered === 2 && answer.endsWith('}') && !upgraded) {
            upgraded = true
            socket.write(upgrade)
          }
          if (answered >= 3) setTimeout(() => socket.end(), 50)
        })
        socket.on('close', () => resolve(answer))
        socket.on('error', reject)
        const body = '["INSERT INTO t VALUES (2)"]'
        socket.write(
          `GET ${select('SELECT 1')} HTTP/1.1\r\n${host}\r\n` +
            `POST /db/execute HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        )
      })
      const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1])
      assert.deepEqual(statuses, ['200', '403', '403'], text.slice(0, 2000))
    }
    const rows = await fresh(cluster.master.url, select('SELECT count(*) FROM t'), { headers: { authorization: admin } })
    assert.deepEqual(JSON.parse(rows.body).results[0].values, [[0]], 'nothing was written')
  })
})
