/**
 * Tandem against the real rqlited (8.26.8): one corpus of requests goes to both, in the same
 * order, and every answer must match, status and JSON body, except the deviations listed below.
 * Bodies are parsed with lossless-json so that 64-bit integers and number spellings (`1` against
 * `1.0`, `9223372036854775808` against `9223372036854776000`) are compared exactly. Left out of
 * the comparison: `time` (the clock decides it) and Tandem's `lsn` (its own bookkeeping).
 *
 * The deviation list is kept honest both ways: a request not in it must answer identically, and a
 * request in it must still differ, or the test says the deviation can go.
 */
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'lossless-json'
import { Cluster } from '../harness/cluster.ts'
import { call, type Reply } from '../harness/http.ts'
import { Rqlited } from '../harness/rqlited.ts'

/** A string body is sent as written: JSON.stringify cannot write `1.0` or 2^63. */
type Body = string | unknown[]

/** One request of the corpus. */
interface Probe {
  name: string
  method: 'GET' | 'POST'
  path: string
  body?: Body
  contentType?: string
  /** Compare the body's text as well, not only its JSON: for `pretty`, whose layout is the point. */
  isLayoutCompared?: boolean
}

interface Deviation {
  name: string
  /** `kept`: Tandem answers differently on purpose. `gap`: not matched yet; the reason says what stands in the way. */
  kind: 'kept' | 'gap'
  reason: string
  /** The two still answer with the same status; only the body differs. */
  isSameStatus?: boolean
}

const errorShape = 'Tandem answers its 400s in its JSON error shape ({"results": [], "error", "code"}); rqlite in plain text'

/** Differences kept on purpose, each naming the corpus request it excuses. */
export const deviations: Deviation[] = [
  { name: 'a body that is not JSON', kind: 'kept', reason: errorShape, isSameStatus: true },
  { name: 'a query body that is not JSON', kind: 'kept', reason: errorShape, isSameStatus: true },
  { name: 'a statement list that is a JSON object', kind: 'kept', reason: errorShape, isSameStatus: true },
  { name: 'a statement that is a number', kind: 'kept', reason: errorShape, isSameStatus: true },
  { name: 'an empty statement list', kind: 'kept', reason: errorShape, isSameStatus: true },
  { name: 'a text/plain body on /db/execute', kind: 'kept', reason: 'Tandem runs a text/plain body as SQL; rqlite reads every body as JSON and refuses it' },
  { name: 'too few parameters', kind: 'kept', reason: 'a missing parameter is an error naming what is missing, never a NULL the client did not send (rqlite: "not enough args")' },
  { name: 'a placeholder without parameters', kind: 'kept', reason: 'as above: Tandem says how many parameters the statement takes' },
  { name: 'too many parameters', kind: 'kept', reason: 'an extra positional value is an error (rqlite drops it silently)' },
  { name: 'a named parameter that is missing', kind: 'kept', reason: 'a missing named value is an error (rqlite binds NULL)' },
  { name: 'an unknown read level', kind: 'kept', reason: 'an unknown level is a 400 naming the levels: a typo must not weaken a read silently (rqlite ignores it)' },
  { name: 'BEGIN and COMMIT as statements', kind: 'kept', reason: 'the master group-commits requests into one transaction: a request is made atomic with ?transaction, and BEGIN/COMMIT are refused with a message saying so' },
  { name: 'a SELECT sent to /db/execute', kind: 'kept', reason: 'Tandem answers the rows; rqlite answers its connection\'s stale counters and drops the rows' },
  { name: 'insert BLOBs as byte arrays', kind: 'kept', reason: 'Tandem takes a BLOB parameter as an array of bytes; rqlite refuses the request' },
  { name: 'the byte arrays read back', kind: 'kept', reason: 'follows from the one above: rqlite stored nothing' },
  { name: 'the text a BLOB literal as text read back', kind: 'gap', reason: 'Tandem takes a parameter written "x\'0102\'" as a BLOB (its documented BLOB form); rqlite stores that text as text' },
  { name: 'the schema as a client lists it', kind: 'gap', reason: 'sqlite_schema lists Tandem\'s own _tandem_* tables (its log, jobs, votes); rqlite has none' },
]

