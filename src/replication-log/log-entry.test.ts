import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { createEntry, decodeOps, encodeOps, verifyEntry } from './log-entry.ts'
import { crc32, crc32Table } from './crc32.ts'
import { decodeEntries, encodeEntries } from '../protocol/messages.ts'

test('crc32 matches the IEEE check value', () => {
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926)
  assert.equal(crc32Table(new TextEncoder().encode('123456789')), 0xcbf43926)
})

test('the native and the table crc32 agree, seeded and chained', () => {
  const bytes = Uint8Array.from({ length: 4099 }, (_, i) => (i * 7919) % 256)
  for (const seed of [0, 1, 0xcbf43926, 0xffffffff]) assert.equal(crc32(bytes, seed), crc32Table(bytes, seed))
  assert.equal(crc32(bytes.subarray(1000), crc32(bytes.subarray(0, 1000))), crc32Table(bytes))
})

test('ops round-trip through their encoding, in order', () => {
  const ops = [
    { kind: 'ddl' as const, sql: 'CREATE TABLE t(id INTEGER PRIMARY KEY)' },
    { kind: 'changeset' as const, bytes: new Uint8Array([1, 2, 3, 250]) },
    { kind: 'sequence' as const, rows: [['t', 7]] as [string, number][] },
  ]
  assert.deepEqual(decodeOps(encodeOps(ops)), ops)
})

test('a flipped bit anywhere in an entry fails its checksum', () => {
  const entry = createEntry(42, 1, 1_700_000_000_000, encodeOps([{ kind: 'ddl', sql: 'CREATE TABLE x(id INTEGER PRIMARY KEY)' }]))
  verifyEntry(entry)
  for (const corrupt of [
    { ...entry, lsn: 43 },
    { ...entry, epoch: 2 },
    { ...entry, time: entry.time + 1 },
    { ...entry, ops: entry.ops.map((b, i) => (i === 7 ? b ^ 1 : b)) },
  ]) {
    assert.throws(() => verifyEntry(corrupt), (e) => isTandemError(e, 'LOG_CORRUPTED'))
  }
})

test('a truncated ops blob is detected', () => {
  const bytes = encodeOps([{ kind: 'ddl', sql: 'CREATE TABLE x(id INTEGER PRIMARY KEY)' }])
  assert.throws(() => decodeOps(bytes.subarray(0, bytes.length - 3)), (e) => isTandemError(e, 'LOG_CORRUPTED'))
})

test('entries frames round-trip and reject truncation', () => {
  const entries = [1, 2, 3].map((lsn) => createEntry(lsn, 1, 1000 + lsn, new Uint8Array(lsn * 10).fill(lsn)))
  const frame = encodeEntries(entries)
  assert.deepEqual(decodeEntries(frame), entries)
  assert.throws(() => decodeEntries(frame.subarray(0, frame.length - 1)), (e) => isTandemError(e, 'PROTOCOL_ERROR'))
})
