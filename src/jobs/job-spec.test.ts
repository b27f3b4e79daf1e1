import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemError } from '../shared/errors.ts'
import { afterMax, dedupeKeyCharsMax, defaultJobOptions, parseJobSpec, tasksPerJobMax } from './job-spec.ts'
import { retryDelayMs } from './backoff.ts'
import { Heap } from './heap.ts'

const refused = (body: unknown, field: RegExp) =>
  assert.throws(() => parseJobSpec(body), (error) => isTandemError(error, 'BAD_REQUEST') && field.test(error.message))

test('one input is one task; a list fans out into one task per input, kept as JSON text', () => {
  const one = parseJobSpec({ name: 'resize', input: [1, 2] })
  assert.deepEqual(one.inputs, ['[1,2]'])
  assert.equal(one.isFanOut, false)
  const many = parseJobSpec({ name: 'resize', inputs: [{ a: 1 }, null, 'x'] })
  assert.deepEqual(many.inputs, ['{"a":1}', 'null', '"x"'])
  assert.deepEqual(many.options, defaultJobOptions)
})

test('options are read and checked', () => {
  const spec = parseJobSpec({ name: 'n', input: 1, attempts: 5, backoff: { type: 'fixed', delay_ms: 10, jitter: 0.5 }, timeout_ms: 99, priority: -3, delay_ms: 7, idempotency_key: 'k' })
  assert.deepEqual(spec.options, { attempts: 5, backoff: { type: 'fixed', delayMs: 10, jitter: 0.5, maxMs: defaultJobOptions.backoff.maxMs }, timeoutMs: 99, priority: -3 })
  assert.equal(spec.delayMs, 7)
  assert.equal(spec.idempotencyKey, 'k')
})

test('bad submissions name what is wrong', () => {
  refused([], /JSON object/)
  refused({ input: 1 }, /"name"/)
  refused({ name: 'a b', input: 1 }, /"name"/)
  refused({ name: 'n' }, /exactly one/)
  refused({ name: 'n', input: 1, inputs: [1] }, /exactly one/)
  refused({ name: 'n', inputs: [] }, /non-empty/)
  refused({ name: 'n', inputs: new Array(tasksPerJobMax + 1).fill(0) }, /at most/)
  refused({ name: 'n', input: 1, attempts: 0 }, /"attempts"/)
  refused({ name: 'n', input: 1, attempts: 1.5 }, /"attempts"/)
  refused({ name: 'n', input: 1, timeout_ms: '5s' }, /"timeout_ms"/)
  refused({ name: 'n', input: 1, backoff: { type: 'linear' } }, /"backoff.type"/)
  refused({ name: 'n', input: 1, backoff: { jitter: 2 } }, /"backoff.jitter"/)
  refused({ name: 'n', input: 1, idempotency_key: '' }, /"idempotency_key"/)
  refused({ name: 'n', input: 1, colour: 'red' }, /unknown field "colour"/)
})