const execute = (name: string, body: Body, params = ''): Probe => ({ name, method: 'POST', path: `/db/execute${params}`, body })
const query = (name: string, body: Body, params = ''): Probe => ({ name, method: 'POST', path: `/db/query${params}`, body })
const request = (name: string, body: Body, params = ''): Probe => ({ name, method: 'POST', path: `/db/request${params}`, body })
const get = (name: string, sql: string, params = ''): Probe => ({ name, method: 'GET', path: `/db/query?q=${encodeURIComponent(sql)}${params}` })

function schema(): Probe[] {
  return [
    execute('create a table of every declared type', ['CREATE TABLE typed (id INTEGER PRIMARY KEY, b BOOLEAN, dtm DATETIME, ts TIMESTAMP, d DATE, r REAL, i INTEGER, s TEXT, bl BLOB, j JSON, x)']),
    execute('create tables with UNIQUE, NOT NULL, CHECK and a foreign key', [
      'CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, qty INTEGER CHECK (qty >= 0))',
      'CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id))',
    ]),
    execute('create a WITHOUT ROWID table with a text key', ['CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID']),
    execute('create one table per topic', [
      'CREATE TABLE dates (id INTEGER PRIMARY KEY, label TEXT, dtm DATETIME, ts TIMESTAMP, d DATE)',
      'CREATE TABLE flags (id INTEGER PRIMARY KEY, label TEXT, b BOOLEAN)',
      'CREATE TABLE nums (id INTEGER PRIMARY KEY, label TEXT, x, r REAL, i INTEGER)',
      'CREATE TABLE params (id INTEGER PRIMARY KEY, label TEXT, v)',
      'CREATE TABLE texts (id INTEGER PRIMARY KEY, label TEXT, s TEXT)',
      'CREATE TABLE blobs (id INTEGER PRIMARY KEY, label TEXT, bl BLOB, s TEXT)',
      'CREATE TABLE byte_arrays (id INTEGER PRIMARY KEY, bl BLOB)',
      'CREATE TABLE docs (id INTEGER PRIMARY KEY, j JSON)',
    ]),
    execute('CREATE TABLE of a table that exists is an error', ['CREATE TABLE parent (id INTEGER PRIMARY KEY)']),
    execute('CREATE TABLE IF NOT EXISTS of a table that exists', ['CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)']),
    query('the schema as a client lists it', ["SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY name"]),
  ]
}

function inserts(): Probe[] {
  return [
    execute('insert with positional parameters', [['INSERT INTO parent(name, qty) VALUES(?, ?)', 'alpha', 3]]),
    execute('insert with a :name parameter', [['INSERT INTO params(label, v) VALUES(:label, :v)', { label: 'colon', v: 1 }]]),
    execute('insert with an @name parameter', [['INSERT INTO params(label, v) VALUES(@label, @v)', { label: 'at', v: 2 }]]),
    execute('insert with a $name parameter', [['INSERT INTO params(label, v) VALUES($label, $v)', { label: 'dollar', v: 3 }]]),
    execute('insert a named 64-bit integer', `[["INSERT INTO params(label, v) VALUES(:label, :v)", {"label": "big", "v": 9223372036854775807}]]`),
    execute('insert NULL through a parameter', [['INSERT INTO params(label, v) VALUES(?, ?)', 'null', null]]),
    execute('insert booleans through parameters', [['INSERT INTO params(label, v) VALUES(?, ?)', 'true', true], ['INSERT INTO params(label, v) VALUES(?, ?)', 'false', false]]),
    query('the parameters read back', ['SELECT label, v, typeof(v) FROM params ORDER BY id']),
    execute('insert into a WITHOUT ROWID table', [['INSERT INTO kv(k, v) VALUES(?, ?)', 'key', 'value']]),
    execute('insert into every declared type', [["INSERT INTO typed(b, dtm, ts, d, r, i, s, bl, j, x) VALUES(1, '2024-01-02 03:04:05', 1700000000, '2024-01-02', 1.5, 42, 'text', x'CAFE', '{\"a\":1}', 'any')"]]),
    execute('insert with timings', [['INSERT INTO parent(name, qty) VALUES(?, ?)', 'beta', 4]], '?timings'),
    execute('insert with RETURNING', [["INSERT INTO parent(name, qty) VALUES('gamma', 5) RETURNING id, name"]]),
    query('the WITHOUT ROWID table read back', ['SELECT k, v FROM kv ORDER BY k']),
    query('the row of every declared type', ['SELECT * FROM typed']),
    query('the row of every declared type, associative', ['SELECT * FROM typed'], '?associative'),
  ]
}

