import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ApplyLag } from './apply-lag.ts'

test('apply lag: percentiles over the entries applied since a time, newest capacity kept', () => {
  const lag = new ApplyLag(100)
  assert.deepEqual(lag.since(0), { samples: 0, p50Ms: null, p99Ms: null, maxMs: null })
  for (let i = 1; i <= 100; i++) lag.record(1000 + i, 1000 + i - i) // lag i ms
  assert.deepEqual(lag.since(0), { samples: 100, p50Ms: 50, p99Ms: 99, maxMs: 100 })
  assert.equal(lag.since(1091).samples, 10)
  // A clock that runs behind the master's never reports a negative lag.
  lag.record(5000, 5003)
  assert.equal(lag.since(5000).p50Ms, 0)
  // The oldest sample gave way: still 100 kept.
  assert.equal(lag.since(0).samples, 100)
})
