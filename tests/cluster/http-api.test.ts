/**
 * The HTTP API against real processes: a master (with a 1 KiB body limit) and two replicas.
 * Bad input gets a clear error and changes nothing; good input gets rqlite's shapes; replicas
 * forward, redirect and serve bounded-staleness reads; a replica whose master is gone says so.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- response bodies are read as untyped JSON on purpose */
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { DatabaseSync } from '@photostructure/sqlite'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call, checksum, type Reply } from '../harness/http.ts'

const packageVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

const post = (url: string, body: unknown, contentType?: string) => call('POST', url, body, contentType === undefined ? {} : { contentType })
const get = (url: string) => call('GET', url)
const q = (sql: string) => `q=${encodeURIComponent(sql)}`

/** A Tandem error reply: the catalogue's status, its code in body and header, a message a person can act on. */
function assertError(reply: Reply, status: number, code: string, message?: RegExp): void {
  const context = `HTTP ${reply.status} ${reply.text}`
  assert.equal(reply.status, status, context)
  assert.equal(reply.json?.code, code, context)
  assert.equal(reply.headers.get('x-tandem-error'), code, context)
  assert.match(reply.headers.get('content-type') ?? '', /^application\/json/, context)
  assert.deepEqual(reply.json.results, [], `rqlite clients need results even in an error: ${context}`)
  assert.equal(typeof reply.json.error, 'string', context)
  assert.ok(reply.json.error.length > 10, `the message says what happened: ${context}`)
  if (message !== undefined) assert.match(reply.json.error, message, context)
}

/** The 200 body of a request whose statements all succeeded. */
function assertOk(reply: Reply): any {
  assert.equal(reply.status, 200, reply.text)
  for (const result of reply.json.results) assert.equal(result.error, undefined, reply.text)
  return reply.json
}