/** JSON number literals as a client writes them: 2^53 and 2^63 edges, past 64 bits, and REALs that JSON.stringify cannot spell. */
const numberLiterals = ['9007199254740993', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '-9223372036854775809', '18446744073709551616', '1.0', '1e-20', '5e-324', '1e308', '-0.0', '0.1', '1e21', '1.5e300']

function numbers(): Probe[] {
  const rows = numberLiterals.map((literal) => `["INSERT INTO nums(label, x, r, i) VALUES(?, ?, ?, ?)", "${literal}", ${literal}, ${literal}, ${literal}]`)
  return [
    execute('insert every number literal through parameters', `[${rows.join(', ')}]`),
    ...numberLiterals.map((literal) => query(`the number ${literal} read back`, [['SELECT x, typeof(x), r, i FROM nums WHERE label = ?', literal]])),
    query('SELECT 1.0, 1e100, 9007199254740993 + 0.0', ['SELECT 1.0, 1e100, 9007199254740993 + 0.0']),
    query('integer edges and REALs as SQL literals', ['SELECT 9223372036854775807, -9223372036854775808, 9223372036854775808, 1e308, 5e-324, 1e-20, 0.1 + 0.2']),
    query('a parameter of each kind read back', `[["SELECT ?, ?, ?, ?, ?", 9223372036854775807, 1.0, 5e-324, true, null]]`),
    query('negative zero as a SQL literal and as a parameter', `[["SELECT -0.0, ?", -0.0]]`),
    query('expressions of every storage class', ["SELECT NULL, 'a', x'01', 1, 1.5, typeof(1), 1 / 0, 2 / 3.0"]),
  ]
}

/** Texts as parameters: unicode, JSON escapes, a NUL, HTML and line separators, and one that looks like a BLOB literal. */
const textValues: [label: string, text: string][] = [
  ['unicode', 'héllo wörld ✓ 日本語 🎉 👩‍👩‍👧'],
  ['escapes', 'tab\tnewline\nquote" backslash\\ slash/'],
  ['a NUL inside', 'nul\u0000inside'],
  ['HTML and line separators', '<script>&amp;</script> \u2028\u2029'],
  ['empty', ''],
  ['a BLOB literal as text', "x'0102'"],
]

function texts(): Probe[] {
  return [
    execute('insert texts as parameters', textValues.map(([label, text]) => ['INSERT INTO texts(label, s) VALUES(?, ?)', label, text])),
    execute('insert texts as SQL literals', ["INSERT INTO texts(label, s) VALUES('literal', 'ünïcödé literal ✓'), ('quoted', 'it''s quoted')"]),
    ...[...textValues.map(([label]) => label), 'literal', 'quoted'].map((label) => query(`the text ${label} read back`, [['SELECT s, length(s), hex(s), typeof(s) FROM texts WHERE label = ?', label]])),
  ]
}

function blobs(): Probe[] {
  return [
    execute('insert BLOBs as SQL literals', ["INSERT INTO blobs(label, bl) VALUES('literal', x'0102'), ('empty literal', x''), ('zeroblob', zeroblob(3))"]),
    execute('insert a BLOB into a TEXT column and text into a BLOB column', ["INSERT INTO blobs(label, bl, s) VALUES('crossed', 'text in blob', x'414243')"]),
    query('the BLOBs read back', ['SELECT label, bl, typeof(bl), hex(bl), s FROM blobs ORDER BY id']),
    query('the BLOBs read back with blob_array', ['SELECT label, bl, s FROM blobs ORDER BY id'], '?blob_array'),
    query('the BLOBs read back associative with blob_array', ['SELECT label, bl FROM blobs ORDER BY id'], '?associative&blob_array'),
    // A table of their own: rqlite refuses byte arrays, so the rows (and rowids) of the other tables do not depend on it.
    execute('insert BLOBs as byte arrays', [['INSERT INTO byte_arrays(bl) VALUES(?)', [1, 2, 255]], ['INSERT INTO byte_arrays(bl) VALUES(?)', []]]),
    query('the byte arrays read back', ['SELECT bl, hex(bl) FROM byte_arrays ORDER BY id']),
  ]
}

