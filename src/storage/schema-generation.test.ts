import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openReader, openWriter, type GuardedConnection } from './database.ts'
import { SchemaGeneration } from './schema-generation.ts'
import type { Statement } from './sqlite.ts'
import { runPrepared, type RowsResult } from './statement-runner.ts'

/** A statement that counts how often its columns are asked for; `duringRun` runs inside all(). */
function counted(statement: Statement, duringRun: () => void = () => {}) {
  const asked = { columns: 0 }
  const wrapped: Statement = {
    run: (...params) => statement.run(...params),
    get: (...params) => statement.get(...params),
    all: (...params) => {
      const rows = statement.all(...params)
      duringRun()
      return rows
    },
    iterate: (...params) => statement.iterate(...params),
    columns: () => {
      asked.columns++
      return statement.columns()
    },
    setReadBigInts: (enabled) => statement.setReadBigInts(enabled),
    setReturnArrays: (enabled) => statement.setReturnArrays(enabled),
  }
  return { wrapped, asked }
}

/** A writer and a reader on one file, a table `t (id, a)` holding one row. */
function files(body: (writer: GuardedConnection, reader: GuardedConnection) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-schema-'))
  const writer = openWriter(join(dir, 'db'), 'off')
  writer.connection.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT); INSERT INTO t VALUES (1, 'x')")
  const reader = openReader(join(dir, 'db'))
  try {
    body(writer, reader)
  } finally {
    reader.connection.close()
    writer.connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const rows = (result: ReturnType<typeof runPrepared>): RowsResult => {
  assert.equal(result.kind, 'rows')
  return result
}

test('a read asks for its columns once per schema generation, and on every run without one', () => {
  files((_writer, reader) => {
    const schema = new SchemaGeneration()
    const { wrapped, asked } = counted(reader.connection.prepare('SELECT * FROM t'))
    for (let i = 0; i < 3; i++) assert.deepEqual(rows(runPrepared(wrapped, undefined, schema)).columns, ['id', 'a'])
    assert.equal(asked.columns, 2, 'once for its shape, once for the columns of this generation')
    for (let i = 0; i < 3; i++) runPrepared(wrapped, undefined)
    assert.equal(asked.columns, 5, 'no generation: asked every run')
  })
})

test('a schema change committed under the generation is seen by the next read', () => {
  files((writer, reader) => {
    const schema = new SchemaGeneration()
    const statement = reader.connection.prepare('SELECT * FROM t')
    assert.deepEqual(rows(runPrepared(statement, undefined, schema)).columns, ['id', 'a'])
    // Same number of columns, other names: only asking again tells them apart.
    schema.changing(() => writer.connection.exec('ALTER TABLE t RENAME COLUMN a TO label'))
    assert.deepEqual(rows(runPrepared(statement, undefined, schema)).columns, ['id', 'label'])
    schema.changing(() => writer.connection.exec("DROP TABLE t; CREATE TABLE t (id INTEGER PRIMARY KEY, label BLOB); INSERT INTO t VALUES (2, x'00')"))
    const result = rows(runPrepared(statement, undefined, schema))
    assert.deepEqual([result.columns, result.types, result.values], [['id', 'label'], ['integer', 'blob'], [[2, new Uint8Array([0])]]])
  })
})

test('columns learned while a schema change commits, or across one, are not kept', () => {
  files((_writer, reader) => {
    const schema = new SchemaGeneration()
    const { wrapped, asked } = counted(reader.connection.prepare('SELECT * FROM t'))
    schema.changing(() => {
      runPrepared(wrapped, undefined, schema)
      runPrepared(wrapped, undefined, schema)
    })
    assert.equal(asked.columns, 3, 'the generation was odd: asked on each run (after the first run asked for its shape)')
    let bumps = 0
    const across = counted(reader.connection.prepare('SELECT a FROM t'), () => {
      if (bumps++ < 1) schema.changing(() => {})
    })
    runPrepared(across.wrapped, undefined, schema)
    runPrepared(across.wrapped, undefined, schema)
    runPrepared(across.wrapped, undefined, schema)
    assert.equal(across.asked.columns, 3, 'shape; the run the generation moved under; then once for the new generation')
  })
})
