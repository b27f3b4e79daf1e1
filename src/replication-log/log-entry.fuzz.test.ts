/**
 * Properties of the log entry codec and checksum, against arbitrary input (fast-check). Seeded:
 * a failure prints its seed and shrunk counterexample; rerun with that seed to reproduce.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isTandemError } from '../shared/errors.ts'
import type { Op } from '../storage/ops.ts'
import { decodeEntries, encodeEntries } from '../protocol/messages.ts'
import { createEntry, decodeOps, encodeOps, followsHistory, verifyEntry } from './log-entry.ts'

const seed = 160502

// DDL is SQL text SQLite gave back, so well-formed UTF-16 (a lone surrogate cannot round-trip
// through UTF-8, and never reaches the log).
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('ddl' as const), sql: fc.fullUnicodeString({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('changeset' as const), bytes: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({
    kind: fc.constant('sequence' as const),
    rows: fc.array(fc.tuple(fc.fullUnicodeString({ maxLength: 20 }), fc.maxSafeInteger()), { maxLength: 5 }),
  }),
)

function isLogCorrupted(error: unknown): boolean {
  return isTandemError(error) && error.code === 'LOG_CORRUPTED'
}

function plain(ops: Op[]): Op[] {
  return ops.map((o) => (o.kind === 'changeset' ? { kind: 'changeset', bytes: Uint8Array.from(o.bytes) } : o))
}

test('ops decode to the ops they encode, in order', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 10 }), (ops) => {
      assert.deepEqual(plain(decodeOps(encodeOps(ops))), ops)
    }),
    { seed, numRuns: 1000 },
  )
})

test('arbitrary bytes either decode as ops or throw LOG_CORRUPTED', () => {
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 128 }),
    // Well-formed headers around arbitrary payloads reach the payload decoders.
    fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.uint8Array({ maxLength: 24 })), { maxLength: 4 }).map((parts) => {
      const out: number[] = []
      for (const [kind, payload] of parts) out.push(kind, 0, 0, 0, payload.length, ...payload)
      return Uint8Array.from(out)
    }),
  )
  fc.assert(
    fc.property(bytes, (blob) => {
      try {
        decodeOps(blob)
      } catch (error) {
        if (!isLogCorrupted(error)) throw error
      }
    }),
    { seed, numRuns: 3000 },
  )
})

test('a sequence op whose payload is not JSON rows is LOG_CORRUPTED, not a SyntaxError (found by fuzzing)', () => {
  for (const payload of ['', '{', '[[1,2]', 'null', '5', '"x"', '[1]', '[null]', '[["t"]]', '[["t",1,2]]']) {
    const text = new TextEncoder().encode(payload)
    const blob = Uint8Array.from([3, 0, 0, 0, text.length, ...text])
    assert.throws(() => decodeOps(blob), isLogCorrupted, payload)
  }
})

test('one flipped byte anywhere in an entry fails its checksum, its framing or its history hash', () => {
  const entry = fc
    .record({
      lsn: fc.integer({ min: 1, max: 2 ** 40 }),
      epoch: fc.integer({ min: 0, max: 0xffffffff }),
      time: fc.integer({ min: 0, max: 4_102_444_800_000 }),
      ops: fc.array(op, { maxLength: 4 }).map(encodeOps),
    })
    .map((e) => createEntry(e.lsn, e.epoch, e.time, e.ops, null))
  fc.assert(
    fc.property(entry, fc.nat(), fc.integer({ min: 1, max: 255 }), (original, at, flip) => {
      verifyEntry(original)
      const frame = Uint8Array.from(encodeEntries([original]))
      // Bytes 0-3 are the frame's count; the entry is everything after it.
      frame[4 + (at % (frame.length - 4))]! ^= flip
      let decoded
      try {
        decoded = decodeEntries(frame)
      } catch (error) {
        if (isTandemError(error) && error.code === 'PROTOCOL_ERROR') return
        throw error
      }
      assert.equal(decoded.length, 1)
      // The history hash is outside the checksum: a flip there breaks the chain instead.
      if (!Buffer.from(decoded[0]!.hash ?? []).equals(Buffer.from(original.hash ?? []))) assert.equal(followsHistory(decoded[0]!, null), false)
      else assert.throws(() => verifyEntry(decoded[0]!), isLogCorrupted)
    }),
    { seed, numRuns: 2000 },
  )
})
