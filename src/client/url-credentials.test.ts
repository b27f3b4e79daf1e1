import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemClientError } from './client-errors.ts'
import { splitUrlCredentials } from './url-credentials.ts'

test('userinfo leaves the URLs and becomes the credentials, percent-decoded', () => {
  const split = splitUrlCredentials(['https://alice:p%40ss%3Aword@db1.example:4001', 'https://db2.example:4001/'])
  assert.deepEqual(split.auth, { username: 'alice', password: 'p@ss:word' })
  assert.deepEqual(split.urls, ['https://db1.example:4001/', 'https://db2.example:4001/'])
  assert.ok(!split.urls.join().includes('alice'))
})

test('URLs without userinfo are kept as given, with no credentials', () => {
  assert.deepEqual(splitUrlCredentials(['http://127.0.0.1:4001']), { urls: ['http://127.0.0.1:4001'], auth: undefined })
})

test('a user without a password, or two different users, is refused without printing the password', () => {
  assert.throws(() => splitUrlCredentials(['http://alice@h:1']), (error) => isTandemClientError(error, 'BAD_REQUEST') && /user alice without a password/.test(error.message) && !/alice@/.test(error.message))
  assert.throws(
    () => splitUrlCredentials(['http://alice:pw-1-x@h:1', 'http://bob:pw-2-y@h:2']),
    (error) => isTandemClientError(error, 'BAD_REQUEST') && /different credentials/.test(error.message) && !/pw-1-x|pw-2-y/.test(error.message),
  )
  assert.deepEqual(splitUrlCredentials(['http://alice:one@h:1', 'http://alice:one@h:2']).auth, { username: 'alice', password: 'one' })
})

test('a URL that does not parse is refused with its userinfo hidden', () => {
  assert.throws(() => splitUrlCredentials(['http://alice:hunter2@bad host:1']), (error) => isTandemClientError(error, 'BAD_REQUEST') && !error.message.includes('hunter2') && /\*\*\*@/.test(error.message))
})
