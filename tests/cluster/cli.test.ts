import { createRequire } from 'node:module'
import { openConnection } from '../../src/storage/sqlite.ts'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { execute, get, rows } from '../harness/http.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

function tandem(args: string[], input?: string) {
  const result = spawnSync(process.execPath, [bin, ...args], { input, encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: tmpdir() } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('the tandem command', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
  })
  after(async () => {
    await cluster.stop()
  })

  test('every command has --help', () => {
    for (const command of [[], ['master'], ['replica'], ['demo'], ['status'], ['shell']]) {
      const result = tandem([...command, '--help'])
      assert.equal(result.status, 0, result.stderr)
      assert.match(result.stdout, /Usage: tandem/)
    }
    assert.match(tandem(['replica', '--help']).stdout, /--master <url>/)
  })

  test('--version prints the release of the package', () => {
    const result = tandem(['--version'])
    assert.equal(result.status, 0, result.stderr)
    assert.equal(result.stdout.trim(), (createRequire(import.meta.url)('../../package.json') as { version: string }).version)
  })

  test('a second node on a running node\'s data directory refuses to start, naming the holder; a node killed with SIGKILL leaves nothing in the way', async () => {
    const replica = cluster.replicas[0]!
    for (const [node, role] of [[cluster.master, 'master'], [replica, 'replica']] as const) {
      const args = [role, '--data', node.spec.dataDir, '--port', '0', ...(role === 'replica' ? ['--master', cluster.master.url] : [])]
      const result = tandem(args)
      assert.notEqual(result.status, 0, `a second ${role} started`)
      assert.match(result.stderr, new RegExp(`in use by process ${node.child!.pid} \\(a Tandem node\\)`), result.stderr)
    }
    // The running master still takes writes: the refused one touched nothing.
    assert.equal((await execute(cluster.master.url, ["CREATE TABLE IF NOT EXISTS locked (id INTEGER PRIMARY KEY)", 'INSERT INTO locked DEFAULT VALUES'])).status, 200)
    await replica.kill('SIGKILL')
    await replica.restart()
    await cluster.converged()
  })

  test('a bad flag is refused with a message', () => {
    const result = tandem(['master', '--data', join(cluster.dir, 'x'), '--port', 'abc'])
    assert.notEqual(result.status, 0)
    assert.match(result.stderr, /--port must be an integer/)
  })

  test('--http-workers takes a whole number from 1 to 64, and anything else is refused before the node starts', () => {
    for (const hostile of ['0', '65', '-1', 'abc', '2.5', '1e3', '']) {
      const dataDir = join(cluster.dir, `workers-${hostile}`)
      const result = tandem(['master', '--data', dataDir, '--port', '0', '--http-workers', hostile])
      assert.notEqual(result.status, 0, hostile)
      assert.match(result.stderr, /--http-workers must be an integer from 1 to 64/, hostile)
      assert.equal(existsSync(dataDir), false, `nothing was written for ${JSON.stringify(hostile)}`)
    }
  })

  test('--prefetch takes 0 to 1024 and --concurrency 1 to 1024; anything else is refused before the node starts', () => {
    const cases: [string, string, RegExp][] = [
      ['--prefetch', '-1', /--prefetch must be an integer from 0 to 1024/],
      ['--prefetch', '1025', /--prefetch must be an integer from 0 to 1024/],
      ['--prefetch', 'many', /--prefetch must be an integer from 0 to 1024/],
      ['--concurrency', '0', /--concurrency must be an integer from 1 to 1024/],
      ['--concurrency', '100000', /--concurrency must be an integer from 1 to 1024/],
    ]
    for (const [flag, hostile, message] of cases) {
      const dataDir = join(cluster.dir, `jobs-${flag}-${hostile}`)
      const result = tandem(['replica', '--data', dataDir, '--port', '0', '--master', cluster.master.url, flag, hostile])
      assert.notEqual(result.status, 0, `${flag} ${hostile}`)
      assert.match(result.stderr, message, `${flag} ${hostile}`)
      assert.equal(existsSync(dataDir), false, `nothing was written for ${flag} ${hostile}`)
    }
  })

  test('status prints the topology as a table', async () => {
    await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('x')"])
    await cluster.converged()
    const result = tandem(['status', cluster.replicas[0]!.url])
    assert.equal(result.status, 0, result.stderr)
    const lines = result.stdout.trim().split('\n')
    assert.match(lines[0]!, /node\s+role\s+url\s+epoch\/lsn\s+lag \(entries\)\s+lag \(ms\)\s+state/)
    assert.ok(lines.some((l) => l.includes(cluster.master.url) && /\bmaster\b/.test(l)))
    assert.ok(lines.some((l) => l.includes(cluster.replicas[0]!.url) && /streaming/.test(l)))
  })

  test('shell runs SQL, writes through a replica, and answers dot commands', () => {
    const script = [
      'CREATE TABLE shelf (id INTEGER PRIMARY KEY,',
      '  title TEXT);',
      "INSERT INTO shelf(title) VALUES ('Dune'), ('Emma');",
      '.tables',
      '.schema shelf',
      'SELECT id, title FROM shelf ORDER BY id;',
      'SELECT nope FROM shelf;',
      '.quit',
    ].join('\n')
    const result = tandem(['shell', cluster.master.url], `${script}\n`)
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stdout, /2 rows affected/)
    assert.match(result.stdout, /shelf\b/)
    assert.match(result.stdout, /CREATE TABLE shelf/)
    assert.match(result.stdout, /id\s+title\n[─ ]+\n1\s+Dune\n2\s+Emma\n\(2 rows\)/)
    assert.match(result.stdout, /error: no such column: nope/)
  })

  // Last: the load replaces what the tests above wrote.
  test('load sends a database file through a replica to the master, with a progress line, and both hold it', async () => {
    const file = join(cluster.dir, 'to-load.db')
    const db = openConnection(file)
    db.exec("CREATE TABLE loaded (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO loaded(v) VALUES ('one'), ('two')")
    db.close()
    const result = tandem(['load', cluster.replicas[0]!.url, file])
    assert.equal(result.status, 0, result.stderr)
    assert.match(result.stderr, /is a replica: loading on the master at/)
    assert.match(result.stderr, /sending .*to-load\.db: [\d.]+ MB of [\d.]+ MB \(100%\)/)
    assert.match(result.stdout, /^loaded .*to-load\.db \([\d.]+ MB\) into http:\/\/127\.0\.0\.1:\d+ at LSN \d+/)
    await cluster.converged()
    assert.deepEqual(await rows(cluster.replicas[0]!.url, 'SELECT v FROM loaded ORDER BY id'), [['one'], ['two']])
    const missing = tandem(['load', cluster.master.url, join(cluster.dir, 'no-such-file.db')])
    assert.notEqual(missing.status, 0)
    assert.match(missing.stderr, /cannot read .*no-such-file\.db/)
  })
})

