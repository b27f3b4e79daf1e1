import { test } from 'node:test'
import assert from 'node:assert/strict'
import { baseUrl, durationMs } from './options.ts'

test("a node's --master URL is an origin, and one that carries a password is refused without echoing it", () => {
  assert.equal(baseUrl('127.0.0.1:4001'), 'http://127.0.0.1:4001')
  assert.equal(baseUrl('https://db.example:4001/'), 'https://db.example:4001')
  assert.throws(() => baseUrl('http://admin:hunter2@127.0.0.1:4001'), (error: Error) => /must not carry credentials/.test(error.message) && !error.message.includes('hunter2'))
  assert.throws(() => baseUrl('http://admin:hunter2@[bad'), (error: Error) => /is not a URL/.test(error.message) && !error.message.includes('hunter2'))
})

test('--query-timeout takes a Go duration or bare milliseconds, and refuses anything else', () => {
  assert.equal(durationMs('30s'), 30_000)
  assert.equal(durationMs('1m30s'), 90_000)
  assert.equal(durationMs('250ms'), 250)
  assert.equal(durationMs('1500'), 1500)
  assert.equal(durationMs('0'), 0)
  for (const hostile of ['soon', '-1s', '1e9', '30 s', '', 's', '1d', '30s; rm -rf /', '9'.repeat(400) + 'x', '9'.repeat(400)]) {
    assert.throws(() => durationMs(hostile), /use a duration such as 30s/, hostile)
  }
})