/** What DATETIME, TIMESTAMP and DATE columns may hold: text in several formats, unix times, reals, garbage. */
const dateValues: [label: string, sql: string][] = [
  ['date only', "'2024-01-02'"],
  ['date and time', "'2024-01-02 03:04:05'"],
  ['milliseconds', "'2024-01-02 03:04:05.678'"],
  ['ISO 8601 with Z', "'2024-01-02T03:04:05Z'"],
  ['ISO 8601 with nanoseconds and an offset', "'2024-01-02T03:04:05.123456789+02:00'"],
  ['hours and minutes', "'2024-01-02 03:04'"],
  ['unix seconds', '1700000000'],
  ['unix milliseconds', '1700000000123'],
  ['negative unix seconds', '-86400'],
  ['zero', '0'],
  ['a real', '1700000000.5'],
  ['garbage text', "'not a date'"],
  ['empty text', "''"],
  ['NULL', 'NULL'],
]

function dates(): Probe[] {
  const rows = dateValues.map(([label, sql]) => `INSERT INTO dates(label, dtm, ts, d) VALUES('${label}', ${sql}, ${sql}, ${sql})`)
  return [
    execute('insert date and time values of every form', rows),
    ...dateValues.map(([label]) => query(`date columns holding ${label}`, [['SELECT dtm, ts, d, typeof(dtm) FROM dates WHERE label = ?', label]])),
    query('date columns through an expression', ["SELECT max(dtm), dtm || '', date(d) FROM dates WHERE label = 'date and time'"]),
  ]
}

/** What BOOLEAN columns may hold. */
const flagValues: [label: string, sql: string][] = [['0', '0'], ['1', '1'], ['2', '2'], ['-1', '-1'], ['0.5', '0.5'], ['the text true', "'true'"], ['the text false', "'false'"], ['NULL', 'NULL']]

function flags(): Probe[] {
  const rows = flagValues.map(([label, sql]) => `INSERT INTO flags(label, b) VALUES('${label}', ${sql})`)
  return [
    execute('insert boolean values of every form', rows),
    execute('insert booleans into a BOOLEAN column through parameters', [['INSERT INTO flags(label, b) VALUES(?, ?)', 'param true', true], ['INSERT INTO flags(label, b) VALUES(?, ?)', 'param false', false]]),
    ...[...flagValues.map(([label]) => label), 'param true', 'param false'].map((label) => query(`a BOOLEAN column holding ${label}`, [['SELECT b, typeof(b) FROM flags WHERE label = ?', label]])),
    execute('create a view over the BOOLEAN column', ['CREATE VIEW flag_view AS SELECT label, b, b + 0 AS n FROM flags']),
    query('a view keeps the BOOLEAN type', ['SELECT * FROM flag_view ORDER BY label']),
  ]
}

function json(): Probe[] {
  const doc = '{"a": 1, "b": [1, 2, {"c": "x"}], "n": 9223372036854775807, "f": 1.5, "t": true, "z": null}'
  return [
    execute('insert a JSON document', [['INSERT INTO docs(j) VALUES(?)', doc]]),
    query('json_extract of each kind', ["SELECT json_extract(j, '$.a'), json_extract(j, '$.b'), json_extract(j, '$.n'), json_extract(j, '$.f'), json_extract(j, '$.t'), json_extract(j, '$.z') FROM docs"]),
    query('the -> and ->> operators', ["SELECT j -> '$.b', j ->> '$.b[2].c', j -> 'n', j ->> 't' FROM docs"]),
    query('json_each', ['SELECT key, value, type FROM docs, json_each(docs.j) ORDER BY key']),
    query('a JSON column read back', ['SELECT j FROM docs']),
    query('json_group_array and json_object', ["SELECT json_group_array(name), json_object('n', count(*)) FROM parent"]),
  ]
}

