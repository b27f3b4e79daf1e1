import { test } from 'node:test'
import assert from 'node:assert/strict'
import { baseUrl } from './options.ts'

test("a node's --master URL is an origin, and one that carries a password is refused without echoing it", () => {
  assert.equal(baseUrl('127.0.0.1:4001'), 'http://127.0.0.1:4001')
  assert.equal(baseUrl('https://db.example:4001/'), 'https://db.example:4001')
  assert.throws(() => baseUrl('http://admin:hunter2@127.0.0.1:4001'), (error: Error) => /must not carry credentials/.test(error.message) && !error.message.includes('hunter2'))
  assert.throws(() => baseUrl('http://admin:hunter2@[bad'), (error: Error) => /is not a URL/.test(error.message) && !error.message.includes('hunter2'))
})
