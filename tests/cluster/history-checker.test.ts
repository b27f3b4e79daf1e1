import { test } from 'node:test'
import assert from 'node:assert/strict'
import { checkHistory, type Operation, type ReadOp, type WriteOp } from './history-checker.ts'

/** A tiny DSL: operations at [invoked, completed] times. */
const w = (session: string, value: number, at: [number, number], lsn: number | undefined = value, key = 'k'): WriteOp => ({
  type: 'write', session, key, value, invokedAt: at[0], completedAt: at[1], lsn,
})
const r = (session: string, value: number | null, at: [number, number], extra: Partial<ReadOp> = {}): ReadOp => ({
  type: 'read', session, key: 'k', value, invokedAt: at[0], completedAt: at[1], ...extra,
})

test('a sequential session that sees its writes and never goes back is clean', () => {
  const history: Operation[] = [r('a', null, [0, 1]), w('a', 1, [2, 3]), r('a', 1, [4, 5]), w('a', 2, [6, 7]), r('a', 2, [8, 9]), r('a', 2, [10, 11])]
  const result = checkHistory(history)
  assert.deepEqual(result.violations, [])
  assert.equal(result.reads, 4)
  assert.equal(result.writes, 2)
})

test('reading a newer value another session wrote is fine; so is an old value in a read that overlaps the write', () => {
  const history: Operation[] = [
    w('a', 1, [0, 1]),
    w('b', 2, [2, 3]),
    r('a', 2, [4, 5]), // newer than a's own write: allowed
    w('a', 3, [6, 10]),
    r('a', 2, [7, 8]), // invoked before a's write of 3 completed: no obligation yet
  ]
  assert.deepEqual(checkHistory(history).violations, [])
})

test("a read that misses the session's completed write is a read-your-writes violation", () => {
  const history: Operation[] = [w('a', 1, [0, 1]), w('a', 2, [2, 3]), r('a', 1, [4, 5], { node: 'http://replica2' })]
  const result = checkHistory(history)
  assert.equal(result.counts['read-your-writes'], 1)
  assert.equal(result.violations[0]!.because, history[1])
  assert.match(result.violations[0]!.message, /replica2.*older than the session's own write of 2 at LSN 2/)
})

test('an initial value read after the session wrote is a read-your-writes violation', () => {
  assert.equal(checkHistory([w('a', 1, [0, 1]), r('a', null, [2, 3])]).counts['read-your-writes'], 1)
})

test('a read older than an earlier read of the session is a monotonic-reads violation, even with no write of its own', () => {
  const history: Operation[] = [w('writer', 1, [0, 1]), w('writer', 2, [2, 3]), r('a', 2, [4, 5]), r('a', 1, [6, 7]), r('b', 1, [6, 7])]
  const result = checkHistory(history)
  assert.equal(result.counts['monotonic-reads'], 1, 'only session a had read 2 before')
  assert.equal(result.counts['read-your-writes'], 0)
  assert.equal(result.violations[0]!.read, history[3])
})

test('overlapping reads are not ordered; versions come from LSNs, not from values', () => {
  const history: Operation[] = [w('x', 30, [0, 1], 5), w('x', 10, [2, 3], 6), r('a', 10, [4, 9]), r('a', 30, [5, 8]), r('a', 10, [10, 11])]
  assert.deepEqual(checkHistory(history).violations, [], 'reads 3 and 4 overlap; 10 is the newer value (LSN 6)')
  const bad: Operation[] = [...history, r('a', 30, [12, 13])]
  assert.equal(checkHistory(bad).counts['monotonic-reads'], 1)
})

test('a value nobody wrote is flagged; one from a write of unknown outcome is not ordered', () => {
  const history: Operation[] = [w('a', 1, [0, 1]), w('a', 2, [2, 3], undefined), r('a', 2, [4, 5]), r('a', 99, [6, 7])]
  const result = checkHistory(history)
  assert.equal(result.counts['unknown-value'], 1)
  assert.equal(result.counts['read-your-writes'], 0)
  assert.equal(result.violations.length, 1)
})

test('a read showing a version beyond the LSN its node reported is flagged', () => {
  const history: Operation[] = [w('a', 1, [0, 1]), w('a', 2, [2, 3]), r('b', 2, [4, 5], { lsn: 1 })]
  assert.equal(checkHistory(history).counts['read-beyond-position'], 1)
})

test('keys are checked apart', () => {
  const history: Operation[] = [w('a', 1, [0, 1], 1, 'x'), w('a', 2, [2, 3], 2, 'y'), { ...r('a', 1, [4, 5]), key: 'x' }, { ...r('a', null, [6, 7]), key: 'z' }]
  assert.deepEqual(checkHistory(history).violations, [])
})

test('a history that reuses a value for a key is refused: versions would be ambiguous', () => {
  assert.throws(() => checkHistory([w('a', 1, [0, 1], 1), w('b', 1, [2, 3], 2)]), /twice/)
})
