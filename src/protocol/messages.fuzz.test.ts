/**
 * Properties of the replication wire codecs, against arbitrary input (fast-check). Seeded: a
 * failure prints its seed and shrunk counterexample; rerun with that seed to reproduce.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { isTandemError } from '../shared/errors.ts'
import type { LogEntry } from '../replication-log/log-entry.ts'
import { decodeEntries, encodeEntries, parseMasterMessage, parseReplicaMessage } from './messages.ts'

const seed = 160501
const u32 = fc.integer({ min: 0, max: 0xffffffff })

const entry: fc.Arbitrary<LogEntry> = fc.record({
  lsn: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  epoch: u32,
  // -0 and NaN are excluded: strict equality would tell them apart from what a frame carries
  // (the master's times are finite ms since the epoch).
  time: fc.double({ noNaN: true }).filter((t) => !Object.is(t, -0)),
  crc: u32,
  ops: fc.uint8Array({ maxLength: 64 }),
  // 16 zero bytes on the wire are an entry without a hash: those are given as null.
  hash: fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }).filter((h) => h.some((b) => b !== 0)), { nil: null }),
})

function isProtocolError(error: unknown): boolean {
  return isTandemError(error) && error.code === 'PROTOCOL_ERROR'
}

test('an entries frame decodes to the entries it encodes', () => {
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 20 }), (entries) => {
      const decoded = decodeEntries(encodeEntries(entries))
      assert.deepEqual(decoded.map((e) => ({ ...e, ops: Uint8Array.from(e.ops) })), entries)
    }),
    { seed, numRuns: 500 },
  )
})

test('an entries frame encoded into scratch decodes to the same entries', () => {
  const scratch = new Uint8Array(4096)
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 8 }), (entries) => {
      const decoded = decodeEntries(encodeEntries(entries, scratch))
      assert.deepEqual(decoded.map((e) => ({ ...e, ops: Uint8Array.from(e.ops) })), entries)
    }),
    { seed, numRuns: 200 },
  )
})

test('arbitrary bytes either decode as entries that fit in them or throw PROTOCOL_ERROR', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (frame) => {
      try {
        const entries = decodeEntries(frame)
        // Every entry takes at least its 28-byte header: nothing sized by an untrusted count.
        assert.ok(4 + entries.length * 28 <= frame.length)
        for (const e of entries) assert.equal(e.ops.buffer, frame.buffer, 'ops are views of the frame, not copies')
      } catch (error) {
        if (!isProtocolError(error)) throw error
      }
    }),
    { seed, numRuns: 2000 },
  )
})

test('a mutated valid frame either decodes or throws PROTOCOL_ERROR', () => {
  const mutated = fc
    .tuple(fc.array(entry, { minLength: 1, maxLength: 5 }), fc.nat(), fc.integer({ min: 1, max: 255 }))
    .map(([entries, at, flip]) => {
      const frame = Uint8Array.from(encodeEntries(entries))
      frame[at % frame.length]! ^= flip
      return frame
    })
  fc.assert(
    fc.property(mutated, (frame) => {
      try {
        decodeEntries(frame)
      } catch (error) {
        if (!isProtocolError(error)) throw error
      }
    }),
    { seed, numRuns: 1000 },
  )
})

test('a frame claiming 4 billion entries is refused without allocating for them', () => {
  const frame = new Uint8Array(4 + 28)
  new DataView(frame.buffer).setUint32(0, 0xffffffff)
  const started = performance.now()
  assert.throws(() => decodeEntries(frame), isProtocolError)
  // An entry claiming 4 GiB of ops in a short frame is refused too, not read past the end.
  const long = new Uint8Array(4 + 28)
  const view = new DataView(long.buffer)
  view.setUint32(0, 1)
  view.setUint32(4, 0xffffffff)
  assert.throws(() => decodeEntries(long), isProtocolError)
  assert.ok(performance.now() - started < 100)
})

test('control messages: arbitrary text is a message, a PROTOCOL_ERROR or a SyntaxError, never another failure', () => {
  const json = fc.jsonValue().map((v) => JSON.stringify(v))
  const text = fc.oneof(fc.string(), fc.fullUnicodeString(), json, fc.constantFrom('null', '1', '"x"', '[]', '{}', '{"type":1}', 'true'))
  for (const parse of [parseReplicaMessage, parseMasterMessage]) {
    fc.assert(
      fc.property(text, (input) => {
        try {
          const message = parse(input) as { type: unknown }
          assert.equal(typeof message.type, 'string')
        } catch (error) {
          if (!isProtocolError(error) && !(error instanceof SyntaxError)) throw error
        }
      }),
      { seed, numRuns: 1000 },
    )
  }
})

test('control messages: deeply nested JSON is parsed or refused, not a stack overflow', () => {
  const deep = '['.repeat(10_000) + ']'.repeat(10_000)
  for (const parse of [parseReplicaMessage, parseMasterMessage]) {
    assert.throws(() => parse(deep), isProtocolError)
    assert.throws(() => parse(`{"type":"ack","x":${deep}}`.slice(0, -1)), SyntaxError)
  }
})
