import { test } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidArgumentError } from 'commander'
import { baseUrl, coordinatorPrefix, coordinatorTarget, coordinatorTtlMs, durationMs } from './options.ts'

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

test('--coordinator takes etcd origins, comma-separated; credentials, paths and nonsense are refused without echoing a password', () => {
  assert.deepEqual(coordinatorTarget('http://127.0.0.1:2379'), { urls: ['http://127.0.0.1:2379'] })
  assert.deepEqual(coordinatorTarget('10.0.0.1:2379, https://etcd.example:2379/'), { urls: ['http://10.0.0.1:2379', 'https://etcd.example:2379'] })
  assert.deepEqual(coordinatorTarget('etcd://e1:2379,e2:2379/tandem/prod'), { urls: ['http://e1:2379', 'http://e2:2379'], prefix: '/tandem/prod' })
  assert.deepEqual(coordinatorTarget('etcd://127.0.0.1:2379'), { urls: ['http://127.0.0.1:2379'] })
  assert.throws(() => coordinatorTarget('http://root:hunter2@127.0.0.1:2379'), (error: Error) => /must not carry credentials/.test(error.message) && !error.message.includes('hunter2'))
  assert.throws(() => coordinatorTarget('etcd://root:hunter2@127.0.0.1:2379/x'), (error: Error) => /must not carry credentials/.test(error.message) && !error.message.includes('hunter2'))
  for (const hostile of ['', ',', 'http://127.0.0.1:2379/v3/kv', 'ftp://x', Array(17).fill('http://a:1').join(','), 'etcd://', 'etcd://h:1/a b', 'etcd://h:1/../x']) {
    assert.throws(() => coordinatorTarget(hostile), InvalidArgumentError, hostile)
  }
})

test('--coordinator-prefix is a slash-separated ASCII key path; --coordinator-ttl whole seconds from 2 s to 60 s', () => {
  assert.equal(coordinatorPrefix('/tandem'), '/tandem')
  assert.equal(coordinatorPrefix('/tandem/orders-eu.1'), '/tandem/orders-eu.1')
  for (const hostile of ['', '/', 'tandem', '/tandem/', '/a//b', '/tändem', '/a b', `/${'x'.repeat(65)}`, '/a/b/c/d/e/f/g/h/i']) {
    assert.throws(() => coordinatorPrefix(hostile), InvalidArgumentError, hostile)
  }
  assert.equal(coordinatorTtlMs('5s'), 5000)
  assert.equal(coordinatorTtlMs('2000'), 2000)
  for (const hostile of ['1s', '0', '61s', '2500ms', 'soon']) assert.throws(() => coordinatorTtlMs(hostile), InvalidArgumentError, hostile)
})
