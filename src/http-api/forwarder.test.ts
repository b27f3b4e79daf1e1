import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isConnectFailure } from './forwarder.ts'

test('only failures to connect count as "the master never saw it"', () => {
  const refused = Object.assign(new Error('fetch failed'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) })
  assert.equal(isConnectFailure(refused), true)
  assert.equal(isConnectFailure(Object.assign(new Error('timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), true)
  assert.equal(isConnectFailure(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })), false)
  assert.equal(isConnectFailure(Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), false)
  assert.equal(isConnectFailure('nonsense'), false)
})
