import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { createEntry, decodeOps, encodeOps, followsHistory, historyHash, verifyEntry, type LogEntry } from './log-entry.ts'
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
  const entry = createEntry(42, 1, 1_700_000_000_000, encodeOps([{ kind: 'ddl', sql: 'CREATE TABLE x(id INTEGER PRIMARY KEY)' }]), null)
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
  const entries: LogEntry[] = []
  for (const lsn of [1, 2, 3]) entries.push(createEntry(lsn, 1, 1000 + lsn, new Uint8Array(lsn * 10).fill(lsn), entries.at(-1)?.hash ?? null))
  const frame = encodeEntries(entries)
  assert.deepEqual(decodeEntries(frame), entries)
  assert.throws(() => decodeEntries(frame.subarray(0, frame.length - 1)), (e) => isTandemError(e, 'PROTOCOL_ERROR'))
})

test('history hashes chain: an entry follows the history it was appended to, and no other', () => {
  const ops = (n: number) => encodeOps([{ kind: 'ddl', sql: `CREATE TABLE t${n} (id INTEGER PRIMARY KEY)` }])
  const first = createEntry(1, 1, 1000, ops(1), null)
  const second = createEntry(2, 1, 1001, ops(2), first.hash)
  assert.ok(followsHistory(first, null))
  assert.ok(followsHistory(second, first.hash))
  // Another entry 1 (a second master of the same epoch, say): entry 2 does not follow it.
  const otherFirst = createEntry(1, 1, 1000, ops(99), null)
  assert.equal(followsHistory(second, otherFirst.hash), false)
  // Every field of the entry is in its hash.
  for (const changed of [{ lsn: 3 }, { epoch: 2 }, { time: 1002 }, { ops: ops(3) }]) {
    const e = { ...second, ...changed }
    assert.notDeepEqual(historyHash(first.hash, e.lsn, e.epoch, e.time, e.ops), second.hash)
  }
  // An entry written before hashes existed cannot say, and is taken as following.
  assert.ok(followsHistory({ ...second, hash: null }, otherFirst.hash))
})
