/**
 * The trust boundary, endpoint by endpoint: who may call what on a master and on a replica
 * (which forwards writes and weak reads to the master with the caller's credentials, and the
 * master checks them again), what a user with only `query` can never do, how a node refuses to
 * start unsecured on a network, and that an open local cluster (no --auth, no secret) works as
 * before but still never follows another cluster. Attacks on a secured cluster are in
 * security-attacks.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { WebSocket } from 'ws'
import { hashPassword } from '../../src/security/index.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { NodeProcess } from '../harness/node-process.ts'
import { basic, call, callOk, convergedWith, writeSecret, writeUsers, type CallResult, type Checksum, type UserEntry } from '../harness/auth.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-security-'))
const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

type Principal = { name: string; auth: string | undefined; perms: readonly string[]; isKnown: boolean }
/** An endpoint's own answer to a caller it admits: a status and, for refusals, the code. */
type Answer = { status: number; code?: string }

interface Endpoint {
  name: string
  method: 'GET' | 'POST'
  path: string
  body?: unknown
  /** Every permission the request needs. */
  needs: string[]
  master: Answer
  /** undefined: not sent as an admitted caller on the replica (see the entry). */
  replica: Answer | undefined
}

const ok: Answer = { status: 200 }
const endpoints: Endpoint[] = [
  { name: 'POST /db/execute', method: 'POST', path: '/db/execute', body: [["INSERT INTO t(v) VALUES ('matrix')"]], needs: ['execute'], master: ok, replica: ok },
  { name: 'GET /db/query', method: 'GET', path: `/db/query?q=${encodeURIComponent('SELECT COUNT(*) FROM t')}`, needs: ['query'], master: ok, replica: ok },
  { name: 'POST /db/query', method: 'POST', path: '/db/query', body: ['SELECT COUNT(*) FROM t'], needs: ['query'], master: ok, replica: ok },
  { name: 'POST /db/request (a read)', method: 'POST', path: '/db/request', body: ['SELECT COUNT(*) FROM t'], needs: ['query'], master: ok, replica: ok },
  { name: 'POST /db/request (a write)', method: 'POST', path: '/db/request', body: [["INSERT INTO t(v) VALUES ('request')"]], needs: ['query', 'execute'], master: ok, replica: ok },
  { name: 'GET /status', method: 'GET', path: '/status', needs: ['status'], master: ok, replica: ok },
  { name: 'GET /nodes', method: 'GET', path: '/nodes', needs: ['status'], master: ok, replica: ok },
  { name: 'GET /readyz', method: 'GET', path: '/readyz', needs: ['ready'], master: ok, replica: ok },
  { name: 'GET /db/backup', method: 'GET', path: '/db/backup', needs: ['backup'], master: ok, replica: ok },
  // SQL text runs on top of the database (as rqlite runs it); a replica says where the master is.
  { name: 'POST /db/load', method: 'POST', path: '/db/load', body: 'CREATE TABLE IF NOT EXISTS loaded (id INTEGER PRIMARY KEY)', needs: ['load'], master: ok, replica: { status: 421, code: 'NOT_MASTER' } },
  { name: 'GET /db/checksum', method: 'GET', path: '/db/checksum', needs: ['status'], master: ok, replica: ok },
  // The master applies no replicated entries: it has no lag of its own to tell.
  { name: 'GET /replication/lag', method: 'GET', path: '/replication/lag', needs: ['status'], master: { status: 400, code: 'BAD_REQUEST' }, replica: ok },
  { name: 'POST /jobs', method: 'POST', path: '/jobs', body: { name: 'neverRun', input: 1 }, needs: ['jobs'], master: { status: 201 }, replica: { status: 201 } },
  { name: 'GET /jobs', method: 'GET', path: '/jobs', needs: ['jobs'], master: ok, replica: ok },
  // Admitted on the master it fails harmlessly; admitted on a replica it would promote it.
  { name: 'POST /cluster/promote', method: 'POST', path: '/cluster/promote', needs: ['cluster'], master: { status: 400, code: 'BAD_REQUEST' }, replica: undefined },
  { name: 'POST /cluster/follow', method: 'POST', path: '/cluster/follow', body: {}, needs: ['cluster'], master: { status: 400, code: 'BAD_REQUEST' }, replica: { status: 400, code: 'BAD_REQUEST' } },
  // Only a node raises an epoch: a user with `cluster` is refused too.
  { name: 'POST /cluster/fence', method: 'POST', path: '/cluster/fence', body: { epoch: 88 }, needs: ['cluster'], master: { status: 403, code: 'FORBIDDEN' }, replica: { status: 403, code: 'FORBIDDEN' } },
  { name: 'GET /replication/snapshot', method: 'GET', path: '/replication/snapshot', needs: ['replicate'], master: ok, replica: { status: 421, code: 'NOT_MASTER' } },
]

