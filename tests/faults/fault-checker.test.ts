/**
 * Every rule of the fault checker rejects a hand-made history that breaks it, and accepts the
 * same history without the fault.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { checkFaults, finalTimeline, versionOf, type FinalState, type NodeFinalState, type Rule } from './fault-checker.ts'
import type { HistoryData, OperationRecord, PromotionRecord } from './history.ts'

const M = 'http://master'
const R = 'http://replica'

/** A write at [invoke, complete], acknowledged ok at (epoch, lsn) unless told otherwise. */
const w = (process: string, value: string, at: [number, number], lsn: number | undefined, extra: Partial<OperationRecord> = {}): OperationRecord => ({
  process, op: 'write', key: 'k', value, invokeAt: at[0], completeAt: at[1], outcome: 'ok', epoch: 1, node: M, ...(lsn === undefined ? {} : { lsn }), ...extra,
})
const r = (process: string, value: string | null, at: [number, number], extra: Partial<OperationRecord> = {}): OperationRecord => ({
  process, op: 'read', key: 'k', value, invokeAt: at[0], completeAt: at[1], outcome: 'ok', node: R, ...extra,
})
const promotion = (epoch: number, lsn: number, completeAt: number, node = R): PromotionRecord => ({ node, epoch, lsn, invokeAt: completeAt - 5, completeAt })

const history = (operations: OperationRecord[], promotions: PromotionRecord[] = [], extra: Partial<HistoryData> = {}): HistoryData => ({
  operations, promotions, faults: [], startedAt: 0, stoppedAt: Math.max(0, ...operations.map((o) => o.completeAt)), ...extra,
})
const node = (url: string, values: string[], extra: Partial<NodeFinalState> = {}): NodeFinalState => ({
  node: url, role: url === M ? 'master' : 'replica', epoch: 1, lsn: 10, checksum: 'c0ffee', values, registers: values.length === 0 ? {} : { k: values[values.length - 1]! }, ...extra,
})
const final = (values: string[], replica: Partial<NodeFinalState> = {}): FinalState => ({ master: M, nodes: [node(M, values), node(R, values, replica)], unreadable: [] })

function only(counts: Record<Rule, number>, rule: Rule, expected = 1): void {
  const others = Object.entries(counts).filter(([name, n]) => name !== rule && n > 0)
  assert.deepEqual(others, [], `only ${rule} should be flagged`)
  assert.equal(counts[rule], expected, `${rule} count`)
}

