import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openWriter } from './database.ts'
import { StatementCache, cachedSqlCharsMax } from './statement-cache.ts'

test('the statement cache keeps the most recently used statements and drops the least recent', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-cache-'))
  const writer = openWriter(join(dir, 'db'), 'off')
  try {
    writer.connection.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)')
    const cache = new StatementCache(writer.connection, writer.policy, 2)
    const a = cache.prepare('SELECT 1 FROM t').statement
    const b = cache.prepare('SELECT 2 FROM t').statement
    assert.equal(cache.prepare('SELECT 1 FROM t').statement, a, 'a hit returns the prepared statement')
    cache.prepare('SELECT 3 FROM t')
    assert.equal(cache.prepare('SELECT 1 FROM t').statement, a, 'used more recently than SELECT 2: kept')
    assert.notEqual(cache.prepare('SELECT 2 FROM t').statement, b, 'the least recently used was dropped and is prepared again')
    const ddl = cache.prepare('CREATE TABLE u (id INTEGER PRIMARY KEY)').statement
    assert.notEqual(cache.prepare('CREATE TABLE u (id INTEGER PRIMARY KEY)').statement, ddl, 'schema changes are never cached')
  } finally {
    writer.connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a SQL text past cachedSqlCharsMax is prepared and split each time, never kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tandem-cache-'))
  const writer = openWriter(join(dir, 'db'), 'off')
  try {
    const cache = new StatementCache(writer.connection, writer.policy, 4)
    const long = `SELECT 1 /* ${'x'.repeat(cachedSqlCharsMax)} */`
    const first = cache.prepare(long).statement
    assert.notEqual(cache.prepare(long).statement, first)
    assert.notEqual(cache.split(long), cache.split(long))
    const short = 'SELECT 2'
    assert.equal(cache.prepare(short).statement, cache.prepare(short).statement)
    assert.equal(cache.split(short), cache.split(short))
  } finally {
    writer.connection.close()
    rmSync(dir, { recursive: true, force: true })
  }
})
