import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { engine, openConnection } from './sqlite.ts'

// Tandem's own SQLite (native/tandem-sqlite.c): the contract sqlite.ts types, at its edges.

test("Tandem's own SQLite is the engine, built with the published binding's SQLite", () => {
  assert.equal(engine.name, 'tandem', 'build/tandem-sqlite.node was built (npm run build)')
  assert.equal(engine.rowidTables, true)
  assert.match(engine.version, /^3\.\d+\.\d+$/)
})

test('parameters: any number of them, positional and named (with or without their prefix), unknown names ignored, bad values refused', () => {
  const db = openConnection(':memory:')
  try {
    const many = Array.from({ length: 40 }, (_, i) => i)
    const sum = db.prepare(`SELECT ${many.map(() => '?').join(' + ')} AS total`)
    assert.deepEqual(sum.get(...many), { total: 780 })
    const named = db.prepare('SELECT :a AS a, @b AS b, $c AS c, ? AS d')
    assert.deepEqual(named.get({ a: 1, '@b': 'two', c: null, unknown: 4 }, 5.5), { a: 1, b: 'two', c: null, d: 5.5 })
    assert.throws(() => named.get({ a: undefined }), { code: 'ERR_INVALID_ARG_TYPE', message: /parameter 1/ })
    assert.throws(() => db.prepare('SELECT ?').get({}, () => 1), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => db.prepare('SELECT ?').get(2n ** 64n), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => db.prepare('SELECT ?').get(1, 2), { code: 'ERR_SQLITE_ERROR', message: /column index out of range/ })
    const blob = db.prepare('SELECT ? AS b, typeof(?1) AS t').get(new Uint8Array([1, 0, 255])) as { b: Uint8Array; t: string }
    assert.deepEqual([blob.b, blob.t], [new Uint8Array([1, 0, 255]), 'blob'])
    assert.equal(Object.getPrototypeOf(blob.b), Uint8Array.prototype, 'a BLOB reads as a plain Uint8Array')
  } finally {
    db.close()
  }
})

test('integers past 2^53 read as bigints only when asked; otherwise a RangeError names the value', () => {
  const db = openConnection(':memory:')
  try {
    const big = db.prepare('SELECT 9007199254740993 AS n')
    assert.throws(() => big.get(), { code: 'ERR_OUT_OF_RANGE', message: /9007199254740993/ })
    big.setReadBigInts(true)
    assert.deepEqual(big.get(), { n: 9007199254740993n })
    big.setReturnArrays(true)
    assert.deepEqual(big.all(), [[9007199254740993n]])
  } finally {
    db.close()
  }
})

test('iterate() binds at once, stops early without holding the statement, and a closed database refuses its statements and sessions', () => {
  const db = openConnection(':memory:')
  db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)')
  const select = db.prepare('SELECT x FROM t WHERE x >= ? ORDER BY x')
  assert.throws(() => select.iterate(undefined), { code: 'ERR_INVALID_ARG_TYPE' }, 'a bad value fails the call, not the first next()')
  for (const row of select.iterate(2)) {
    assert.deepEqual(row, { x: 2 })
    break
  }
  assert.deepEqual(select.all(1), [{ x: 1 }, { x: 2 }, { x: 3 }], 'the abandoned iteration was reset')
  const session = db.createSession()
  db.close()
  assert.equal(db.isOpen, false)
  assert.throws(() => select.all(1), { code: 'ERR_INVALID_STATE', message: 'database is not open' })
  assert.throws(() => session.changeset(), { code: 'ERR_INVALID_STATE' })
  assert.throws(() => db.prepare('SELECT 1'), { code: 'ERR_INVALID_STATE' })
})

