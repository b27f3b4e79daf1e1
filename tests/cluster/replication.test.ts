import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checksum, execute, get, query, rows } from '../harness/http.ts'

/**
 * The mixed workload of the convergence test: DDL, DML, non-determinism, triggers, cascades, FTS5,
 * BLOBs, and tables without a PRIMARY KEY (replicated by rowid), one of them written by a trigger
 * and emptied by a cascade.
 */
const schema = [
  'CREATE TABLE authors (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, token INTEGER DEFAULT (random()), joined TEXT DEFAULT CURRENT_TIMESTAMP)',
  'CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES authors(id) ON DELETE CASCADE, title TEXT, cover BLOB, updated_at TEXT)',
  'CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT, at TEXT)',
  `CREATE TRIGGER books_ai AFTER INSERT ON books BEGIN INSERT INTO audit(what, at) VALUES ('insert ' || new.title, datetime('now')); END`,
  `CREATE TRIGGER books_au AFTER UPDATE OF title ON books BEGIN UPDATE books SET updated_at = datetime('now') || ':' || random() WHERE id = new.id; END`,
  `CREATE TRIGGER authors_ad AFTER DELETE ON authors BEGIN DELETE FROM audit WHERE what LIKE 'gone%'; END`,
  `CREATE VIRTUAL TABLE books_fts USING fts5(title, content='books', content_rowid='id')`,
  `CREATE TRIGGER books_fts_ai AFTER INSERT ON books BEGIN INSERT INTO books_fts(rowid, title) VALUES (new.id, new.title); END`,
  `CREATE TRIGGER books_fts_ad AFTER DELETE ON books BEGIN INSERT INTO books_fts(books_fts, rowid, title) VALUES ('delete', old.id, old.title); END`,
  `CREATE TRIGGER books_fts_au AFTER UPDATE OF title ON books BEGIN INSERT INTO books_fts(books_fts, rowid, title) VALUES ('delete', old.id, old.title); INSERT INTO books_fts(rowid, title) VALUES (new.id, new.title); END`,
  'CREATE TABLE readings (book_id INTEGER REFERENCES books(id) ON DELETE CASCADE, reader TEXT, minutes INTEGER DEFAULT (abs(random() % 90)), at TEXT DEFAULT CURRENT_TIMESTAMP)',
  'CREATE TABLE log_lines (line TEXT, n)',
  `CREATE TRIGGER readings_ai AFTER INSERT ON readings BEGIN INSERT INTO log_lines(line, n) VALUES ('read ' || new.book_id, random()); END`,
]