/** The permissions the matrix uses; a `no-<p>` user holds all of them but p. */
const used = [...new Set(endpoints.flatMap((e) => e.needs))]
const anonymousPerms = ['ready']
const adminPassword = 'admin password'
const admin = basic('admin', adminPassword)

async function usersFor(extra: UserEntry[]): Promise<UserEntry[]> {
  return [
    // Stored as a salted scrypt hash, as `tandem hash-password` writes it.
    { username: 'admin', password: await hashPassword(adminPassword), perms: ['all'] },
    { username: '*', perms: anonymousPerms },
    ...[...new Set(endpoints.map((e) => e.needs.join('+')))].map((needs) => ({ username: `only-${needs}`, password: `pw ${needs}`, perms: needs.split('+') })),
    ...used.map((p) => ({ username: `no-${p}`, password: `pw no ${p}`, perms: used.filter((q) => q !== p) })),
    ...extra,
  ]
}

const anonymous: Principal = { name: 'anonymous', auth: undefined, perms: anonymousPerms, isKnown: false }
const wrongPassword: Principal = { name: 'admin with a wrong password', auth: basic('admin', 'not the password'), perms: [], isKnown: false }
const withOnly = (needs: string[]): Principal => ({ name: `only-${needs.join('+')}`, auth: basic(`only-${needs.join('+')}`, `pw ${needs.join('+')}`), perms: needs, isKnown: true })
const without = (p: string): Principal => ({ name: `no-${p}`, auth: basic(`no-${p}`, `pw no ${p}`), perms: used.filter((q) => q !== p), isKnown: true })

/** 401 for a caller who did not prove who they are, 403 for a known user, else the endpoint's answer. */
function expected(endpoint: Endpoint, principal: Principal, own: Answer): Answer {
  if (endpoint.needs.every((p) => principal.perms.includes(p))) return own
  return principal.isKnown ? { status: 403, code: 'FORBIDDEN' } : { status: 401, code: 'UNAUTHORIZED' }
}

function describeAnswer(result: CallResult<unknown>): string {
  const body = typeof result.body === 'string' ? result.body.slice(0, 120) : JSON.stringify(result.body).slice(0, 300)
  return `HTTP ${result.status} ${body}`
}

function assertAnswer(result: CallResult, want: Answer, what: string): void {
  assert.equal(result.status, want.status, `${what}: expected ${want.status}${want.code === undefined ? '' : ` ${want.code}`}, got ${describeAnswer(result)}`)
  if (want.code !== undefined) assert.equal((result.body as { code?: string }).code, want.code, `${what}: ${describeAnswer(result)}`)
  if (want.status === 401) assert.match(String(result.headers['www-authenticate']), /^Basic /, `${what}: a 401 names the scheme to answer with`)
}

/** A request as written on the wire, for targets a client library would rewrite (`#`, absolute form). */
function rawRequest(url: string, target: string): Promise<number> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.end(`GET ${target} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`))
    let text = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => (text += chunk))
    socket.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)))
    socket.on('error', reject)
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to GET ${target}`)))
  })
}

/** The status a WebSocket upgrade to /replication gets: 101 when it opens. */
function upgradeStatus(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/replication`, { headers, handshakeTimeout: 5000 })
    ws.on('error', () => undefined)
    ws.on('open', () => {
      resolve(101)
      ws.terminate()
    })
    ws.on('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0)
      ws.terminate()
    })
    // Neither opened nor answered: the connection failed.
    ws.on('close', () => resolve(0))
  })
}

const countRows = async (url: string) => {
  const body = await callOk<{ results: { values: number[][] }[] }>(`${url}/db/query?q=${encodeURIComponent('SELECT COUNT(*) FROM t')}&level=none`, { auth: admin })
  return body.results[0]!.values[0]![0]!
}

const jobCount = async (url: string) => (await callOk<{ jobs: unknown[] }>(`${url}/jobs?limit=1000`, { auth: admin })).jobs.length