test('dedupe: a key, a mode and a window, each checked; debounce takes one input and a delay', () => {
  assert.deepEqual(parseJobSpec({ name: 'n', input: 1, dedupe: { key: 'k' } }).dedupe, { key: 'k', mode: 'drop', windowMs: undefined })
  assert.deepEqual(parseJobSpec({ name: 'n', inputs: [1], dedupe: { key: 'k', window_ms: 60_000 } }).dedupe, { key: 'k', mode: 'drop', windowMs: 60_000 })
  assert.deepEqual(parseJobSpec({ name: 'n', input: 1, delay_ms: 500, dedupe: { key: 'k', mode: 'debounce' } }).dedupe, { key: 'k', mode: 'debounce', windowMs: undefined })
  assert.notEqual(parseJobSpec({ name: 'n', input: 1, dedupe: { key: 'a' } }).hash, parseJobSpec({ name: 'n', input: 1, dedupe: { key: 'b' } }).hash, 'the idempotency hash tells dedupe keys apart')
  refused({ name: 'n', input: 1, dedupe: 'k' }, /"dedupe" must be an object/)
  refused({ name: 'n', input: 1, dedupe: ['k'] }, /"dedupe" must be an object/)
  refused({ name: 'n', input: 1, dedupe: null }, /"dedupe" must be an object/)
  refused({ name: 'n', input: 1, dedupe: {} }, /"dedupe.key"/)
  refused({ name: 'n', input: 1, dedupe: { key: '' } }, /"dedupe.key"/)
  refused({ name: 'n', input: 1, dedupe: { key: 7 } }, /"dedupe.key"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'x'.repeat(dedupeKeyCharsMax + 1) } }, /"dedupe.key"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'k', mode: 'throttle' } }, /"dedupe.mode"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'k', window_ms: 0 } }, /"dedupe.window_ms"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'k', window_ms: 1.5 } }, /"dedupe.window_ms"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'k', ttl: 5 } }, /unknown field "dedupe.ttl"/)
  refused({ name: 'n', input: 1, dedupe: { key: 'k', mode: 'debounce' } }, /needs "delay_ms"/)
  refused({ name: 'n', inputs: [1], delay_ms: 5, dedupe: { key: 'k', mode: 'debounce' } }, /takes one "input"/)
  refused({ name: 'n', input: 1, delay_ms: 5, dedupe: { key: 'k', mode: 'debounce', window_ms: 10 } }, /"dedupe.window_ms" is for mode "drop"/)
})

test('after: a list of job ids, each once, and what their failure does', () => {
  const spec = parseJobSpec({ name: 'n', input: 1, after: ['j_a1', 'j_b2', 'j_a1'], on_failure: 'continue' })
  assert.deepEqual([spec.after, spec.onFailure], [['j_a1', 'j_b2'], 'continue'])
  assert.deepEqual([parseJobSpec({ name: 'n', input: 1 }).after, parseJobSpec({ name: 'n', input: 1 }).onFailure], [[], 'fail'])
  refused({ name: 'n', input: 1, after: 'j_a1' }, /"after"/)
  refused({ name: 'n', input: 1, after: [7] }, /"after"/)
  refused({ name: 'n', input: 1, after: ['../x'] }, /"after"/)
  refused({ name: 'n', input: 1, after: ["j_a' OR 1=1 --"] }, /"after"/)
  refused({ name: 'n', input: 1, after: Array.from({ length: afterMax + 1 }, (_, i) => `j_${i}`) }, /"after"/)
  refused({ name: 'n', input: 1, after: ['j_a1'], on_failure: 'retry' }, /"on_failure"/)
  refused({ name: 'n', input: 1, on_failure: 'continue' }, /"on_failure" is for a job with "after"/)
})

test('backoff: fixed, exponential, capped, with jitter below the delay', () => {
  const fixed = { type: 'fixed' as const, delayMs: 100, jitter: 0, maxMs: 1000 }
  assert.deepEqual([1, 2, 3].map((a) => retryDelayMs(fixed, a)), [100, 100, 100])
  const exponential = { ...fixed, type: 'exponential' as const }
  assert.deepEqual([1, 2, 3, 4, 5].map((a) => retryDelayMs(exponential, a)), [100, 200, 400, 800, 1000])
  assert.equal(retryDelayMs({ ...exponential, jitter: 0.5 }, 1, () => 1), 50)
  assert.equal(retryDelayMs({ ...exponential, jitter: 0.5 }, 1, () => 0), 100)
  assert.equal(retryDelayMs(exponential, 10_000), 1000)
})

test('the heap pops in order', () => {
  const heap = new Heap<number>((a, b) => a < b)
  const values = Array.from({ length: 200 }, (_, i) => (i * 7919) % 211)
  for (const v of values) heap.push(v)
  const out: number[] = []
  while (heap.size > 0) out.push(heap.pop()!)
  assert.deepEqual(out, [...values].sort((a, b) => a - b))
  assert.equal(heap.pop(), undefined)
})