function aggregates(): Probe[] {
  return [
    query('sum, avg, count, group_concat and total', ["SELECT count(*), sum(qty), avg(qty), total(qty), group_concat(name, ','), min(name), max(qty) FROM parent"]),
    query('aggregates over no rows', ['SELECT count(*), sum(qty), avg(qty), total(qty), group_concat(name) FROM parent WHERE 0']),
    query('aggregates per group', ['SELECT qty > 3 AS big, count(*), sum(qty) FROM parent GROUP BY big ORDER BY big']),
  ]
}

function readOptions(): Probe[] {
  const rows = ['SELECT id, name, qty FROM parent ORDER BY id']
  return [
    query('a plain query', rows),
    query('associative', rows, '?associative'),
    query('level=none', rows, '?level=none'),
    query('level=weak', rows, '?level=weak'),
    query('level=strong', rows, '?level=strong'),
    { ...query('pretty', rows, '?pretty'), isLayoutCompared: true },
    query('timings', rows, '?timings'),
    query('several statements in one query', ['SELECT 1', 'SELECT name FROM parent ORDER BY id LIMIT 1', "SELECT 'three'"]),
    query('an empty result set', ['SELECT * FROM parent WHERE 0']),
    query('an empty result set, associative', ['SELECT * FROM parent WHERE 0'], '?associative'),
    query('duplicate column names, associative', ['SELECT 1 AS a, 2 AS a'], '?associative'),
    get('a GET query', 'SELECT name, qty FROM parent ORDER BY id'),
    get('a GET query, associative and strong', 'SELECT name, qty FROM parent ORDER BY id', '&associative&level=strong'),
    get('a GET query with a syntax error', 'SELEKT 1'),
    { name: 'GET /db/query without q', method: 'GET', path: '/db/query' },
  ]
}

function requests(): Probe[] {
  return [
    request('/db/request mixing reads and writes', [
      ['INSERT INTO parent(name, qty) VALUES(?, ?)', 'req', 1],
      ['SELECT name, qty FROM parent WHERE name = ?', 'req'],
      ["UPDATE parent SET qty = 2 WHERE name = 'req'"],
      ["SELECT name, qty FROM parent WHERE name = 'req'"],
    ]),
    request('/db/request associative', [["UPDATE parent SET qty = 3 WHERE name = 'req'"], ["SELECT name, qty FROM parent WHERE name = 'req'"]], '?associative'),
    request('/db/request in a transaction with a failing statement', [
      ["INSERT INTO parent(name, qty) VALUES('req-tx', 1)"],
      ["SELECT count(*) FROM parent WHERE name = 'req-tx'"],
      ["INSERT INTO parent(name, qty) VALUES('req-tx', 1)"],
      ["SELECT 'after'"],
    ], '?transaction'),
    query('the failed /db/request transaction left nothing', ["SELECT count(*) FROM parent WHERE name = 'req-tx'"]),
    request('/db/request with an error', [['SELECT * FROM nowhere'], ['SELECT 1']]),
  ]
}

function transactions(): Probe[] {
  const batch = ["INSERT INTO parent(name, qty) VALUES('tx-a', 1)", "INSERT INTO parent(name, qty) VALUES('alpha', 1)", "INSERT INTO parent(name, qty) VALUES('tx-c', 1)"]
  return [
    execute('a transaction with a failing statement in the middle', batch, '?transaction'),
    query('the failed transaction left nothing', ["SELECT count(*) FROM parent WHERE name LIKE 'tx-%'"]),
    execute('the same batch without a transaction', batch),
    query('the batch without a transaction kept its other statements', ["SELECT name FROM parent WHERE name LIKE 'tx-%' ORDER BY name"]),
    execute('several statements in one string', ["INSERT INTO parent(name, qty) VALUES('m1', 1); INSERT INTO parent(name, qty) VALUES('m2', 2)"]),
    query('several statements in one query string', ['SELECT 1; SELECT 2']),
    execute('an UPDATE and a DELETE count their rows', ["UPDATE parent SET qty = qty + 1 WHERE name IN ('m1', 'm2')", "DELETE FROM parent WHERE name = 'm2'"]),
    execute('a SELECT sent to /db/execute', ['SELECT name FROM parent']),
    execute('an empty statement list', []),
  ]
}