async function mixedWorkload(url: string): Promise<void> {
  const ok = async (statements: unknown[], flags = '') => {
    const result = await execute(url, statements, flags)
    assert.equal(result.status, 200, JSON.stringify(result.body))
    for (const r of result.body.results) assert.equal(r.error, undefined, `${JSON.stringify(statements)} → ${r.error}`)
    return result.body
  }
  await ok(schema, 'transaction')
  await ok([
    ["INSERT INTO authors(name) VALUES (?)", 'Le Guin'],
    ["INSERT INTO authors(name) VALUES (:name)", { name: 'Lem' }],
    ["INSERT INTO books(author_id, title, cover) VALUES (1, 'The Dispossessed', randomblob(32))"],
    ["INSERT INTO books(author_id, title, cover) VALUES (?, ?, ?)", 1, 'The Lathe of Heaven', "x'deadbeef'"],
    ["INSERT INTO books(author_id, title, cover) VALUES (?, ?, ?)", 2, 'Solaris', [1, 2, 3, 255]],
    ["INSERT INTO audit(what, at) VALUES ('gone soon', datetime('now'))"],
  ])
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => ok([["INSERT INTO books(author_id, title, cover) VALUES (?, ?, randomblob(8))", 2, `Cyberiad ${i}`]])),
  )
  await ok([
    "UPDATE books SET title = 'The Dispossessed: An Ambiguous Utopia' WHERE id = 1",
    'ALTER TABLE books ADD COLUMN pages INTEGER DEFAULT 100',
    'UPDATE books SET pages = abs(random() % 500) WHERE author_id = 2',
    'CREATE INDEX books_by_author ON books(author_id)',
    'CREATE VIEW long_books AS SELECT title FROM books WHERE pages > 250',
  ])
  await ok([
    "INSERT INTO readings(book_id, reader) SELECT id, 'ann' FROM books",
    "INSERT INTO readings(book_id, reader) SELECT id, 'ann' FROM books WHERE id % 3 = 0",
    "INSERT INTO log_lines VALUES ('same', 1), ('same', 1), ('same', 1)",
  ])
  // Identical rows told apart only by rowid; updates and deletes by rowid leave gaps.
  await ok(["UPDATE log_lines SET n = random() WHERE rowid = (SELECT min(rowid) FROM log_lines WHERE line = 'same')", "DELETE FROM log_lines WHERE rowid % 4 = 1"])
  await ok(["UPDATE readings SET minutes = minutes + 1, reader = 'bea' WHERE rowid % 2 = 0", 'ALTER TABLE readings ADD COLUMN note TEXT', "UPDATE readings SET note = hex(randomblob(4)) WHERE reader = 'bea'"])
  await ok(['DELETE FROM authors WHERE id = 2'])
  await ok(["INSERT INTO authors(name) VALUES ('temporary')", "DELETE FROM authors WHERE name = 'temporary'"], 'transaction')
  await ok(['CREATE TABLE scratch (id INTEGER PRIMARY KEY)', 'INSERT INTO scratch VALUES (1)', 'DROP TABLE scratch'])
}