async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000)
    const free = await Promise.all(
      Array.from({ length: count }, (_, i) => new Promise<boolean>((resolve) => {
        const server = createServer()
        server.once('error', () => resolve(false))
        server.listen(base + i, '127.0.0.1', () => server.close(() => resolve(true)))
      })),
    )
    if (free.every(Boolean)) return base
  }
  throw new Error('no free port range')
}

test('demo runs a master and two replicas, and Ctrl-C stops them all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-demo-'))
  const port = await freePortRange(3)
  const child = spawn(process.execPath, [bin, 'demo', '--dir', dir, '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    const output: string[] = []
    createInterface({ input: child.stdout }).on('line', (line) => output.push(line))
    await waitFor(() => (output.some((l) => l.includes('Press Ctrl-C')) ? true : undefined), 30_000, () => `demo to be ready:\n${output.join('\n')}`)
    const master = `http://127.0.0.1:${port}`
    const replica = `http://127.0.0.1:${port + 2}`
    await execute(master, ['CREATE TABLE hello (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO hello(v) VALUES ('world')"])
    assert.deepEqual(await waitFor(async () => (await rows(replica, 'SELECT v FROM hello').catch(() => undefined)), 10_000), [['world']])
    // The demo's nodes share a cluster secret kept with the data, readable by its owner only.
    assert.equal(statSync(join(dir, 'cluster-secret')).mode & 0o777, 0o600)
    const status = (await get<{ security: { cluster_secret: boolean } }>(`${master}/status`)).body
    assert.equal(status.security.cluster_secret, true)
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGINT')
    assert.equal(await exited, 0)
    await waitFor(async () => {
      try {
        await fetch(`${replica}/status`, { signal: AbortSignal.timeout(500) })
        return undefined
      } catch {
        return true
      }
    }, 10_000, () => 'the replicas to stop with the demo')
  } finally {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
})