function errors(): Probe[] {
  return [
    execute('a syntax error', ['INSERT INTO parent VALUES(']),
    query('a syntax error in a query', ['SELEKT 1']),
    execute('no such table', ['INSERT INTO nowhere VALUES(1)']),
    query('no such table in a query', ['SELECT * FROM nowhere']),
    query('no such column', ['SELECT nothing FROM parent']),
    execute('a UNIQUE violation', [["INSERT INTO parent(name, qty) VALUES('alpha', 1)"]]),
    execute('a PRIMARY KEY violation', [['INSERT INTO parent(id, name, qty) VALUES(1, ?, 1)', 'dup id']]),
    execute('a NOT NULL violation', [['INSERT INTO parent(name, qty) VALUES(NULL, 1)']]),
    execute('a FOREIGN KEY violation', [['INSERT INTO child(parent_id) VALUES(999)']]),
    execute('a FOREIGN KEY violation on delete', [['INSERT INTO child(parent_id) VALUES(1)'], ['DELETE FROM parent WHERE id = 1']]),
    execute('a CHECK violation', [["INSERT INTO parent(name, qty) VALUES('negative', -1)"]]),
    query('a write sent to /db/query', ["INSERT INTO parent(name, qty) VALUES('via query', 1)"]),
    execute('too few parameters', [['INSERT INTO parent(name, qty) VALUES(?, ?)', 'few']]),
    query('too many parameters', [['SELECT ?', 1, 2]]),
    query('a placeholder without parameters', [['SELECT ?']]),
    query('a named parameter that is missing', [['SELECT :a', { b: 1 }]]),
    execute('a body that is not JSON', 'not json'),
    execute('a statement list that is a JSON object', '{"statements": ["SELECT 1"]}'),
    query('a query body that is not JSON', 'not json'),
    execute('a statement that is a number', '[1]'),
    query('an unknown read level', ['SELECT 1'], '?level=bogus'),
    { name: 'a text/plain body on /db/execute', method: 'POST', path: '/db/execute', body: 'CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)', contentType: 'text/plain' },
  ]
}

function ddl(): Probe[] {
  return [
    execute('CREATE INDEX after writes', ['CREATE INDEX parent_qty ON parent(qty)']),
    execute('CREATE VIEW', ['CREATE VIEW parent_names AS SELECT name FROM parent']),
    query('SELECT from a view', ['SELECT * FROM parent_names ORDER BY name']),
    execute('ALTER TABLE ADD COLUMN', ['ALTER TABLE parent ADD COLUMN note TEXT']),
    execute('CREATE TRIGGER', ["CREATE TRIGGER parent_note AFTER INSERT ON parent BEGIN UPDATE parent SET note = 'by trigger' WHERE id = new.id; END"]),
    execute('an insert that fires the trigger', [["INSERT INTO parent(name, qty) VALUES('triggered', 1)"]]),
    query('the trigger ran', ["SELECT name, note FROM parent WHERE name = 'triggered'"]),
    execute('DROP VIEW and DROP INDEX', ['DROP VIEW parent_names', 'DROP INDEX parent_qty']),
    execute('BEGIN and COMMIT as statements', ['BEGIN', "INSERT INTO kv(k, v) VALUES('in begin', 1)", 'COMMIT']),
    query('PRAGMA foreign_keys', ['PRAGMA foreign_keys']),
  ]
}

/** Tables without a PRIMARY KEY: rows told apart by rowid alone, written and read back. */
function pkLess(): Probe[] {
  return [
    execute('a table without a PRIMARY KEY', ['CREATE TABLE nopk (a, b)']),
    execute('identical rows into a table without a PRIMARY KEY', [["INSERT INTO nopk VALUES (?, ?)", 1, 'same'], ["INSERT INTO nopk VALUES (?, ?)", 1, 'same'], ["INSERT INTO nopk VALUES (?, ?)", 2.5, null]]),
    execute('INSERT … SELECT into a table without a PRIMARY KEY', ['INSERT INTO nopk SELECT a * 2, b FROM nopk']),
    execute('update and delete by rowid', ["UPDATE nopk SET b = 'second' WHERE rowid = 2", 'DELETE FROM nopk WHERE rowid = 4']),
    query('a table without a PRIMARY KEY read back with its rowids', ['SELECT rowid, a, b FROM nopk ORDER BY rowid']),
    query('a table without a PRIMARY KEY read back associative', ['SELECT rowid, * FROM nopk ORDER BY rowid'], '?associative'),
  ]
}