describe('the HTTP API', () => {
  let cluster: Cluster
  let master: string
  let replica: string

  /** Rows of one query on the master. */
  const rowsOnMaster = async (sql: string): Promise<unknown[][]> => {
    const body = assertOk(await get(`${master}/db/query?${q(sql)}`))
    return body.results[0].values ?? []
  }

  /** Runs `fn`, then checks that no table of the master changed and no entry was written. */
  const assertChangesNothing = async (fn: () => Promise<void>): Promise<void> => {
    const before = await checksum(master)
    await fn()
    const after = await checksum(master)
    assert.equal(after.lsn, before.lsn, 'no log entry was written')
    assert.equal(after.checksum, before.checksum, 'no table changed')
    assert.deepEqual(await rowsOnMaster('SELECT count(*) FROM people'), [[2]])
  }

  before(async () => {
    cluster = await Cluster.start({ replicas: 2, masterArgs: ['--body-limit-bytes', '1024'] })
    master = cluster.master.url
    replica = cluster.replicas[0]!.url
    assertOk(
      await post(`${master}/db/execute?transaction`, [
        'CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, photo BLOB)',
        ['INSERT INTO people(id, name, age) VALUES (?, ?, ?)', 1, 'fiona', 20],
        ['INSERT INTO people(id, name, age) VALUES (:id, :name, :age)', { id: 2, name: 'declan', age: 30 }],
      ]),
    )
    await cluster.converged()
  })

  after(async () => {
    await cluster?.stop()
  })

  describe('bad input gets a clear error and changes nothing', () => {
    test('malformed JSON is a 400 BAD_REQUEST on every endpoint, on the master and through a replica', async () => {
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          for (const path of ['/db/execute', '/db/query', '/db/request']) {
            assertError(await post(`${node}${path}`, '["INSERT INTO people(name) VALUES (1)"'), 400, 'BAD_REQUEST', /invalid JSON body/)
            assertError(await post(`${node}${path}`, '{bad'), 400, 'BAD_REQUEST', /invalid JSON body/)
            assertError(await post(`${node}${path}`, ''), 400, 'BAD_REQUEST', /invalid JSON body/)
          }
        }
      })
    })

    test('a body that is not an array of statements is a 400 that shows the expected shape', async () => {
      await assertChangesNothing(async () => {
        for (const body of [{ sql: 'INSERT INTO people(name) VALUES (1)' }, '"INSERT INTO people(name) VALUES (1)"', [1], [[]], [[1, 'x']], [true]]) {
          assertError(await post(`${master}/db/execute`, typeof body === 'string' ? body : JSON.stringify(body)), 400, 'BAD_REQUEST', /invalid request/)
        }
        assertError(await post(`${replica}/db/execute`, { sql: 'x' }), 400, 'BAD_REQUEST', /must be a JSON array/)
      })
    })

    test('an empty array is a 400 "no statements"', async () => {
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          for (const path of ['/db/execute', '/db/query', '/db/request']) {
            assertError(await post(`${node}${path}`, []), 400, 'BAD_REQUEST', /no statements/)
          }
        }
        assertError(await post(`${master}/db/execute`, ['', '  ']), 400, 'BAD_REQUEST', /no statements/)
      })
    })

    test('invalid query parameter values are a 400 that names the parameter', async () => {
      const write = [['INSERT INTO people(name) VALUES (?)', 'never']]
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          assertError(await get(`${node}/db/query?level=bogus&${q('SELECT 1')}`), 400, 'BAD_REQUEST', /level/)
          assertError(await get(`${node}/db/query?freshness=abc&${q('SELECT 1')}`), 400, 'BAD_REQUEST', /freshness is not a valid duration/)
          assertError(await get(`${node}/db/query?min_lsn=-1&${q('SELECT 1')}`), 400, 'BAD_REQUEST', /min_lsn/)
          assertError(await get(`${node}/db/query?min_lsn=1&min_lsn_timeout=soon&${q('SELECT 1')}`), 400, 'BAD_REQUEST', /min_lsn_timeout/)
          assertError(await get(`${node}/db/query?freshness_strict&${q('SELECT 1')}`), 400, 'BAD_REQUEST', /freshness_strict requires freshness/)
          assertError(await get(`${node}/db/query?q=`), 400, 'BAD_REQUEST', /q is empty/)
          // The parameters are checked before the body, and before a replica forwards a write.
          assertError(await post(`${node}/db/execute?level=bogus`, write), 400, 'BAD_REQUEST', /level/)
          assertError(await post(`${node}/db/execute?timeout=forever`, write), 400, 'BAD_REQUEST', /timeout/)
          assertError(await post(`${node}/db/request?min_lsn=abc`, write), 400, 'BAD_REQUEST', /min_lsn/)
        }
      })
    })

    test('a parameter of an unsupported type is a 400 that names the statement and the parameter', async () => {
      await assertChangesNothing(async () => {
        const badStatements = [
          JSON.stringify(['INSERT INTO people(name) VALUES (?)', { nested: { object: 1 } }]),
          JSON.stringify(['INSERT INTO people(name) VALUES (?)', [1, { b: 1 }]]),
          JSON.stringify(['INSERT INTO people(name, photo) VALUES (?, ?)', 'x', [1, 256]]),
          JSON.stringify(['INSERT INTO people(name, photo) VALUES (?, ?)', 'x', [1.5]]),
          '["INSERT INTO people(name, age) VALUES (?, ?)", "x", 1e400]',
        ]
        for (const node of [master, replica]) {
          for (const bad of badStatements) {
            // A valid statement first: the whole request is refused, not just the bad statement.
            const body = `["INSERT INTO people(name) VALUES ('first')", ${bad}]`
            assertError(await post(`${node}/db/execute`, body), 400, 'BAD_REQUEST', /parameter 2 of statement 1|statement 1/)
          }
        }
      })
    })

    test('an SQL error in the middle of a transaction is reported per statement with 200, and nothing of it is applied', async () => {
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          for (const path of ['/db/execute', '/db/request']) {
            const reply = await post(`${node}${path}?transaction`, [
              ['INSERT INTO people(name) VALUES (?)', 'rolled back'],
              "UPDATE people SET age = 99 WHERE name = 'fiona'",
              'INSERT INTO nowhere VALUES (1)',
              ['INSERT INTO people(name) VALUES (?)', 'never run'],
            ])
            assert.equal(reply.status, 200, reply.text)
            // rqlite's shape: results up to and including the failing statement, nothing after it.
            assert.equal(reply.json.results.length, 3, reply.text)
            assert.equal(reply.json.results[0].rows_affected, 1)
            assert.equal(reply.json.results[1].rows_affected, 1)
            assert.deepEqual(reply.json.results[2], { error: 'no such table: nowhere' })
            // A constraint failure inside the transaction is rolled back the same way.
            const duplicate = await post(`${node}${path}?transaction`, [
              ['INSERT INTO people(name) VALUES (?)', 'rolled back'],
              ['INSERT INTO people(id, name) VALUES (?, ?)', 1, 'duplicate'],
            ])
            assert.equal(duplicate.status, 200, duplicate.text)
            assert.deepEqual(duplicate.json.results[1], { error: 'UNIQUE constraint failed: people.id' })
          }
        }
      })
      assert.deepEqual(await rowsOnMaster("SELECT age FROM people WHERE name = 'fiona'"), [[20]])
    })

    test('a body over the size limit is a 413 BODY_TOO_LARGE, on the master and through a replica', async () => {
      const big = [['INSERT INTO people(name) VALUES (?)', 'x'.repeat(2000)]]
      await assertChangesNothing(async () => {
        assertError(await post(`${master}/db/execute`, big), 413, 'BODY_TOO_LARGE', /1024 bytes/)
        assertError(await post(`${master}/db/request`, big), 413, 'BODY_TOO_LARGE')
        assertError(await post(`${master}/db/query`, [['SELECT ?', 'x'.repeat(2000)]]), 413, 'BODY_TOO_LARGE')
        // The replica forwards the write; the master's limit refuses it and the refusal comes back.
        assertError(await post(`${replica}/db/execute`, big), 413, 'BODY_TOO_LARGE', /1024 bytes/)
      })
      // Just under the limit is fine.
      const fits = assertOk(await post(`${master}/db/query`, [['SELECT length(?)', 'x'.repeat(900)]]))
      assert.deepEqual(fits.results[0].values, [[900]])
    })

    test('a write sent to /db/query is refused per statement, on a replica and on the master, at every level', async () => {
      await assertChangesNothing(async () => {
        for (const [node, level] of [[replica, 'none'], [master, 'none'], [master, 'weak'], [replica, 'weak'], [replica, 'strong']] as const) {
          const reply = await post(`${node}/db/query?level=${level}`, [
            ['INSERT INTO people(name) VALUES (?)', 'via query'],
            "DELETE FROM people WHERE name = 'fiona'",
            'SELECT count(*) FROM people',
          ])
          assert.equal(reply.status, 200, `${node} level=${level}: ${reply.text}`)
          assert.deepEqual(reply.json.results[0], { error: 'attempt to change database via query operation' })
          assert.deepEqual(reply.json.results[1], { error: 'attempt to change database via query operation' })
          assert.deepEqual(reply.json.results[2].values, [[2]], 'a query after the refused write still runs')
          const viaGet = await get(`${node}/db/query?level=${level}&${q("UPDATE people SET age = 1 WHERE name = 'fiona'")}`)
          assert.deepEqual(viaGet.json.results, [{ error: 'attempt to change database via query operation' }], viaGet.text)
        }
      })
    })

    test('ATTACH, VACUUM, load_extension and unsafe PRAGMAs are refused with 400 SQL_REFUSED on every endpoint', async () => {
      const refused = [
        ["ATTACH DATABASE '/tmp/tandem-attack.db' AS other", /ATTACH/],
        ["VACUUM INTO '/tmp/tandem-copy.db'", /VACUUM/],
        ['VACUUM', /VACUUM/],
        ["SELECT load_extension('/tmp/libevil.so')", /load_extension/],
        ['PRAGMA writable_schema=1', /writable_schema/],
        ['PRAGMA journal_mode=DELETE', /journal_mode/],
        ['PRAGMA foreign_keys=ON', /foreign_keys/],
        ['BEGIN', /transaction/],
      ] as const
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          for (const path of ['/db/execute', '/db/query', '/db/request']) {
            for (const [sql, message] of refused) {
              assertError(await post(`${node}${path}`, [sql]), 400, 'SQL_REFUSED', message)
              // After a good statement, the refusal still takes the whole request: the insert is not applied.
              assertError(await post(`${node}${path}`, [['INSERT INTO people(name) VALUES (?)', 'before refusal'], sql]), 400, 'SQL_REFUSED', message)
            }
          }
          assertError(await get(`${node}/db/query?level=none&${q("ATTACH DATABASE '/tmp/x.db' AS x")}`), 400, 'SQL_REFUSED', /ATTACH/)
          assertError(await post(`${node}/db/execute?transaction`, ['PRAGMA writable_schema=1']), 400, 'SQL_REFUSED')
        }
      })
      // Read-only PRAGMAs still work.
      const pragma = assertOk(await post(`${master}/db/query`, ['PRAGMA journal_mode', 'PRAGMA table_info(people)']))
      assert.deepEqual(pragma.results[0].values, [['wal']])
      assert.equal(pragma.results[1].values.length, 4)
    })

    test('a wrong HTTP method is a 405 that says which methods are allowed', async () => {
      const cases = [
        ['GET', '/db/execute', 'POST'],
        ['PUT', '/db/execute', 'POST'],
        ['DELETE', '/db/query', 'GET, POST'],
        ['PATCH', '/db/query', 'GET, POST'],
        ['GET', '/db/request', 'POST'],
        ['POST', '/status', 'GET'],
        ['POST', '/nodes', 'GET'],
        ['DELETE', '/readyz', 'GET'],
        ['POST', '/db/backup', 'GET'],
      ] as const
      await assertChangesNothing(async () => {
        for (const node of [master, replica]) {
          for (const [method, path, allowed] of cases) {
            const body = method === 'GET' ? undefined : ["INSERT INTO people(name) VALUES ('wrong method')"]
            const reply = await call(method, `${node}${path}`, body)
            assert.equal(reply.status, 405, `${method} ${path}: HTTP ${reply.status} ${reply.text}`)
            assert.equal(reply.headers.get('allow'), allowed, `${method} ${path}`)
            assert.equal((JSON.parse(reply.text) as { code: string }).code, 'METHOD_NOT_ALLOWED')
          }
        }
      })
    })

    test('an unknown path is a 404 NOT_FOUND; OPTIONS is answered as rqlite does', async () => {
      assertError(await get(`${master}/db/nothing`), 404, 'NOT_FOUND', /\/db\/nothing/)
      const options = await call('OPTIONS', `${master}/db/execute`)
      assert.equal(options.status, 200)
      assert.equal(options.text, '')
      assert.match(options.headers.get('access-control-allow-methods') ?? '', /POST/)
    })
  })

  describe("rqlite's shapes", () => {
    test('positional, named ($, @ and :) and plain statements; the result carries last_insert_id, rows_affected and lsn', async () => {
      const reply = await post(`${master}/db/execute`, [
        ['INSERT INTO people(id, name, age) VALUES (?, ?, ?)', 10, 'positional', 40],
        ['INSERT INTO people(id, name, age) VALUES (:id, @name, $age)', { id: 11, name: 'named', age: 41 }],
        "INSERT INTO people(id, name) VALUES (12, 'plain')",
        ['INSERT INTO people(id, name, age) VALUES (?, ?, ?)', 13, 'flags', true],
        'UPDATE people SET age = age + 1 WHERE id >= 10 AND id < 20',
        'DELETE FROM people WHERE id = 12',
      ])
      const body = assertOk(reply)
      assert.deepEqual(body.results, [
        { last_insert_id: 10, rows_affected: 1 },
        { last_insert_id: 11, rows_affected: 1 },
        { last_insert_id: 12, rows_affected: 1 },
        { last_insert_id: 13, rows_affected: 1 },
        // SQLite's counters are per connection: an UPDATE reports the last inserted rowid, as in rqlite.
        { last_insert_id: 13, rows_affected: 4 },
        { last_insert_id: 13, rows_affected: 1 },
      ])
      assert.equal(typeof body.lsn, 'number')
      assert.equal(reply.headers.get('x-tandem-lsn'), String(body.lsn))
      assert.deepEqual(await rowsOnMaster('SELECT id, name, age FROM people WHERE id >= 10 ORDER BY id'), [
        [10, 'positional', 41],
        [11, 'named', 42],
        [13, 'flags', 2],
      ])
      // A schema change leaves SQLite's counters as the last client write left them, and rqlite answers them;
      // Tandem's own insert of the log entry in between does not show (it answered the previous LSN).
      const ddl = assertOk(await post(`${master}/db/execute`, ['CREATE TABLE shapes (id INTEGER PRIMARY KEY, v)']))
      assert.deepEqual(ddl.results, [{ last_insert_id: 13, rows_affected: 1 }], 'the counters of the DELETE before')
      const noRowid = assertOk(await post(`${master}/db/execute`, ['CREATE TABLE keyed (k TEXT PRIMARY KEY) WITHOUT ROWID', "INSERT INTO keyed VALUES ('a'), ('b')", 'UPDATE shapes SET v = 1']))
      assert.deepEqual(noRowid.results, [{ last_insert_id: 13, rows_affected: 1 }, { last_insert_id: 13, rows_affected: 2 }, { last_insert_id: 13 }], 'no rowid inserted: the last one stands')
    })

    test('SQL errors without a transaction are per statement, and the other statements still apply', async () => {
      const reply = await post(`${master}/db/execute`, [
        "INSERT INTO shapes(id, v) VALUES (1, 'a')",
        "INSERT INTO shapes(id, v) VALUES (1, 'again')",
        'INSERT INTO nowhere VALUES (1)',
        'this is not SQL',
        "INSERT INTO shapes(id, v) VALUES (2, 'b')",
      ])
      assert.equal(reply.status, 200, reply.text)
      assert.deepEqual(reply.json.results.slice(1, 4), [
        { error: 'UNIQUE constraint failed: shapes.id' },
        { error: 'no such table: nowhere' },
        { error: 'near "this": syntax error' },
      ])
      assert.deepEqual(await rowsOnMaster('SELECT id, v FROM shapes ORDER BY id'), [[1, 'a'], [2, 'b']])
    })

    test('BLOB parameters as "x\'0102\'" and as byte arrays come back as base64, or as byte arrays with blob_array', async () => {
      assertOk(
        await post(`${master}/db/execute`, [
          ['INSERT INTO people(id, name, photo) VALUES (?, ?, ?)', 20, 'hex blob', "x'0102'"],
          ['INSERT INTO people(id, name, photo) VALUES (:id, :name, :photo)', { id: 21, name: 'array blob', photo: [222, 173, 190, 239] }],
          ['INSERT INTO people(id, name, photo) VALUES (?, ?, ?)', 22, "x'01", "x'01"],
          ['INSERT INTO people(id, name, photo) VALUES (?, ?, ?)', 23, 'byte array', [1, 2]],
        ]),
      )
      const sql = 'SELECT id, photo, typeof(photo) FROM people WHERE id >= 20 AND id < 30 ORDER BY id'
      assert.deepEqual(await rowsOnMaster(sql), [
        [20, 'AQI=', 'blob'],
        [21, '3q2+7w==', 'blob'],
        // A malformed hex literal is plain text, as in rqlite.
        [22, "x'01", 'text'],
        [23, 'AQI=', 'blob'],
      ])
      const arrays = assertOk(await get(`${master}/db/query?blob_array&${q('SELECT photo FROM people WHERE id IN (20, 21) ORDER BY id')}`))
      assert.deepEqual(arrays.results[0].values, [[[1, 2]], [[222, 173, 190, 239]]])
      // An expression has no declared type: rqlite returns a BLOB there as text.
      for (const flags of ['', 'blob_array&']) {
        const text = assertOk(await get(`${master}/db/query?${flags}${q("SELECT x'53514C697465' AS s")}`))
        assert.deepEqual(text.results[0], { columns: ['s'], types: ['text'], values: [['SQLite']] }, flags)
      }
    })

    test('an empty result set keeps columns and types and omits values; a statement without columns is {}', async () => {
      const body = assertOk(await post(`${master}/db/query`, ['SELECT id, name FROM people WHERE id < 0', "SELECT count(*) AS n, 'x' AS s FROM people WHERE id < 0"]))
      assert.deepEqual(body.results[0], { columns: ['id', 'name'], types: ['integer', 'text'] })
      assert.deepEqual(body.results[1], { columns: ['n', 's'], types: ['integer', 'text'], values: [[0, 'x']] })
      assert.deepEqual(Object.keys(body), ['results'], 'no time, error or lsn on a plain read')
    })

    test('associative results have rows and a types object; writes there show "rows": null', async () => {
      const read = assertOk(await get(`${master}/db/query?associative&${q('SELECT id, name, age FROM people WHERE id IN (1, 2) ORDER BY id')}`))
      assert.deepEqual(read.results[0], {
        types: { id: 'integer', name: 'text', age: 'integer' },
        rows: [
          { id: 1, name: 'fiona', age: 20 },
          { id: 2, name: 'declan', age: 30 },
        ],
      })
      const empty = assertOk(await get(`${master}/db/query?associative&${q('SELECT id FROM people WHERE id < 0')}`))
      assert.deepEqual(empty.results[0], { types: { id: 'integer' }, rows: [] })
      const mixed = await post(`${master}/db/request?associative`, [
        ["INSERT INTO shapes(id, v) VALUES (3, 'c')"],
        'SELECT id, v FROM shapes WHERE id = 3',
        'SELECT * FROM nowhere',
      ])
      assert.equal(mixed.status, 200, mixed.text)
      assert.deepEqual(mixed.json.results, [
        { last_insert_id: 3, rows_affected: 1, rows: null },
        { types: { id: 'integer', v: 'text' }, rows: [{ id: 3, v: 'c' }] },
        { rows: [], error: 'no such table: nowhere' },
      ])
    })

    test('timings adds time to every result and to the response; without it there is none', async () => {
      for (const reply of [
        await get(`${master}/db/query?timings&${q('SELECT 1')}`),
        await post(`${master}/db/execute?timings`, ["INSERT INTO shapes(id, v) VALUES (4, 'd')"]),
      ]) {
        const body = assertOk(reply)
        assert.equal(typeof body.time, 'number', reply.text)
        assert.ok(body.time >= 0)
        assert.equal(typeof body.results[0].time, 'number', reply.text)
      }
      const plain = assertOk(await post(`${master}/db/execute`, ["INSERT INTO shapes(id, v) VALUES (5, 'e')"]))
      assert.equal(plain.time, undefined)
      assert.equal(plain.results[0].time, undefined)
    })

    test('pretty indents by four spaces and holds the same content', async () => {
      const sql = 'SELECT id, name FROM people WHERE id = 1'
      const pretty = await get(`${master}/db/query?pretty&${q(sql)}`)
      const plain = await get(`${master}/db/query?${q(sql)}`)
      assert.deepEqual(pretty.json, plain.json)
      assert.match(pretty.text, /^\{\n {4}"results": \[\n {8}\{/)
      assert.doesNotMatch(plain.text, /\n/)
    })

    test('transaction is on by its presence: transaction=false still rolls everything back', async () => {
      for (const flag of ['transaction', 'transaction=false', 'transaction=0']) {
        const before = await checksum(master)
        const reply = await post(`${master}/db/execute?${flag}`, [["INSERT INTO shapes(v) VALUES (?)", flag], 'INSERT INTO nowhere VALUES (1)'])
        assert.equal(reply.status, 200, reply.text)
        assert.equal(reply.json.results[1].error, 'no such table: nowhere')
        assert.equal((await checksum(master)).checksum, before.checksum, `${flag}: nothing applied`)
      }
    })

    test('/db/request mixes reads and writes, each with its own shape, in order', async () => {
      for (const node of [master, replica]) {
        const reply = await post(`${node}/db/request`, [
          ['INSERT INTO shapes(v) VALUES (?)', `request via ${node}`],
          ['SELECT v FROM shapes WHERE v = ?', `request via ${node}`],
          'SELECT v FROM shapes WHERE id < 0',
          'SELECT * FROM nowhere',
        ])
        assert.equal(reply.status, 200, reply.text)
        const [write, read, empty, error] = reply.json.results
        assert.equal(write.rows_affected, 1)
        assert.equal(typeof write.last_insert_id, 'number')
        // `v` has no declared type: rqlite fills it from the first row, or leaves '' without one.
        assert.deepEqual(read, { columns: ['v'], types: ['text'], values: [[`request via ${node}`]] }, 'the read sees the write before it')
        assert.deepEqual(empty, { columns: ['v'], types: [''] })
        assert.deepEqual(error, { error: 'no such table: nowhere' })
        assert.equal(typeof reply.json.lsn, 'number', 'a request that writes carries its LSN')
      }
      // A read-only request is served as a query: no LSN in the body.
      const readOnly = assertOk(await post(`${replica}/db/request?level=none`, ['SELECT count(*) FROM people']))
      assert.equal(readOnly.lsn, undefined)
    })

    test('64-bit integers round-trip exactly, as parameters, values and on replicas', async () => {
      const reply = await post(`${master}/db/execute`, '[["INSERT INTO people(id, name, age) VALUES (?, ?, ?)", 30, "big", 9007199254740993]]')
      const lsn = assertOk(reply).lsn as number
      const sql = q('SELECT age, age + 1, typeof(age) FROM people WHERE id = 30')
      for (const node of [master, replica]) {
        const read = await get(`${node}/db/query?level=none&min_lsn=${lsn}&${sql}`)
        assert.equal(read.status, 200, read.text)
        assert.match(read.text, /"values":\[\[9007199254740993,9007199254740994,"integer"\]\]/, read.text)
      }
      const extremes = await post(`${master}/db/query`, '[["SELECT ?, ?", -9223372036854775808, 9223372036854775807]]')
      assert.match(extremes.text, /"values":\[\[-9223372036854775808,9223372036854775807\]\]/, extremes.text)
      // Beyond int64 the number is bound as a REAL, as rqlite binds it.
      const beyond = await post(`${master}/db/query`, '[["SELECT typeof(?)", 9223372036854775808]]')
      assert.deepEqual(beyond.json.results[0].values, [['real']], beyond.text)
    })
  })

  describe('replicas', () => {
    test('redirect on a replica answers 301 with the same path and query on the master', async () => {
      for (const [method, path, body] of [
        ['POST', '/db/execute?redirect', ["INSERT INTO people(name) VALUES ('redirected')"]],
        ['POST', '/db/request?redirect&transaction', ["INSERT INTO people(name) VALUES ('redirected')"]],
        ['GET', `/db/query?redirect&${q('SELECT 1')}`, undefined],
        ['POST', '/db/query?level=strong&redirect', ['SELECT 1']],
        ['GET', '/db/backup?redirect', undefined],
      ] as const) {
        const reply = await call(method, `${replica}${path}`, body)
        assert.equal(reply.status, 301, `${method} ${path}: ${reply.text}`)
        assert.equal(reply.headers.get('location'), `${master}${path}`)
        assert.equal(reply.text, '')
      }
      assert.deepEqual(await rowsOnMaster("SELECT count(*) FROM people WHERE name = 'redirected'"), [[0]], 'a redirect writes nothing')
      // A level=none read is the replica's own to serve, redirect or not.
      const local = await get(`${replica}/db/query?redirect&level=none&${q('SELECT 1')}`)
      assert.equal(local.status, 200, local.text)
    })

    test('a write sent to a replica is forwarded, lands on the master, and carries its LSN', async () => {
      const reply = await post(`${replica}/db/execute`, [['INSERT INTO people(id, name) VALUES (?, ?)', 40, 'forwarded']])
      const body = assertOk(reply)
      assert.deepEqual(body.results, [{ last_insert_id: 40, rows_affected: 1 }])
      assert.equal(typeof body.lsn, 'number')
      assert.ok(body.lsn > 0)
      assert.equal(reply.headers.get('x-tandem-lsn'), String(body.lsn))
      assert.equal(reply.headers.get('x-tandem-served-by'), master)
      assert.deepEqual(await rowsOnMaster('SELECT name FROM people WHERE id = 40'), [['forwarded']])
      // Reads at the default level (weak) go to the master too, so they see the write at once.
      const weak = assertOk(await get(`${replica}/db/query?${q('SELECT name FROM people WHERE id = 40')}`))
      assert.deepEqual(weak.results[0].values, [['forwarded']])
    })

    test('min_lsn on a replica reads the writes made on the master (read-your-writes)', async () => {
      for (let i = 0; i < 5; i++) {
        const write = assertOk(await post(`${master}/db/execute`, [['INSERT INTO shapes(v) VALUES (?)', `ryw ${i}`]]))
        for (const node of cluster.replicas) {
          const read = await get(`${node.url}/db/query?min_lsn=${write.lsn}&min_lsn_timeout=10s&${q(`SELECT v FROM shapes WHERE v = 'ryw ${i}'`)}`)
          assert.equal(read.status, 200, read.text)
          assert.deepEqual(read.json.results[0].values, [[`ryw ${i}`]], `replica ${node.url} at min_lsn ${write.lsn}`)
          assert.ok(Number(read.headers.get('x-tandem-lsn')) >= write.lsn)
        }
      }
    })

    test('min_lsn beyond anything written is a 503 MIN_LSN_TIMEOUT after min_lsn_timeout', async () => {
      const { lsn } = await checksum(master)
      for (const node of [replica, master]) {
        const reply = await get(`${node}/db/query?min_lsn=${lsn + 1000}&min_lsn_timeout=200ms&${q('SELECT 1')}`)
        assertError(reply, 503, 'MIN_LSN_TIMEOUT', new RegExp(`${lsn + 1000}`))
      }
    })

    test('freshness within bounds is served by a healthy replica', async () => {
      const reply = assertOk(await get(`${replica}/db/query?freshness=30s&${q('SELECT count(*) FROM people WHERE id = 1')}`))
      assert.deepEqual(reply.results[0].values, [[1]])
    })

    test('/nodes lists the master and both replicas: a map by id, and with ver=2 an array', async () => {
      await cluster.converged()
      const ids = [cluster.master.id, ...cluster.replicas.map((r) => r.id)]
      for (const node of [master, replica]) {
        const legacy = await get(`${node}/nodes`)
        assert.equal(legacy.status, 200, legacy.text)
        assert.deepEqual(Object.keys(legacy.json).sort(), [...ids].sort())
        const leader = legacy.json[cluster.master.id]
        assert.equal(leader.id, cluster.master.id)
        for (const id of ids) assert.equal(legacy.json[id].version, packageVersion, `node ${id} says its release`)
        assert.equal(leader.api_addr, master)
        assert.equal(leader.leader, true)
        assert.equal(leader.reachable, true)
        for (const r of cluster.replicas) {
          const entry = legacy.json[r.id]
          assert.equal(entry.api_addr, r.url)
          assert.equal(entry.leader, false)
          assert.equal(entry.reachable, true)
          assert.equal(entry.role, 'replica')
        }
        const v2 = await get(`${node}/nodes?ver=2`)
        assert.equal(v2.status, 200, v2.text)
        assert.deepEqual(Object.keys(v2.json), ['nodes'])
        assert.deepEqual(v2.json.nodes.map((n: { id: string }) => n.id), [...ids].sort(), 'sorted by id, as rqlite does')
      }
    })

    test('/readyz is 200 on a ready master and a streaming replica', async () => {
      for (const node of [master, replica]) {
        const reply = await get(`${node}/readyz`)
        assert.equal(reply.status, 200)
        assert.equal(reply.text, '[+]node ok\n[+]leader ok\n[+]store ok')
      }
      const noleader = await get(`${replica}/readyz?noleader`)
      assert.equal(noleader.text, '[+]node ok')
    })

    test("/status shows each node's role, epoch and position, and on the master each replica's applied LSN and lag", async () => {
      await cluster.converged()
      const { lsn } = await checksum(master)
      // The master learns a replica's position from its acknowledgement, which may trail the apply.
      const onMaster = await waitFor(async () => {
        const reply = await get(`${master}/status`)
        const acked = reply.json?.replicas?.filter((r: { applied_lsn: number }) => r.applied_lsn === lsn).length
        return acked === cluster.replicas.length ? reply : undefined
      }, 10_000, () => `the master to see both replicas at LSN ${lsn}`)
      assert.equal(onMaster.status, 200)
      assert.equal(onMaster.json.role, 'master')
      assert.equal(typeof onMaster.json.epoch, 'number')
      assert.deepEqual(onMaster.json.position, { epoch: onMaster.json.epoch, lsn })
      assert.equal(onMaster.json.replicas.length, 2)
      for (const r of cluster.replicas) {
        const entry = onMaster.json.replicas.find((x: { id: string }) => x.id === r.id)
        assert.ok(entry !== undefined, `replica ${r.id} in ${onMaster.text}`)
        assert.equal(entry.url, r.url)
        assert.equal(entry.applied_lsn, lsn)
        assert.equal(entry.lag_entries, 0)
        assert.equal(typeof entry.lag_ms, 'number')
      }
      const onReplica = await get(`${replica}/status?pretty`)
      assert.equal(onReplica.json.role, 'replica')
      assert.deepEqual(onReplica.json.position, { epoch: onMaster.json.epoch, lsn })
      assert.equal(onReplica.json.replication.master_url, master)
      assert.equal(onReplica.json.replication.applied_lsn, lsn)
      assert.equal(onReplica.json.replication.lag_entries, 0)
      assert.ok(onReplica.json.replication.durable_lsn <= lsn)
      assert.ok(onReplica.json.memory.rss_bytes > onReplica.json.memory.heap_used_bytes && onReplica.json.memory.heap_used_bytes > 0)
      assert.match(onReplica.text, /^\{\n {4}"/)
    })

    test('/db/backup returns a SQLite file holding the data, from the master and through a replica, plain or gzipped', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'tandem-backup-'))
      try {
        const cases = [[master, ''], [replica, ''], [master, '?fmt=delete'], [master, '?compress'], [replica, '?compress&fmt=binary']] as const
        for (const [index, [node, flags]] of cases.entries()) {
          const response = await fetch(`${node}/db/backup${flags}`, { signal: AbortSignal.timeout(15_000) })
          assert.equal(response.status, 200)
          assert.equal(response.headers.get('content-type'), 'application/octet-stream')
          const body = Buffer.from(await response.arrayBuffer())
          const file = flags.includes('compress') ? gunzipSync(body) : body
          assert.equal(file.subarray(0, 16).toString('latin1'), 'SQLite format 3\0')
          assert.deepEqual([file[18], file[19]], [1, 1], 'a rollback-journal file, as rqlite serves (fmt=delete)')
          const path = join(dir, `backup-${index}.db`)
          writeFileSync(path, file)
          const db = new DatabaseSync(path)
          try {
            const row = db.prepare('SELECT name FROM people WHERE id = 1').get() as { name: string }
            assert.equal(row.name, 'fiona')
            const check = db.prepare('PRAGMA integrity_check').get() as { integrity_check: string }
            assert.equal(check.integrity_check, 'ok')
          } finally {
            db.close()
          }
        }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
      // A format it does not know is refused, not answered with a file of another kind.
      assertError(await get(`${master}/db/backup?fmt=csv`), 400, 'BAD_REQUEST', /fmt=csv/)
    })

    test('after all of the above, the replicas hold exactly what the master holds', async () => {
      const sum = await cluster.converged()
      assert.match(sum, /^[0-9a-f]{64}$/)
    })
  })
})

describe('a replica whose master is down', () => {
  let cluster: Cluster

  before(async () => {
    cluster = await Cluster.start({ replicas: 1 })
    assertOk(await post(`${cluster.master.url}/db/execute`, ['CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)', "INSERT INTO kv VALUES ('a', '1')"]))
    await cluster.converged()
    await cluster.master.kill('SIGKILL')
  })

  after(async () => {
    await cluster?.stop()
  })

  test('answers a write with 503 NO_MASTER and names the master it cannot reach', async () => {
    const replica = cluster.replicas[0]!.url
    for (const path of ['/db/execute', '/db/request', '/db/execute?transaction']) {
      assertError(await post(`${replica}${path}`, ["INSERT INTO kv VALUES ('b', '2')"]), 503, 'NO_MASTER', new RegExp(cluster.master.url.replace(/[.]/g, '\\.')))
    }
    // A read that needs the master fails the same way.
    assertError(await get(`${replica}/db/query?level=weak&${q('SELECT * FROM kv')}`), 503, 'NO_MASTER')
  })

  test('still serves level=none reads from its copy, and /readyz says the master is missing', async () => {
    const replica = cluster.replicas[0]!.url
    const read = assertOk(await get(`${replica}/db/query?level=none&${q('SELECT k, v FROM kv')}`))
    assert.deepEqual(read.results[0].values, [['a', '1']])
    const ready = await waitFor(async () => {
      const reply = await get(`${replica}/readyz`)
      return reply.status === 503 ? reply : undefined
    }, 20_000, () => 'the replica to notice its master is gone')
    assert.match(ready.text, /leader does not exist/)
  })
})