const statusOf = (url: string) => callOk<{ role: string; epoch: number; node: { cluster_id: string } }>(`${url}/status`, { auth: admin })

after(() => rmSync(dir, { recursive: true, force: true }))

describe('a secured cluster, endpoint by endpoint', () => {
  let cluster: Cluster
  let master: string
  let replica: string

  before(async () => {
    const secret = writeSecret(dir, 'cluster-secret', 'the matrix cluster secret, 32 bytes+')
    const masterUsers = writeUsers(dir, 'master-users', await usersFor([{ username: 'insider', password: 'insider pw', perms: ['query'] }]))
    // The replica's file trusts `insider` with everything and knows a user the master does not:
    // what the master answers to them shows it checks forwarded requests itself.
    const replicaUsers = writeUsers(dir, 'replica-users', await usersFor([
      { username: 'insider', password: 'insider pw', perms: ['all'] },
      { username: 'stranger', password: 'stranger pw', perms: ['all'] },
    ]))
    cluster = await Cluster.start({
      replicas: 1,
      masterArgs: ['--auth', masterUsers, '--cluster-secret-file', secret],
      replicaArgs: ['--auth', replicaUsers, '--cluster-secret-file', secret],
    })
    master = cluster.master.url
    replica = cluster.replicas[0]!.url
    await callOk(`${master}/db/execute`, { auth: admin, body: ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('first')"] })
    await convergedWith(admin, [master, replica])
  })
  after(async () => cluster?.stop())

  for (const endpoint of endpoints) {
    test(`${endpoint.name}: anonymous, a wrong password and a user without ${endpoint.needs.join(' and ')} are refused; a user with only that is served`, async () => {
      const principals = [anonymous, wrongPassword, ...endpoint.needs.map(without), withOnly(endpoint.needs)]
      for (const [role, url, own] of [['master', master, endpoint.master], ['replica', replica, endpoint.replica]] as const) {
        for (const principal of principals) {
          const want = expected(endpoint, principal, own ?? { status: 0 })
          // A replica admitting the caller would promote itself: only the refusals are sent there.
          if (own === undefined && want.status < 400) continue
          const result = await call(`${url}${endpoint.path}`, { method: endpoint.method, body: endpoint.body, ...(principal.auth === undefined ? {} : { auth: principal.auth }) })
          assertAnswer(result, want, `${endpoint.name} on the ${role} as ${principal.name}`)
        }
      }
      // Nothing in the matrix may move the epoch or take the master's role away.
      for (const url of [master, replica]) assert.equal((await statusOf(url)).epoch, 1, `epoch of ${url}`)
      assert.equal((await statusOf(master)).role, 'master')
      assert.equal((await statusOf(replica)).role, 'replica')
    })
  }

  test('a replica forwards the caller\'s credentials, and the master checks them again against its own users', async () => {
    const before = await countRows(master)
    const insider = basic('insider', 'insider pw')
    const stranger = basic('stranger', 'stranger pw')
    // The replica's own file lets both in; the master's gives insider only `query` and does not know stranger.
    assert.equal((await call(`${replica}/status`, { auth: insider })).status, 200, 'the replica admits insider itself')
    const refusedByMaster: [string, CallResult][] = [
      ['a write', await call(`${replica}/db/execute`, { auth: insider, body: [["INSERT INTO t(v) VALUES ('insider')"]] })],
      ['a write through /db/request', await call(`${replica}/db/request`, { auth: insider, body: [["INSERT INTO t(v) VALUES ('insider')"]] })],
      ['a backup', await call(`${replica}/db/backup`, { auth: insider })],
      ['a job', await call(`${replica}/jobs`, { auth: insider, body: { name: 'neverRun', input: 2 } })],
    ]
    for (const [what, result] of refusedByMaster) {
      assertAnswer(result, { status: 403, code: 'FORBIDDEN' }, `${what} by insider through the replica`)
      assert.match((result.body as { error: string }).error, /user insider lacks the/, `${what}: the master's refusal, relayed`)
    }
    assertAnswer(await call(`${replica}/db/query?q=${encodeURIComponent('SELECT COUNT(*) FROM t')}&level=weak`, { auth: insider }), ok, 'a weak read by insider, forwarded')
    const unknown = await call(`${replica}/db/execute`, { auth: stranger, body: [["INSERT INTO t(v) VALUES ('stranger')"]] })
    assert.equal(unknown.status, 401, `a write by a user the master does not know: ${describeAnswer(unknown)}`)
    assert.equal((unknown.body as { code: string }).code, 'UNAUTHORIZED')
    assert.equal(await countRows(master), before, 'no forwarded write was taken')
  })

  test('a user with only query cannot write through any endpoint, on the master or through the replica', async () => {
    const reader = withOnly(['query']).auth!
    const before = await callOk<Checksum>(`${master}/db/checksum`, { auth: admin })
    const jobsBefore = await jobCount(master)
    const insert = "INSERT INTO t(v) VALUES ('by a reader')"
    const attempts: [string, string, unknown][] = [
      ['POST /db/execute on the master', `${master}/db/execute`, [insert]],
      ['POST /db/request on the master', `${master}/db/request`, [insert]],
      ['POST /db/request, a read then a write', `${master}/db/request`, ['SELECT 1', insert]],
      ['POST /db/request, a write inside a CTE', `${master}/db/request`, ["WITH x(v) AS (SELECT 'cte') INSERT INTO t(v) SELECT v FROM x"]],
      ['POST /db/query with an INSERT on the master', `${master}/db/query`, [insert]],
      ['POST /db/query with INSERT … RETURNING', `${master}/db/query`, [`${insert} RETURNING id`]],
      ['GET /db/query?q=INSERT on the master', `${master}/db/query?q=${encodeURIComponent(insert)}`, undefined],
      ['POST /db/execute on the replica', `${replica}/db/execute`, [insert]],
      ['POST /db/request on the replica', `${replica}/db/request`, [insert]],
      ['POST /db/query with an INSERT on the replica, forwarded', `${replica}/db/query?level=weak`, [insert]],
      ['POST /db/query with an INSERT on the replica, local', `${replica}/db/query?level=none`, [insert]],
      ['POST /jobs on the master', `${master}/jobs`, { name: 'neverRun', input: 3 }],
      ['POST /jobs on the replica', `${replica}/jobs`, { name: 'neverRun', input: 3 }],
    ]
    for (const [what, url, body] of attempts) {
      const result = await call<{ results?: { error?: string; rows_affected?: number }[] }>(url, { auth: reader, body })
      // Refused outright, or answered with an error in place of the statement's result: never a row written.
      const wrote = result.status < 300 && (result.body.results ?? []).some((r) => r.error === undefined)
      assert.ok(!wrote, `${what}: ${describeAnswer(result)}`)
    }
    const afterwards = await callOk<Checksum>(`${master}/db/checksum`, { auth: admin })
    assert.deepEqual(afterwards, before, 'the master\'s data and LSN are unchanged')
    assert.equal(await jobCount(master), jobsBefore, 'no job of the reader was queued')
  })

  test('an endpoint spelled another way (percent-escapes, absolute form, a fragment) needs the same permission', async () => {
    const before = await countRows(master)
    assertAnswer(await call(`${master}/db/%65xecute`, { body: [["INSERT INTO t(v) VALUES ('escaped')"]] }), { status: 401, code: 'UNAUTHORIZED' }, 'POST /db/%65xecute, anonymous')
    assertAnswer(await call(`${master}/st%61tus`), { status: 401, code: 'UNAUTHORIZED' }, 'GET /st%61tus, anonymous')
    assertAnswer(await call(`${master}/db/b%61ckup`, { auth: withOnly(['status']).auth! }), { status: 403, code: 'FORBIDDEN' }, 'GET /db/b%61ckup by a user without backup')
    assertAnswer(await call(`${master}/j%6fbs`, { body: { name: 'neverRun', input: 4 } }), { status: 401, code: 'UNAUTHORIZED' }, 'POST /j%6fbs, anonymous')
    assertAnswer(await call(`${replica}/cluster/%70romote`, { method: 'POST' }), { status: 401, code: 'UNAUTHORIZED' }, 'POST /cluster/%70romote on the replica, anonymous')
    assert.equal(await rawRequest(master, `${master}/status`), 401, 'GET http://host/status (absolute form), anonymous')
    assert.equal(await rawRequest(master, '/status#x'), 401, 'GET /status#x, anonymous')
    // The same spellings reach the endpoint for a caller who may use it.
    assertAnswer(await call(`${master}/st%61tus`, { auth: admin }), ok, 'GET /st%61tus as admin')
    assert.equal(await countRows(master), before)
    assert.equal((await statusOf(replica)).role, 'replica', 'the replica was not promoted')
  })
})

describe('secure defaults', () => {
  /** Runs `tandem master` with `args` until it prints its ready line or exits. */
  const run = (args: string[]): Promise<{ exitCode: number | null; output: string; ready: boolean }> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [bin, 'master', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      let ready = false
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`tandem master ${args.join(' ')} neither started nor exited in 20 s:\n${output}`))
      }, 20_000)
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString()
        if (!ready && /tandem master ready/.test(output)) {
          ready = true
          child.kill('SIGKILL')
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        resolve({ exitCode: ready ? null : code, output, ready })
      })
    })

  test('a master told to listen on 0.0.0.0 without users and a cluster secret refuses to start, and says how to set them up', async () => {
    const data = join(dir, 'open-network')
    const result = await run(['--host', '0.0.0.0', '--data', data])
    assert.ok(!result.ready, 'it started')
    assert.notEqual(result.exitCode, 0)
    assert.match(result.output, /--auth/)
    assert.match(result.output, /--cluster-secret-file/)
    assert.ok(!existsSync(join(data, 'tandem.db')), 'it touched its data directory before refusing')
  })

  test('with --insecure it starts on 0.0.0.0, as it does with --auth and a cluster secret', async () => {
    const insecure = await NodeProcess.start({ role: 'master', dataDir: join(dir, 'insecure'), args: ['--host', '0.0.0.0', '--insecure'] })
    await insecure.kill()
    const secret = writeSecret(dir, 'defaults-secret', 'the defaults cluster secret, 32 bytes')
    const users = writeUsers(dir, 'defaults-users', [{ username: 'admin', password: adminPassword, perms: ['all'] }])
    const secured = await run(['--host', '0.0.0.0', '--data', join(dir, 'secured'), '--auth', users, '--cluster-secret-file', secret])
    assert.ok(secured.ready, secured.output)
  })

  test('--auth without --cluster-secret-file refuses to start, and says why', async () => {
    const users = writeUsers(dir, 'lonely-users', [{ username: 'admin', password: adminPassword, perms: ['all'] }])
    const result = await run(['--data', join(dir, 'auth-only'), '--auth', users])
    assert.ok(!result.ready, 'it started')
    assert.notEqual(result.exitCode, 0)
    assert.match(result.output, /--auth needs --cluster-secret-file/)
    assert.match(result.output, /prove/)
  })
})