describe('replication', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 2, masterArgs: ['--log-retain-bytes', '1'] })
  })
  after(async () => {
    await cluster.stop()
  })

  test('a master and two replicas converge after a mixed workload', async () => {
    await mixedWorkload(cluster.master.url)
    const sum = await cluster.converged()
    assert.match(sum, /^[0-9a-f]{64}$/)
    const match = `SELECT rowid FROM books_fts WHERE books_fts MATCH 'dispossessed OR lathe' ORDER BY rowid`
    const expected = await rows(cluster.master.url, match)
    assert.equal(expected.length, 2)
    for (const replica of cluster.replicas) {
      assert.deepEqual(await rows(replica.url, match), expected)
      assert.deepEqual(await rows(replica.url, 'SELECT count(*) FROM books'), await rows(cluster.master.url, 'SELECT count(*) FROM books'))
      assert.deepEqual(await rows(replica.url, 'SELECT count(*) FROM books'), [[2]], 'the cascade ran once')
      assert.deepEqual(await rows(replica.url, 'SELECT seq FROM sqlite_sequence WHERE name = ?'.replace('?', "'authors'")), [[3]])
      assert.deepEqual(await rows(replica.url, `SELECT count(*) FROM audit WHERE what LIKE 'gone%'`), [[0]])
      const byRowid = 'SELECT rowid, * FROM readings ORDER BY rowid'
      assert.deepEqual(await rows(replica.url, byRowid), await rows(cluster.master.url, byRowid))
      assert.deepEqual(await rows(replica.url, 'SELECT count(*) FROM readings WHERE book_id NOT IN (SELECT id FROM books)'), [[0]], 'the cascade emptied readings of the deleted books')
    }
  })

  test('a write sent to a replica reaches the master, and min_lsn reads it back on the replica', async () => {
    const replica = cluster.replicas[0]!
    const written = await execute(replica.url, [["INSERT INTO authors(name) VALUES (?)", 'via replica']])
    assert.equal(written.status, 200, JSON.stringify(written.body))
    assert.ok(written.body.lsn > 0)
    assert.equal(written.headers.get('x-tandem-lsn'), String(written.body.lsn))
    assert.deepEqual(await rows(cluster.master.url, `SELECT count(*) FROM authors WHERE name = 'via replica'`), [[1]])
    const other = cluster.replicas[1]!
    const read = await query(other.url, `SELECT count(*) FROM authors WHERE name = 'via replica'`, `min_lsn=${written.body.lsn}`)
    assert.equal(read.status, 200)
    assert.deepEqual(read.body.results[0]?.values, [[1]])
    // The replica measured how long that entry took from the master's commit to visible there.
    const lag = await get<{ samples: number; p50Ms: number; maxMs: number }>(`${other.url}/replication/lag?since=0`)
    assert.equal(lag.status, 200)
    assert.ok(lag.body.samples >= 1 && lag.body.p50Ms >= 0 && lag.body.maxMs >= lag.body.p50Ms, JSON.stringify(lag.body))
    assert.equal((await get(`${cluster.master.url}/replication/lag`)).status, 400, 'the master applies nothing')
  })

  test('a replica behind the retained log bootstraps from a snapshot while the master keeps writing', async () => {
    const replica = cluster.replicas[1]!
    await replica.kill('SIGKILL')
    const behind = (await checksum(replica.url).catch(() => undefined)) === undefined
    assert.ok(behind, 'the replica is down')
    let lsn = 0
    for (let i = 0; i < 200; i++) lsn = (await execute(cluster.master.url, [["INSERT INTO authors(name) VALUES (?)", `burst ${i}`]])).body.lsn
    // The master retains 1 byte beyond its newest chunk: the replica's position is gone.
    await waitFor(async () => {
      const master = (await cluster.status(cluster.master.url))['master'] as { log_oldest_lsn: number }
      return master.log_oldest_lsn > lsn - 150 ? true : undefined
    }, 10_000, () => 'the master to truncate its log')
    let writing = true
    const background = (async () => {
      let n = 0
      while (writing) {
        await execute(cluster.master.url, [
          ["INSERT INTO authors(name) VALUES (?)", `during snapshot ${n++}`],
          ["INSERT INTO log_lines(line, n) VALUES (?, random())", `during snapshot ${n}`],
          'UPDATE log_lines SET n = n + 1 WHERE rowid = (SELECT max(rowid) - 1 FROM log_lines)',
        ])
      }
    })()
    await replica.restart()
    await waitFor(async () => {
      const status = (await cluster.status(replica.url))['replication'] as { snapshots_installed: number; state: string }
      return status.snapshots_installed >= 1 && status.state === 'streaming' ? true : undefined
    }, 20_000, () => `a snapshot install on the replica\n${cluster.logs()}`)
    writing = false
    await background
    await cluster.converged()
  })

  test('a replica started empty against a populated master catches up', async () => {
    const fresh = await cluster.addReplica()
    await cluster.converged()
    assert.deepEqual(await rows(fresh.url, `SELECT count(*) FROM authors WHERE name LIKE 'burst%'`), [[200]])
  })

  test('a conflict on a replica is divergence: it stops applying, says so, and resyncs from a snapshot', async () => {
    const replica = cluster.replicas[0]!
    await cluster.converged()
    // Change the replica's file behind its back.
    const file = new DatabaseSync(join(replica.spec.dataDir, 'tandem.db'), { timeout: 5000 })
    file.exec(`UPDATE authors SET name = 'tampered' WHERE id = 1`)
    file.close()
    const before = ((await cluster.status(replica.url))['replication'] as { snapshots_installed: number }).snapshots_installed
    await execute(cluster.master.url, ["UPDATE authors SET name = 'Ursula K. Le Guin' WHERE id = 1"])
    await waitFor(async () => {
      const status = (await cluster.status(replica.url))['replication'] as { snapshots_installed: number; last_problem: string | null }
      return status.snapshots_installed > before && /conflict/.test(status.last_problem ?? '') ? true : undefined
    }, 20_000, () => `the replica to detect divergence and resync\n${cluster.logs()}`)
    await cluster.converged()
    assert.deepEqual(await rows(replica.url, 'SELECT name FROM authors WHERE id = 1'), [['Ursula K. Le Guin']])
    // The database the snapshot replaced is kept aside, whole, for the operator.
    const replaced = readdirSync(join(replica.spec.dataDir, 'replaced')).filter((f) => f.endsWith('.db'))
    assert.equal(replaced.length, 1, `one replaced database kept: ${replaced.join(', ')}`)
    const kept = new DatabaseSync(join(replica.spec.dataDir, 'replaced', replaced[0]!), { readOnly: true })
    try {
      assert.deepEqual({ ...kept.prepare('SELECT name FROM authors WHERE id = 1').get() }, { name: 'tampered' })
    } finally {
      kept.close()
    }
  })

  test('every node reports the same checksum at the same position', async () => {
    const sums = await Promise.all([cluster.master, ...cluster.replicas].map((n) => checksum(n.url)))
    for (const sum of sums) {
      assert.equal(sum.lsn, sums[0]!.lsn)
      assert.equal(sum.checksum, sums[0]!.checksum)
      assert.ok('sqlite_sequence' in sum.tables)
    }
    const status = await get<{ replicas: { applied_lsn: number; lag_entries: number }[] }>(`${cluster.master.url}/status`)
    assert.equal(status.body.replicas.length, cluster.replicas.length)
    for (const r of status.body.replicas) assert.equal(r.lag_entries, 0)
  })

  test('a replica serves a backup of its own copy with noleader', async () => {
    const replica = cluster.replicas[0]!
    const response = await fetch(`${replica.url}/db/backup?noleader`, { signal: AbortSignal.timeout(30_000) })
    assert.equal(response.status, 200)
    const bytes = Buffer.from(await response.arrayBuffer())
    assert.equal(bytes.subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
    assert.equal(response.headers.get('x-tandem-lsn'), String((await checksum(replica.url)).lsn))
  })
})