const corpus: Probe[] = [...schema(), ...inserts(), ...numbers(), ...texts(), ...blobs(), ...dates(), ...flags(), ...json(), ...aggregates(), ...readOptions(), ...requests(), ...transactions(), ...errors(), ...ddl(), ...pkLess()]

async function send(baseUrl: string, probe: Probe): Promise<Reply> {
  const options = probe.contentType === undefined ? {} : { contentType: probe.contentType }
  return call(probe.method, `${baseUrl}${probe.path}`, probe.body, options)
}

/** The answer as compared: status, and the body parsed exactly (text when it is not JSON) without `time` and `lsn`. */
function normalise(reply: Reply): { status: number; body: unknown } {
  let body: unknown
  try {
    body = parse(reply.text)
  } catch {
    return { status: reply.status, body: reply.text }
  }
  if (!isRecord(body)) return { status: reply.status, body }
  // `time` is only dropped where rqlite puts it: a column named time in associative rows stays.
  const { time: _time, lsn: _lsn, ...rest } = body
  if (Array.isArray(rest['results'])) {
    rest['results'] = rest['results'].map((result: unknown) => (isRecord(result) ? withoutTime(result) : result))
  }
  return { status: reply.status, body: rest }
}

function withoutTime(result: Record<string, unknown>): Record<string, unknown> {
  const { time: _time, ...rest } = result
  return rest
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isSame(a: unknown, b: unknown): boolean {
  try {
    assert.deepStrictEqual(a, b)
    return true
  } catch {
    return false
  }
}

/** The request and both answers, for a failure message. */
function exchange(probe: Probe, want: Reply, got: Reply): string {
  const body = typeof probe.body === 'string' ? probe.body : JSON.stringify(probe.body ?? '')
  return `${probe.method} ${probe.path} ${body}\n  rqlite: ${show(want)}\n  tandem: ${show(got)}`
}

function show(reply: Reply): string {
  const text = reply.text.trim()
  return `${reply.status} ${text.length > 1500 ? `${text.slice(0, 1500)}…` : text}`
}

describe('Tandem answers as rqlited does', () => {
  let rqlited: Rqlited
  let cluster: Cluster
  const byName = new Map(deviations.map((d) => [d.name, d]))

  before(async () => {
    rqlited = await Rqlited.start()
    cluster = await Cluster.start({ replicas: 0 })
  })
  after(async () => {
    await Promise.all([rqlited?.stop(), cluster?.stop()])
  })

  test('every request of the corpus has its own name, and every deviation names one', () => {
    const names = corpus.map((probe) => probe.name)
    assert.deepEqual(names.filter((name, i) => names.indexOf(name) !== i), [])
    assert.deepEqual(deviations.filter((d) => !names.includes(d.name)).map((d) => d.name), [])
  })

  for (const probe of corpus) {
    const deviation = byName.get(probe.name)
    test(deviation === undefined ? probe.name : `${probe.name} (deviation: ${deviation.reason})`, async () => {
      // One at a time and rqlite first: both databases see the same sequence of writes.
      const want = await send(rqlited.url, probe)
      const got = await send(cluster.master.url, probe)
      const report = exchange(probe, want, got)
      const [a, b] = [normalise(want), normalise(got)]
      if (deviation === undefined) {
        assert.ok(isSame(b, a), `the answers differ:\n${report}`)
        if (probe.isLayoutCompared === true) assert.equal(got.text.trim(), want.text.trim(), `the layouts differ:\n${report}`)
        return
      }
      assert.ok(!isSame(b, a), `the answers are the same now, so the deviation can be removed:\n${report}`)
      if (deviation.isSameStatus === true) assert.equal(got.status, want.status, `the statuses differ:\n${report}`)
    })
  }
})