describe('fault checker', () => {
  test('a clean history with a promotion, every outcome and reads on both nodes is accepted', () => {
    const ops = [
      w('a', 'a1', [0, 1], 1),
      r('a', 'a1', [2, 3], { lsn: 1, epoch: 1 }),
      w('b', 'b1', [4, 5], undefined, { outcome: 'indeterminate', error: 'timeout' }),
      w('b', 'b2', [6, 7], undefined, { outcome: 'failed', error: 'NOT_MASTER' }),
      w('a', 'a2', [20, 21], 3, { epoch: 2, node: R }),
      r('a', 'a2', [22, 23], { lsn: 3, epoch: 2 }),
      r('b', 'a2', [22, 23], { lsn: 3, epoch: 2, node: M }),
    ]
    const report = checkFaults(history(ops, [promotion(2, 1, 10)]), final(['a1', 'a2']))
    assert.deepEqual(report.violations, [])
    assert.equal(report.acknowledged, 2)
    assert.equal(report.failed, 1)
    assert.equal(report.indeterminate, 1)
    assert.equal(report.operations, 7)
  })

  test('lost: an acknowledged write missing from the final master', () => {
    const ops = [w('a', 'a1', [0, 1], 1), w('a', 'a2', [2, 3], 2)]
    assert.deepEqual(checkFaults(history(ops), final(['a1', 'a2'])).violations, [])
    const faults = [{ what: 'kill' as const, node: R, at: 5 }, { what: 'kill' as const, node: M, at: 10 }]
    const report = checkFaults(history(ops, [], { faults }), final(['a1']))
    only(report.counts, 'lost')
    assert.equal(report.lostEntries, 1)
    assert.equal(report.lossWindowMs, 7, 'acknowledged 7 ms before the kill of the master that acknowledged it')
    assert.match(report.violations[0]!.message, /"a2".*not on the final master/)
  })

  test('lost: present on a replica does not count, only the master', () => {
    const report = checkFaults(history([w('a', 'a1', [0, 1], 1)]), { master: M, nodes: [node(M, []), node(R, ['a1'])], unreadable: [] })
    assert.equal(report.counts.lost, 1)
  })

  test('failed-present: a refused write whose value is on a node, or was read', () => {
    const refused = w('a', 'a1', [0, 1], undefined, { outcome: 'failed', error: 'NOT_MASTER' })
    assert.deepEqual(checkFaults(history([refused]), final([])).violations, [])
    only(checkFaults(history([refused]), { master: M, nodes: [node(M, []), node(R, ['a1'])], unreadable: [] }).counts, 'failed-present')
    only(checkFaults(history([refused, r('b', 'a1', [2, 3])]), final([])).counts, 'failed-present')
    // The same value from an indeterminate write is fine either way.
    const maybe = { ...refused, outcome: 'indeterminate' as const }
    assert.deepEqual(checkFaults(history([maybe, r('b', 'a1', [2, 3])]), final(['a1'])).violations, [])
  })

  test('unknown-value: a row nobody wrote, and a read of a value nobody wrote', () => {
    const ops = [w('a', 'a1', [0, 1], 1)]
    assert.deepEqual(checkFaults(history([...ops, r('b', 'a1', [2, 3])]), final(['a1'])).violations, [])
    only(checkFaults(history(ops), final(['a1', 'ghost'])).counts, 'unknown-value')
    only(checkFaults(history([...ops, r('b', 'ghost', [2, 3])]), final(['a1'])).counts, 'unknown-value')
  })

  test("read-your-writes: a session's read that misses its own acknowledged write", () => {
    const good = [w('a', 'a1', [0, 1], 1), w('a', 'a2', [2, 3], 2), r('a', 'a2', [4, 5])]
    assert.deepEqual(checkFaults(history(good), final(['a1', 'a2'])).violations, [])
    const bad = [w('a', 'a1', [0, 1], 1), w('a', 'a2', [2, 3], 2), r('a', 'a1', [4, 5])]
    only(checkFaults(history(bad), final(['a1', 'a2'])).counts, 'read-your-writes')
  })

  test('monotonic-reads: a session goes back in time across nodes', () => {
    const writes = [w('x', 'x1', [0, 1], 1), w('x', 'x2', [2, 3], 2)]
    const good = [...writes, r('a', 'x2', [4, 5]), r('a', 'x2', [6, 7], { node: M })]
    assert.deepEqual(checkFaults(history(good), final(['x1', 'x2'])).violations, [])
    const bad = [...writes, r('a', 'x2', [4, 5], { node: M }), r('a', 'x1', [6, 7])]
    only(checkFaults(history(bad), final(['x1', 'x2'])).counts, 'monotonic-reads')
  })

  test('monotonic-reads: versions order by epoch first, so a later epoch at a lower LSN is newer', () => {
    // x2 was acknowledged at (1, 5) and lost; x3 is (2, 4): reading x2 then x3 moves forward.
    const ops = [
      w('x', 'x1', [0, 1], 3),
      w('x', 'x2', [2, 3], 5),
      w('x', 'x3', [20, 21], 4, { epoch: 2, node: R }),
      r('a', 'x2', [4, 5], { node: M }),
      r('a', 'x3', [22, 23]),
    ]
    const report = checkFaults(history(ops, [promotion(2, 3, 10)]), final(['x1', 'x3']))
    assert.equal(report.counts['monotonic-reads'], 0)
    assert.equal(report.counts.lost, 1)
    // Reading the surviving older value after the lost newer one goes back in time.
    const back = checkFaults(history([...ops.slice(0, 4), r('a', 'x1', [6, 7])], [promotion(2, 3, 10)]), final(['x1']))
    assert.equal(back.counts['monotonic-reads'], 1)
  })

  test('read-beyond-position: a node shows a value newer than the position it reported', () => {
    const ops = [w('a', 'a1', [0, 1], 1), w('a', 'a2', [2, 3], 2)]
    assert.deepEqual(checkFaults(history([...ops, r('b', 'a2', [4, 5], { lsn: 2, epoch: 1 })]), final(['a1', 'a2'])).violations, [])
    only(checkFaults(history([...ops, r('b', 'a2', [4, 5], { lsn: 1, epoch: 1 })]), final(['a1', 'a2'])).counts, 'read-beyond-position')
  })

  test('writes acknowledged without an epoch take it from the final timeline', () => {
    const epochOf = finalTimeline([promotion(2, 10, 100), promotion(3, 8, 200)])
    assert.deepEqual([1, 8, 9, 10, 11, 50].map(epochOf), [1, 1, 3, 3, 3, 3], 'epoch 2 was cut after LSN 8 by the promotion to epoch 3')
    // A tandem/client write (no epoch) at LSN 12 in epoch 2 is newer than a raw write at (1, 15).
    const t1 = w('t', 't1', [20, 21], 12, { node: R })
    delete t1.epoch
    const ops = [w('x', 'x1', [0, 1], 9), t1, r('t', 't1', [22, 23]), r('t', 'x1', [24, 25])]
    const report = checkFaults(history(ops, [promotion(2, 10, 10)]), final(['x1', 't1']))
    assert.equal(report.counts['read-your-writes'], 1, JSON.stringify(report.violations))
    assert.equal(versionOf(2, 12) > versionOf(1, 4_000_000), true)
  })

  test('split-brain-ack: a write invoked after a promotion completed, acknowledged in the older epoch', () => {
    const before = w('a', 'a1', [0, 1], 1)
    const inFlight = w('a', 'a2', [8, 12], 2) // invoked before the promotion completed: not certain
    const after = w('b', 'b1', [15, 16], 3, { node: M })
    const newMaster = w('c', 'c1', [15, 16], 3, { epoch: 2, node: R })
    const promotions = [promotion(2, 2, 10)]
    assert.deepEqual(checkFaults(history([before, inFlight, newMaster], promotions), final(['a1', 'a2', 'c1'])).violations, [])
    const report = checkFaults(history([before, inFlight, after, newMaster], promotions), final(['a1', 'a2', 'b1', 'c1']))
    only(report.counts, 'split-brain-ack')
    assert.match(report.violations[0]!.message, /epoch 1, invoked 5 ms after http:\/\/replica had been promoted to epoch 2/)
  })

  test('split-brain-ack without an epoch: acknowledged by another node than the one promoted last', () => {
    const noEpoch = (op: OperationRecord): OperationRecord => {
      const copy = { ...op }
      delete copy.epoch
      return copy
    }
    const promotions = [promotion(2, 2, 10, R), promotion(3, 5, 30, M)]
    const good = [noEpoch(w('t', 't1', [0, 1], 1, { node: M })), noEpoch(w('t', 't2', [20, 21], 3, { node: R })), noEpoch(w('t', 't3', [40, 41], 6, { node: M }))]
    assert.deepEqual(checkFaults(history(good, promotions), final(['t1', 't2', 't3'])).violations, [])
    // A write retried across the next promotion is acknowledged by the node promoted meanwhile.
    const retried = noEpoch(w('t', 't5', [25, 35], 6, { node: M }))
    assert.deepEqual(checkFaults(history([...good, retried], promotions), final(['t1', 't2', 't3', 't5'])).violations, [])
    const bad = [...good, noEpoch(w('t', 't4', [22, 23], 4, { node: M }))]
    const report = checkFaults(history(bad, promotions), final(['t1', 't2', 't3', 't4']))
    only(report.counts, 'split-brain-ack')
    assert.match(report.violations[0]!.message, /acknowledged by http:\/\/master, invoked 12 ms after http:\/\/replica had been promoted to epoch 2/)
  })

  test('divergence: a node at the master LSN with another checksum', () => {
    assert.deepEqual(checkFaults(history([w('a', 'a1', [0, 1], 1)]), final(['a1'], { checksum: 'c0ffee' })).violations, [])
    only(checkFaults(history([w('a', 'a1', [0, 1], 1)]), final(['a1'], { checksum: 'bad' })).counts, 'divergence')
  })

  test('unhealed: a node behind the master, or one that could not be read', () => {
    assert.deepEqual(checkFaults(history([w('a', 'a1', [0, 1], 1)]), final(['a1'], { lsn: 10 })).violations, [])
    only(checkFaults(history([w('a', 'a1', [0, 1], 1)]), final(['a1'], { lsn: 9 })).counts, 'unhealed')
    const unreadable: FinalState = { master: M, nodes: [node(M, ['a1'])], unreadable: [{ node: R, error: 'ECONNREFUSED' }] }
    only(checkFaults(history([w('a', 'a1', [0, 1], 1)]), unreadable).counts, 'unhealed')
  })

  test('unavailability is the longest time without an acknowledged write', () => {
    const ops = [w('a', 'a1', [0, 10], 1), w('a', 'a2', [11, 500], undefined, { outcome: 'indeterminate' }), w('a', 'a3', [501, 700], 2)]
    const report = checkFaults(history(ops, [], { startedAt: 0, stoppedAt: 750 }), final(['a1', 'a3']))
    assert.equal(report.unavailabilityMs, 690)
  })
})
