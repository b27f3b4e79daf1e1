import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReadCosts, trialLossMsPerSecond } from './read-costs.ts'

const read = (sql: string) => [{ sql }]

test('a read is cheap once it was measured at or under the limit, and no longer after two slow runs in a row', () => {
  const costs = new ReadCosts(50)
  assert.equal(costs.isCheap(read('SELECT 1')), false, 'never seen')
  costs.record(read('SELECT 1'), 12)
  assert.equal(costs.isCheap(read('SELECT 1')), true)
  costs.record(read('SELECT 1'), 50)
  assert.equal(costs.isCheap(read('SELECT 1')), true, 'at the limit')
  costs.record(read('SELECT 1'), 400)
  assert.equal(costs.isCheap(read('SELECT 1')), true, 'one slow run (a preempted thread) is forgiven')
  costs.record(read('SELECT 1'), 20)
  costs.record(read('SELECT 1'), 400)
  assert.equal(costs.isCheap(read('SELECT 1')), true, 'a cheap run in between starts the count again')
  costs.record(read('SELECT 1'), 400)
  assert.equal(costs.isCheap(read('SELECT 1')), false, 'two in a row')
  costs.record(read('SELECT 2'), 51)
  assert.equal(costs.isCheap(read('SELECT 2')), false, 'slow when first measured')
  costs.record(read('SELECT 3'), 10)
  costs.record(read('SELECT 3'), 1001)
  assert.equal(costs.isCheap(read('SELECT 3')), false, 'one run over 20 × the limit is enough')
})

test('reads of several statements, and every read when the limit is 0, go to the read threads', () => {
  const costs = new ReadCosts(50)
  const two = [{ sql: 'SELECT 1' }, { sql: 'SELECT 2' }]
  costs.record(two, 1)
  assert.equal(costs.isCheap(two), false)
  const never = new ReadCosts(0)
  never.record(read('SELECT 1'), 0)
  assert.equal(never.isCheap(read('SELECT 1')), false)
})

test('runInline counts the read and records what it took, even when it throws', () => {
  const costs = new ReadCosts(1_000_000)
  assert.equal(costs.runInline(read('SELECT 1'), () => 'rows'), 'rows')
  assert.equal(costs.isCheap(read('SELECT 1')), true)
  assert.throws(() => costs.runInline(read('SELECT bad'), () => {
    throw new Error('no such column')
  }))
  assert.equal(costs.isCheap(read('SELECT bad')), true)
  assert.equal(costs.inline, 2)
  const strict = new ReadCosts(1000)
  const busy = () => {
    const until = performance.now() + 5
    while (performance.now() < until);
  }
  strict.record(read('SELECT slow'), 1)
  strict.runInline(read('SELECT slow'), busy)
  strict.runInline(read('SELECT slow'), busy)
  assert.equal(strict.isCheap(read('SELECT slow')), false, 'two 5 ms runs are not cheap at 1 ms')
})

test('what it remembers is bounded: the oldest SQL goes first', () => {
  const costs = new ReadCosts(50, 2)
  costs.record(read('a'), 1)
  costs.record(read('b'), 1)
  costs.record(read('a'), 1)
  costs.record(read('c'), 1)
  assert.equal(costs.isCheap(read('a')), false, 'first in, first out')
  assert.equal(costs.isCheap(read('b')), true)
  assert.equal(costs.isCheap(read('c')), true)
})

test('a read never seen is worth a trial on the main thread until this second\'s stopped trials cost trialLossMsPerSecond', () => {
  const costs = new ReadCosts(50)
  assert.equal(costs.isWorthATrial(read('SELECT 1'), 0), true, 'never seen')
  costs.record(read('SELECT 1'), 12)
  assert.equal(costs.isWorthATrial(read('SELECT 1'), 0), false, 'seen: its cost decides (isCheap)')
  assert.equal(costs.isWorthATrial([{ sql: 'SELECT 1' }, { sql: 'SELECT 2' }], 0), false, 'several statements go to the threads')
  assert.equal(new ReadCosts(0).isWorthATrial(read('SELECT 9'), 0), false, 'limit 0: every read goes to the threads')
  for (let ms = 0; ms < trialLossMsPerSecond; ms += 10) {
    assert.equal(costs.isWorthATrial(read(`SELECT ${ms} + 1`), 500), true)
    costs.stoppedOverBudget(read(`SELECT ${ms} + 1`), 10)
  }
  assert.equal(costs.isWorthATrial(read('SELECT 42'), 900), false, 'the second\'s allowance is spent')
  assert.equal(costs.isWorthATrial(read('SELECT 42'), 1500), true, 'a new second')
  assert.equal(costs.trialsOverBudget, trialLossMsPerSecond / 10)
  assert.equal(costs.isShorterThan(read('SELECT 0 + 1'), 1e9), false, 'a read stopped past its budget is known to be slow, however long it ran')
  assert.equal(costs.isCheap(read('SELECT 0 + 1')), false)
})