// Apart from the cluster above, whose master keeps 1 byte of log: there a replica's entries are
// kept only while it is connected, and whether a killed replica could still catch up from the log
// depended on whether the master's retention pass (every second) ran before it came back.
describe('replication: catch-up from the log', () => {
  let cluster: Cluster
  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
  })
  after(async () => {
    await cluster.stop()
  })

  test('a replica killed with SIGKILL and restarted catches up without a snapshot', async () => {
    const replica = cluster.replicas[0]!
    await execute(cluster.master.url, ['CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT)'])
    await cluster.converged()
    await replica.kill('SIGKILL')
    for (let i = 0; i < 30; i++) await execute(cluster.master.url, [["INSERT INTO authors(name) VALUES (?)", `while down ${i}`]])
    await replica.restart()
    await cluster.converged()
    const status = await cluster.status(replica.url)
    assert.equal((status['replication'] as { snapshots_installed: number }).snapshots_installed, 0)
  })

  test('a replica catches up over many frames (the master encodes each into the same buffer)', async () => {
    const replica = cluster.replicas[0]!
    await replica.kill('SIGKILL')
    // 24 entries of 1 MB each: six 4 MB frames at least, each encoded once the one before it is written.
    await execute(cluster.master.url, ['CREATE TABLE IF NOT EXISTS bulk (id INTEGER PRIMARY KEY, body BLOB)'])
    for (let i = 0; i < 24; i++) await execute(cluster.master.url, [`INSERT INTO bulk(body) VALUES (randomblob(1048576))`])
    await replica.restart()
    await cluster.converged()
    const status = await cluster.status(replica.url)
    assert.equal((status['replication'] as { snapshots_installed: number }).snapshots_installed, 0)
    assert.deepEqual(await rows(replica.url, 'SELECT count(*), sum(length(body)) FROM bulk'), [[24, 24 * 1048576]])
  })
})