describe('an open local cluster (no --auth, no secret)', () => {
  let cluster: Cluster
  let other: NodeProcess
  let master: string
  let replica: string
  // No credentials anywhere in this part: the open case needs none.
  const openStatus = (url: string) => callOk<{ role: string; epoch: number; node: { cluster_id: string } }>(`${url}/status`)
  const openCount = async (url: string) => (await callOk<{ results: { values: number[][] }[] }>(`${url}/db/query?q=${encodeURIComponent('SELECT COUNT(*) FROM t')}&level=none`)).results[0]!.values[0]![0]!

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    other = await NodeProcess.start({ role: 'master', dataDir: join(dir, 'other-open-master') })
    master = cluster.master.url
    replica = cluster.replicas[0]!.url
    await callOk(`${master}/db/execute`, { body: ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('open')"] })
    await callOk(`${other.url}/db/execute`, { body: ['CREATE TABLE elsewhere (id INTEGER PRIMARY KEY)'] })
    await convergedWith(undefined, [master, replica])
  })
  after(async () => {
    await cluster?.stop()
    await other?.kill()
  })

  test('told to follow the master of another cluster, the master and the replica refuse with CLUSTER_MISMATCH and keep their data', async () => {
    const before = await callOk<Checksum>(`${master}/db/checksum`)
    for (const url of [master, replica]) {
      const result = await call(`${url}/cluster/follow`, { body: { master: other.url } })
      assertAnswer(result, { status: 409, code: 'CLUSTER_MISMATCH' }, `follow on ${url}`)
    }
    assert.equal((await openStatus(master)).role, 'master')
    assert.notEqual((await openStatus(master)).node.cluster_id, (await openStatus(other.url)).node.cluster_id)
    const replication = (await callOk<{ replication: { master_url: string } }>(`${replica}/status`)).replication
    assert.equal(replication.master_url, master, 'the replica still follows its own master')
    assert.ok(!existsSync(join(cluster.master.spec.dataDir, 'node.json')), 'the master saved a change of role')
    const write = await callOk<{ lsn: number }>(`${master}/db/execute`, { body: [["INSERT INTO t(v) VALUES ('after the refusal')"]] })
    const now = await convergedWith(undefined, [master, replica], write.lsn)
    assert.equal(now.lsn, before.lsn + 1, 'exactly the one new write was added')
    assert.equal(await openCount(master), 2)
  })

  test('a browser page cannot use an open node: a foreign Host, a foreign Origin, a form POST to /cluster/fence, the WebSocket from a foreign Origin', async () => {
    const before = await callOk<Checksum>(`${master}/db/checksum`)
    // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1.
    const rebound = await call(`${master}/db/execute`, { body: "INSERT INTO t(v) VALUES ('rebound')", headers: { host: `evil.example:${cluster.master.port}`, 'content-type': 'text/plain' } })
    assertAnswer(rebound, { status: 403, code: 'FORBIDDEN' }, 'a text/plain write with a foreign Host')
    assert.match((rebound.body as { error: string }).error, /does not serve the host name/)
    const crossOrigin = await call(`${master}/db/execute`, { body: "INSERT INTO t(v) VALUES ('cross origin')", headers: { origin: 'http://evil.example', 'content-type': 'text/plain' } })
    assertAnswer(crossOrigin, { status: 403, code: 'FORBIDDEN' }, 'a text/plain write from a page of another origin')
    assert.match((crossOrigin.body as { error: string }).error, /pages of http:\/\/evil\.example/)
    // A sandboxed frame or a file:// page says `Origin: null`.
    const opaque = await call(`${master}/db/execute`, { body: "INSERT INTO t(v) VALUES ('opaque origin')", headers: { origin: 'null', 'content-type': 'text/plain' } })
    assertAnswer(opaque, { status: 403, code: 'FORBIDDEN' }, 'a text/plain write from a page with Origin: null')
    // <form enctype="text/plain"> can post {"epoch":88,"x":"="}: on an open node every caller is a node.
    for (const url of [master, replica]) {
      const form = await call(`${url}/cluster/fence`, { body: '{"epoch":88,"x":"="}', headers: { origin: 'http://evil.example', 'content-type': 'text/plain' } })
      assertAnswer(form, { status: 403, code: 'FORBIDDEN' }, `a form POST to /cluster/fence on ${url}`)
    }
    assert.equal(await upgradeStatus(master, { origin: 'http://evil.example' }), 403, 'the replication WebSocket from a page of another origin')
    assert.deepEqual(await callOk<Checksum>(`${master}/db/checksum`), before, 'the master\'s data')
    for (const url of [master, replica]) assert.equal((await openStatus(url)).epoch, 1, `the epoch of ${url}`)
    // The node's own pages (the dashboard) are of its origin, and may.
    assert.equal((await call(`${master}/db/execute`, { body: [["INSERT INTO t(v) VALUES ('same origin')"]], headers: { origin: master } })).status, 200)
  })

  test('everything else works as before, without credentials', async () => {
    const forwarded = await callOk<{ lsn: number }>(`${replica}/db/execute`, { body: [["INSERT INTO t(v) VALUES ('through the replica')"]] })
    await convergedWith(undefined, [master, replica], forwarded.lsn)
    const read = await callOk<{ results: { values: string[][] }[] }>(`${replica}/db/query?q=${encodeURIComponent('SELECT v FROM t ORDER BY id')}&level=none`)
    assert.deepEqual(read.results[0]!.values.map((r) => r[0]), ['open', 'after the refusal', 'same origin', 'through the replica'])
    for (const path of ['/status', '/nodes', '/readyz', '/db/backup', '/db/checksum', '/jobs', '/replication/snapshot']) {
      assert.equal((await call(`${master}${path}`)).status, 200, `GET ${path} on the master`)
    }
    assert.equal((await call(`${master}/jobs`, { body: { name: 'neverRun', input: 1 } })).status, 201, 'POST /jobs')
    const promoted = await call<{ epoch: number }>(`${replica}/cluster/promote`, { method: 'POST' })
    assert.equal(promoted.status, 200, describeAnswer(promoted))
    assert.equal(promoted.body.epoch, 2)
    await waitFor(async () => ((await openStatus(master)).role === 'replica' ? true : undefined), 20_000, () => 'the old master to follow the promoted replica')
  })
})
