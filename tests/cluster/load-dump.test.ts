/**
 * Bringing a database in and taking it out (issue 18, part 3), against real processes: POST
 * /db/load of a SQLite file replaces the master's database and every replica copies it; GET
 * /db/backup?fmt=sql writes SQL text that POST /db/load takes back on another cluster, to the
 * same checksums. Hostile or broken bodies are refused with a clear error and change nothing:
 * before, a file with a SQLite header and garbage after it marked the master's own database as
 * damaged, and it took no more writes.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { openConnection } from '../../src/storage/sqlite.ts'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call, checksum } from '../harness/http.ts'
import { NodeProcess } from '../harness/node-process.ts'

/** A database file with what real schemas hold: every feature the load must carry. */
function sourceDatabase(path: string, rows: number): void {
  rmSync(path, { force: true })
  const db = openConnection(path, { defensive: false })
  db.exec(`
    CREATE TABLE author (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, born REAL, photo BLOB, doubled AS (id * 2));
    CREATE TABLE book (isbn TEXT PRIMARY KEY, author_id INTEGER NOT NULL REFERENCES author(id), title TEXT) WITHOUT ROWID;
    CREATE TABLE tally (k INTEGER PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0) STRICT;
    CREATE INDEX book_by_author ON book(author_id);
    CREATE VIEW prolific AS SELECT author_id, count(*) AS books FROM book GROUP BY author_id;
    CREATE TRIGGER count_books AFTER INSERT ON book BEGIN INSERT INTO tally(k, n) VALUES (new.author_id, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1; END;
    CREATE VIRTUAL TABLE blurb USING fts5(body);
    CREATE TABLE visit (page TEXT, n INTEGER);
  `)
  db.exec('BEGIN')
  const author = db.prepare('INSERT INTO author(name, born, photo) VALUES (?, ?, ?)')
  const book = db.prepare('INSERT INTO book(isbn, author_id, title) VALUES (?, ?, ?)')
  for (let i = 1; i <= rows; i++) {
    author.run(`author ${i} ✓`, i + 0.1 + 1e-20 * i, Buffer.from([i % 256, 0, 255]))
    book.run(`isbn-${i}`, i, `title ${i}`)
  }
  db.prepare('INSERT INTO blurb(body) VALUES (?)').run('a story about replicas')
  // A table without a PRIMARY KEY, with gaps in its rowids: a load keeps them.
  db.exec(`INSERT INTO visit WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) SELECT '/page', i FROM c; DELETE FROM visit WHERE rowid % 3 = 0`)
  db.exec('COMMIT')
  db.close()
}

async function load(url: string, body: Uint8Array | string, contentType = 'application/octet-stream') {
  return call('POST', `${url}/db/load`, body, { contentType })
}

async function tablesOf(url: string): Promise<Record<string, string>> {
  return (await checksum(url)).tables
}