test('a session captures a table without a PRIMARY KEY by rowid and leaves sqlite_sequence out; a conflicting apply is refused whole', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-sqlite-'))
  try {
    const master = openConnection(join(dir, 'a.db'))
    const replica = openConnection(join(dir, 'b.db'), { foreignKeys: false, defensive: false })
    const schema = 'CREATE TABLE loose(a, b); CREATE TABLE counted(id INTEGER PRIMARY KEY AUTOINCREMENT, v)'
    master.exec(schema)
    replica.exec(schema)
    const session = master.createSession()
    master.exec(`INSERT INTO loose VALUES (1, 'x'), (1, 'x'); INSERT INTO counted(v) VALUES ('c'); UPDATE loose SET b = 'y' WHERE rowid = 2`)
    const changes = session.changeset()
    session.close()
    const applied: number[] = []
    assert.equal(replica.applyChangeset(changes, { onConflict: (kind) => (applied.push(kind), 1) }), true)
    assert.deepEqual(applied, [])
    assert.deepEqual(replica.prepare('SELECT rowid, * FROM loose ORDER BY rowid').all(), [{ rowid: 1, a: 1, b: 'x' }, { rowid: 2, a: 1, b: 'y' }])
    // sqlite_sequence has no PRIMARY KEY either, but travels as its own op: no session records it.
    const sequence = master.createSession()
    master.exec(`UPDATE sqlite_sequence SET seq = 100 WHERE name = 'counted'`)
    assert.equal(sequence.changeset().length, 0)
    sequence.close()
    // Applied again, every insert conflicts: the handler aborts and nothing changes.
    const kinds: number[] = []
    assert.equal(replica.applyChangeset(changes, { onConflict: (kind) => (kinds.push(kind), 2) }), false)
    assert.ok(kinds.length > 0)
    assert.equal((replica.prepare('SELECT count(*) AS n FROM loose').get() as { n: number }).n, 2)
    assert.throws(() => replica.applyChangeset(changes, { onConflict: () => { throw new Error('handler failed') } }), /handler failed/)
    master.close()
    replica.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test("an authorizer's always-allowed codes are answered without calling it; anything but an array of codes from 0 to 63 is refused", () => {
  const db = openConnection(':memory:')
  try {
    db.exec('CREATE TABLE secret(x, y)')
    const seen: number[] = []
    // It would refuse every column read: with READ (20) in the list, it is never asked.
    db.setAuthorizer((action) => {
      seen.push(action)
      return action === 20 ? 1 : 0
    }, [20, 21])
    assert.deepEqual(db.prepare('SELECT x, y FROM secret WHERE x = 1').all(), [])
    assert.deepEqual(seen, [], 'neither SELECT nor READ reached the callback')
    db.prepare('INSERT INTO secret VALUES (1, 2)').run()
    assert.deepEqual(seen, [18], 'INSERT did')
    // Set again without the list: the callback answers every code again.
    db.setAuthorizer((action) => (action === 20 ? 1 : 0))
    assert.throws(() => db.prepare('SELECT x FROM secret'), /prohibited/)
    for (const hostile of [[64], [-1], ['20'], [1.5], [20, Number.NaN], 20, 'READ', {}] as unknown[]) {
      assert.throws(() => db.setAuthorizer(() => 0, hostile as number[]), { code: 'ERR_INVALID_ARG_TYPE' }, JSON.stringify(hostile))
    }
    assert.throws(() => db.setAuthorizer('allow' as unknown as null), { code: 'ERR_INVALID_ARG_TYPE' })
    assert.throws(() => db.prepare('SELECT x FROM secret'), /prohibited/, 'a refused call left the authorizer it had')
  } finally {
    db.close()
  }
})

test('an authorizer decides, and one that throws fails the prepare with its own error', () => {
  const db = openConnection(':memory:')
  try {
    db.exec('CREATE TABLE secret(x); CREATE TABLE open(x)')
    db.setAuthorizer((action, table) => (action === 20 && table === 'secret' ? 1 : 0))
    assert.throws(() => db.prepare('SELECT x FROM secret'), { code: 'ERR_SQLITE_ERROR', message: /access to secret.x is prohibited/ })
    assert.deepEqual(db.prepare('SELECT count(*) AS n FROM open').get(), { n: 0 })
    db.setAuthorizer(() => {
      throw new Error('refused by policy')
    })
    assert.throws(() => db.prepare('SELECT 1'), /refused by policy/)
    db.setAuthorizer(null)
    assert.deepEqual(db.prepare('SELECT 1 AS one').get(), { one: 1 })
    assert.equal(db.limits.length, 1_000_000_000)
    db.limits.length = 100
    assert.equal(db.limits.length, 100)
    assert.throws(() => db.prepare(`SELECT '${'x'.repeat(200)}'`).get(), /too big/)
    assert.deepEqual({ ...(db.prepare('SELECT 1 AS __proto__, 2 AS constructor').get() as object) }, JSON.parse('{"__proto__": 1, "constructor": 2}'), 'every column is an own property')
  } finally {
    db.close()
  }
})
