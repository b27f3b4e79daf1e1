/**
 * The client side of --auth and TLS against real processes: `connect()` and `tandem status` as
 * users of the nodes' --auth file (one of them with a password hashed by `tandem hash-password`),
 * refusals that fail at once with the node's message, and a client of an https cluster with
 * mutual TLS that presents the cluster CA's certificate.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect, isTandemClientError, type ConnectOptions, type JobEvent, type TandemClient } from '../../src/client/index.ts'
import { makeCertificates } from '../harness/certificates.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))
const handlers = fileURLToPath(new URL('../../examples/handlers.js', import.meta.url))

/** Runs `tandem …` with no TANDEM_* variables but those given. */
function tandem(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('TANDEM_')))
  const result = spawnSync(process.execPath, [bin, ...args], { input: options.input, encoding: 'utf8', timeout: 30_000, env: { ...env, HOME: tmpdir(), ...options.env } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const dir = mkdtempSync(join(tmpdir(), 'tandem-client-auth-'))
const secretFile = join(dir, 'cluster-secret')
writeFileSync(secretFile, 'a test secret of more than sixteen bytes\n')

const admin = { username: 'admin', password: 'admin pw: hashed' }
const reader = { username: 'reader', password: 'reader-pw' }
const worker = { username: 'worker', password: 'worker-pw' }
/** May query, but not learn the topology. */
const blind = { username: 'blind', password: 'blind-pw' }

/** The users file; admin's password is stored as `tandem hash-password` printed it. */
function writeUsers(): string {
  const hashed = tandem(['hash-password'], { input: `${admin.password}\n` })
  assert.equal(hashed.status, 0, hashed.stderr)
  assert.match(hashed.stdout, /^scrypt\$\d+\$\d+\$\d+\$\S+\$\S+\n$/)
  const file = join(dir, 'users.json')
  writeFileSync(
    file,
    JSON.stringify([
      { username: admin.username, password: hashed.stdout.trim(), perms: ['all'] },
      { username: reader.username, password: reader.password, perms: ['query', 'status'] },
      { username: worker.username, password: worker.password, perms: ['jobs', 'status'] },
      { username: blind.username, password: blind.password, perms: ['query'] },
    ]),
  )
  return file
}

after(() => rmSync(dir, { recursive: true, force: true }))

describe('clients of a cluster with --auth and a cluster secret', () => {
  let cluster: Cluster
  const clients: TandemClient[] = []
  const open = async (options: ConnectOptions, urls = [cluster.master.url, cluster.replicas[0]!.url]) => {
    const client = await connect(urls, { timeoutMs: 15_000, ...options })
    clients.push(client)
    return client
  }

  before(async () => {
    const security = ['--auth', writeUsers(), '--cluster-secret-file', secretFile]
    cluster = await Cluster.start({ replicas: 1, masterArgs: security, replicaArgs: [...security, '--jobs', handlers] })
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster?.stop()
  })

  test('with the right credentials a client writes on the master and reads its write through the replica', async () => {
    const db = await open({ auth: admin })
    await db.execute('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)')
    const { lsn } = await db.execute('INSERT INTO notes(body) VALUES (?)', ['signed'])
    const rows = await db.query<{ body: string }>('SELECT body FROM notes', [], { node: cluster.replicas[0]!.url })
    assert.deepEqual(rows.map((r) => r.body), ['signed'])
    assert.equal(rows.node, cluster.replicas[0]!.url)
    assert.ok(rows.lsn >= lsn, 'the replica answered at or after the write (session consistency)')
  })

  test('credentials in a URL are taken as auth and never shown in the topology', async () => {
    const url = cluster.master.url.replace('//', `//${reader.username}:${encodeURIComponent(reader.password)}@`)
    const db = await open({}, [url])
    await waitFor(async () => ((await db.refresh()).replicas.length > 0 ? true : undefined), 10_000, () => 'the master lists its replica')
    assert.ok((await db.query('SELECT count(*) AS n FROM sqlite_schema')).length === 1)
    const view = JSON.stringify(db.topology())
    assert.ok(!view.includes(reader.password) && !view.includes(`${reader.username}@`), view)
  })

  test('a wrong password fails connect() with UNAUTHORIZED and the node\'s message, without retrying', async () => {
    const started = performance.now()
    await assert.rejects(open({ auth: { username: admin.username, password: 'not it' } }), (error) => {
      assert.ok(isTandemClientError(error, 'UNAUTHORIZED'), String(error))
      assert.match(error.message, /wrong user name or password for "admin"/)
      return true
    })
    // 16 attempts with backoff would take seconds; one round of discovery takes milliseconds.
    assert.ok(performance.now() - started < 5_000, `took ${Math.round(performance.now() - started)} ms`)
    await assert.rejects(open({}), (error) => isTandemClientError(error, 'UNAUTHORIZED') && /status permission/.test(error.message))
  })

  test('a user without the status permission is told that discovery needs it', async () => {
    await assert.rejects(open({ auth: blind }), (error) => isTandemClientError(error, 'FORBIDDEN') && /lacks the status permission/.test(error.message) && /give this user status/.test(error.message))
  })

  test('a query-only user reads, and gets FORBIDDEN for a write, at once', async () => {
    const db = await open({ auth: reader })
    assert.equal((await db.query<{ n: number }>('SELECT count(*) AS n FROM notes'))[0]!.n, 1)
    await assert.rejects(db.execute('INSERT INTO notes(body) VALUES (?)', ['nope']), (error) => isTandemClientError(error, 'FORBIDDEN') && error.status === 403 && /lacks the execute permission/.test(error.message))
    await assert.rejects(db.jobs.submit('wordCount', 'a b'), (error) => isTandemClientError(error, 'FORBIDDEN') && /jobs permission/.test(error.message))
  })

  test('a user with the jobs permission submits a job, waits for it and follows its event stream', async () => {
    const db = await open({ auth: worker })
    const handle = await db.jobs.submit('wordCount', 'one two three')
    // The stream is opened with the same credentials: a refused one ends in an 'error' event.
    const finished = new Promise<JobEvent>((resolve, reject) => {
      handle.on('job', (event) => event.state === 'completed' && resolve(event))
      handle.on('error', reject)
    })
    const job = await handle.wait()
    assert.equal(job.state, 'completed')
    assert.deepEqual(job.results, [3])
    assert.equal((await finished).state, 'completed')
  })

  test('tandem status prints the table for a user, and exits 1 with the node\'s message without one', () => {
    const replica = cluster.replicas[0]!.url
    for (const run of [
      tandem(['status', replica, '--user', `${admin.username}:${admin.password}`]),
      tandem(['status', replica, '--user', reader.username], { env: { TANDEM_PASSWORD: reader.password } }),
      tandem(['status', replica], { env: { TANDEM_USER: `${reader.username}:${reader.password}` } }),
      tandem(['status', replica.replace('//', `//${reader.username}:${reader.password}@`)]),
    ]) {
      assert.equal(run.status, 0, run.stderr)
      assert.match(run.stdout, /node\s+role\s+url/)
      assert.ok(run.stdout.split('\n').some((l) => l.includes(cluster.master.url) && /\bmaster\b/.test(l)), run.stdout)
      assert.ok(!run.stdout.includes(reader.password) && !run.stdout.includes(admin.password), 'no password is printed')
    }
    const anonymous = tandem(['status', replica])
    assert.equal(anonymous.status, 1)
    assert.match(anonymous.stderr, /^error \(UNAUTHORIZED\): .*needs the status permission/m)
    assert.doesNotMatch(anonymous.stderr, /\n\s+at /, 'no stack trace')
    const wrong = tandem(['status', replica, '--user', 'reader:wrong'])
    assert.equal(wrong.status, 1)
    assert.match(wrong.stderr, /wrong user name or password for "reader"/)
    const noPassword = tandem(['status', replica, '--user', 'reader'])
    assert.equal(noPassword.status, 1)
    assert.match(noPassword.stderr, /set TANDEM_PASSWORD/)
  })

  test('tandem jobs and promote print a refusal with its code and exit 1', () => {
    const jobs = tandem(['jobs', 'list', cluster.master.url, '--user', `${reader.username}:${reader.password}`])
    assert.equal(jobs.status, 1)
    assert.match(jobs.stderr, /^error \(FORBIDDEN\): user reader lacks the jobs permission/m)
    assert.equal(tandem(['jobs', 'list', cluster.master.url, '--user', `${worker.username}:${worker.password}`]).status, 0)
    const promote = tandem(['promote', cluster.replicas[0]!.url, '--user', `${reader.username}:${reader.password}`])
    assert.equal(promote.status, 1)
    assert.match(promote.stderr, /^error \(FORBIDDEN\): user reader lacks the cluster permission/m)
  })
})

describe('a client of an https cluster with mutual TLS', () => {
  let cluster: Cluster
  const certificates = makeCertificates(dir, 'cluster')
  const pem = (file: string) => readFileSync(file)

  before(async () => {
    const tls = ['--tls-cert', certificates.cert, '--tls-key', certificates.key, '--tls-ca', certificates.ca, '--tls-client-auth', '--cluster-secret-file', secretFile]
    cluster = await Cluster.start({ replicas: 1, masterArgs: tls, replicaArgs: tls })
  })

  after(async () => {
    await cluster?.stop()
  })

  test('connect() with the CA and a client certificate writes and reads; without the CA it reaches no node', async () => {
    assert.match(cluster.master.url, /^https:/)
    const db = await connect([cluster.master.url], { timeoutMs: 15_000, tls: { ca: pem(certificates.ca), cert: pem(certificates.cert), key: pem(certificates.key) } })
    try {
      await db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)')
      await db.execute('INSERT INTO t(v) VALUES (?)', ['over tls'])
      const rows = await db.query<{ v: string }>('SELECT v FROM t', [], { node: cluster.replicas[0]!.url })
      assert.deepEqual(rows.map((r) => r.v), ['over tls'])
    } finally {
      await db.close()
    }
    await assert.rejects(connect([cluster.master.url], { timeoutMs: 3_000 }), (error) => isTandemClientError(error, 'UNAVAILABLE'))
  })

  test('tandem status takes --ca, --cert and --key, or TANDEM_CA, TANDEM_CERT and TANDEM_KEY', () => {
    const withFlags = tandem(['status', cluster.master.url, '--ca', certificates.ca, '--cert', certificates.cert, '--key', certificates.key])
    assert.equal(withFlags.status, 0, withFlags.stderr)
    assert.ok(withFlags.stdout.split('\n').some((l) => l.includes(cluster.replicas[0]!.url) && /streaming/.test(l)), withFlags.stdout)
    const withEnv = tandem(['status', cluster.master.url], { env: { TANDEM_CA: certificates.ca, TANDEM_CERT: certificates.cert, TANDEM_KEY: certificates.key } })
    assert.equal(withEnv.status, 0, withEnv.stderr)
    const withoutCertificate = tandem(['status', cluster.master.url, '--ca', certificates.ca])
    assert.equal(withoutCertificate.status, 1)
    assert.match(withoutCertificate.stderr, /^error \(UNAVAILABLE\)/m)
  })
})