describe('load and dump', () => {
  let cluster: Cluster
  let other: Cluster
  let file: string

  before(async () => {
    cluster = await Cluster.start({ replicas: 2, masterArgs: ['--load-limit-bytes', '8MiB'] })
    // A small result limit: a dump is Tandem's own read, never cut short by it.
    other = await Cluster.start({ replicas: 1, masterArgs: ['--max-result-bytes', '64KiB'] })
    file = join(cluster.dir, 'source.db')
    sourceDatabase(file, 2000)
    const created = await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE before_load (id INTEGER PRIMARY KEY)', 'INSERT INTO before_load VALUES (1)'])
    assert.equal(created.status, 200, created.text)
  })
  after(async () => {
    await cluster?.stop()
    await other?.stop()
  })

  test('a SQLite file replaces the master\'s database, and both replicas copy it: equal checksums everywhere', async () => {
    const answer = await load(cluster.master.url, readFileSync(file))
    assert.equal(answer.status, 200, answer.text)
    assert.deepEqual(answer.json.results, [])
    await cluster.converged()
    const tables = await tablesOf(cluster.master.url)
    assert.equal(tables['before_load'], undefined, 'what the master held before is gone')
    for (const name of ['author', 'book', 'tally', 'sqlite_sequence', 'blurb_data']) assert.ok(tables[name] !== undefined, `${name} is loaded: ${Object.keys(tables).join(', ')}`)
    for (const replica of cluster.replicas) assert.deepEqual(await tablesOf(replica.url), tables, `${replica.url} holds the master's rows`)
    const rows = await call('POST', `${cluster.replicas[1]!.url}/db/query?level=none`, [
      'SELECT count(*), sum(doubled), max(born) FROM author',
      'SELECT books FROM prolific WHERE author_id = 7',
      "SELECT count(*) FROM blurb WHERE blurb MATCH 'replicas'",
      "SELECT seq FROM sqlite_sequence WHERE name = 'author'",
      'SELECT group_concat(rowid) FROM (SELECT rowid FROM visit WHERE rowid < 10 ORDER BY rowid)',
    ])
    assert.deepEqual(rows.json.results.map((r: { values: unknown[][] }) => r.values[0]), [[2000, 2000 * 2001, 2000.1], [1], [1], [2000], ['1,2,4,5,7,8']], rows.text)
    // The copy is a working database: its trigger fires, its keys count on.
    const write = await call('POST', `${cluster.master.url}/db/execute`, [["INSERT INTO author(name) VALUES ('after')"], ["INSERT INTO book VALUES ('isbn-new', 2001, 'new')"]])
    assert.equal(write.status, 200, write.text)
    assert.equal(write.json.results[0].last_insert_id, 2001)
    await cluster.converged()
  })

  test('GET /db/backup?fmt=sql writes SQL text that POST /db/load takes on another cluster, to the same rows', async () => {
    const dump = await call('GET', `${cluster.replicas[0]!.url}/db/backup?fmt=sql`)
    assert.equal(dump.status, 200, dump.text.slice(0, 200))
    assert.match(dump.headers.get('content-type') ?? '', /^text\/plain/)
    assert.match(dump.text, /^PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n/)
    assert.match(dump.text, /COMMIT;\n$/)
    assert.equal(dump.text.includes('_tandem'), false, "Tandem's own tables stay out of a dump")
    const answer = await load(other.master.url, dump.text, 'text/plain')
    assert.equal(answer.status, 200, answer.text)
    await other.converged()
    assert.deepEqual(await tablesOf(other.replicas[0]!.url), await tablesOf(cluster.master.url))
    const again = await call('GET', `${other.master.url}/db/backup?fmt=sql`)
    assert.ok(dump.text.length > 128 * 1024, `the dump (${dump.text.length} bytes) is larger than the other master's --max-result-bytes`)
    assert.equal(again.text, dump.text, 'the dump of the loaded copy is the dump it was loaded from, whole')
  })

  test('bodies that are not a loadable database are refused with a clear error; nothing changes and the master keeps taking writes', async () => {
    const before = await checksum(cluster.master.url)
    const header = Buffer.from('SQLite format 3\u0000', 'latin1')
    const whole = readFileSync(file)
    const pkless = join(cluster.dir, 'pkless.db')
    rmSync(pkless, { force: true })
    const db = openConnection(pkless)
    db.exec('CREATE TABLE loose (a, _rowid_); INSERT INTO loose VALUES (1, 2)')
    db.close()
    const orphan = join(cluster.dir, 'orphan.db')
    sourceDatabase(orphan, 3)
    const fk = openConnection(orphan, { foreignKeys: false })
    fk.exec("INSERT INTO book VALUES ('orphan', 999, 'no such author')")
    fk.close()
    // A file's schema is SQL like a client's: a trigger that would empty the log is refused.
    const hostile = join(cluster.dir, 'hostile.db')
    rmSync(hostile, { force: true })
    const evil = openConnection(hostile)
    evil.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); CREATE TRIGGER wipe AFTER INSERT ON t BEGIN DELETE FROM _tandem_log; END;')
    evil.close()
    const cases: [string, Uint8Array | string, string, number, string][] = [
      ['a trigger on Tandem\'s log', readFileSync(hostile), 'application/octet-stream', 400, 'SQL_REFUSED'],
      ['a SQLite header and garbage', Buffer.concat([header, Buffer.alloc(4096, 7)]), 'application/octet-stream', 400, 'BAD_REQUEST'],
      ['a file cut in half', whole.subarray(0, Math.floor(whole.length / 2)), 'application/octet-stream', 400, 'BAD_REQUEST'],
      ['bytes that are neither a database nor UTF-8', Buffer.from([0xff, 0xfe, 0x00, 0x81]), 'application/octet-stream', 400, 'BAD_REQUEST'],
      ['a table without a PRIMARY KEY whose column hides its rowid', readFileSync(pkless), 'application/octet-stream', 400, 'SCHEMA_REFUSED'],
      ['a foreign key that points nowhere', readFileSync(orphan), 'application/octet-stream', 400, 'BAD_REQUEST'],
      ['SQL text that attaches a file', "ATTACH DATABASE '/etc/passwd' AS p;", 'text/plain', 400, 'BAD_REQUEST'],
      ['SQL text that fails half way', 'CREATE TABLE half (id INTEGER PRIMARY KEY);\nINSERT INTO half VALUES (1);\nINSERT INTO nowhere VALUES (2);\n', 'text/plain', 400, 'BAD_REQUEST'],
      ['an empty body', '', 'text/plain', 400, 'BAD_REQUEST'],
      ['a body over --load-limit-bytes', Buffer.alloc(9 * 1024 * 1024, 1), 'application/octet-stream', 413, 'BODY_TOO_LARGE'],
    ]
    for (const [name, body, contentType, status, code] of cases) {
      const answer = await load(cluster.master.url, body, contentType)
      assert.equal(answer.status, status, `${name}: ${answer.text.slice(0, 300)}`)
      assert.equal(answer.json?.code, code, `${name}: ${answer.text.slice(0, 300)}`)
      assert.ok(String(answer.json.error).length > 20, `${name}: the error says what is wrong: ${answer.text}`)
    }
    assert.deepEqual((await checksum(cluster.master.url)).checksum, before.checksum, 'nothing of a refused load was applied')
    assert.equal((await call('GET', `${cluster.master.url}/readyz`)).status, 200, 'the master is still ready')
    const write = await call('POST', `${cluster.master.url}/db/execute`, [["INSERT INTO author(name) VALUES ('still writable')"]])
    assert.equal(write.status, 200, write.text)
    await cluster.converged()
  })

  test('a second load while one is under way is refused (503 OVERLOADED), and the first goes on', async () => {
    const whole = readFileSync(file)
    let finish: () => void = () => undefined
    const held = new Promise<void>((resolve) => (finish = resolve))
    const slow = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(whole.subarray(0, 4096))
        await held
        controller.enqueue(whole.subarray(4096))
        controller.close()
      },
    })
    const first = fetch(`${cluster.master.url}/db/load`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: slow, duplex: 'half' } as RequestInit)
    try {
      const second = await waitFor(async () => {
        const answer = await load(cluster.master.url, whole)
        return answer.status === 503 ? answer : undefined
      }, 10_000, () => 'the second load to be refused while the first is received')
      assert.equal(second.json.code, 'OVERLOADED', second.text)
      assert.match(second.json.error, /another load is under way/)
    } finally {
      finish()
    }
    const answer = await first
    assert.equal(answer.status, 200, await answer.text())
    await cluster.converged()
  })

  test('a replica does not take a load: it names the master (421 NOT_MASTER)', async () => {
    const answer = await load(cluster.replicas[0]!.url, readFileSync(file))
    assert.equal(answer.status, 421, answer.text)
    assert.equal(answer.json.code, 'NOT_MASTER')
    assert.equal(answer.json.details.masterUrl, cluster.master.url)
    await waitFor(async () => ((await tablesOf(cluster.replicas[0]!.url))['author'] !== undefined ? true : undefined), 5000, () => 'the replica still holds its rows')
  })

  test('a master started on a database it did not create refuses to start, naming --import; with --import a new master loads it and its replica copies it', async () => {
    const dir = join(cluster.dir, 'foreign')
    mkdirSync(dir, { recursive: true })
    copyFileSync(file, join(dir, 'tandem.db'))
    await assert.rejects(NodeProcess.start({ role: 'master', dataDir: dir }), (error: Error) => {
      assert.match(error.message, /tables Tandem did not create \(author, book, tally/)
      assert.match(error.message, /--import/)
      return true
    })
    const imported = await NodeProcess.start({ role: 'master', dataDir: join(cluster.dir, 'imported'), args: ['--import', file] })
    try {
      const replica = await NodeProcess.start({ role: 'replica', dataDir: join(cluster.dir, 'imported-replica'), masterUrl: imported.url })
      try {
        await waitFor(async () => ((await checksum(replica.url)).lsn === (await checksum(imported.url)).lsn ? true : undefined), 20_000, () => 'the replica to copy the import')
        const got = await tablesOf(replica.url)
        for (const name of ['book', 'tally', 'blurb_data']) assert.ok(got[name] !== undefined, `${name} reached the replica`)
        assert.equal((await checksum(replica.url)).checksum, (await checksum(imported.url)).checksum)
      } finally {
        await replica.kill()
      }
      // The same command line again (a restart): the master keeps what it holds.
      const write = await call('POST', `${imported.url}/db/execute`, [["INSERT INTO author(name) VALUES ('kept')"]])
      assert.equal(write.status, 200, write.text)
      await imported.restart()
      const kept = await call('POST', `${imported.url}/db/query`, ["SELECT count(*) FROM author WHERE name = 'kept'"])
      assert.deepEqual(kept.json.results[0].values, [[1]], 'a restart with --import left the data as it was')
      assert.ok(imported.log.some((line) => line.includes('--import ignored')), 'and said why')
    } finally {
      await imported.kill()
    }
  })

  test('no file of a load is left beside the database', () => {
    // The body is kept while it loads, then removed, whatever the outcome.
    const names = readdirSync(join(cluster.dir, 'master'))
    assert.ok(names.includes('tandem.db'), names.join(', '))
    assert.deepEqual(names.filter((name) => name.startsWith('load-')), [])
  })
})
