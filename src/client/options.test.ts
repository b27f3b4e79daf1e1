import { test } from 'node:test'
import assert from 'node:assert/strict'
import { isTandemClientError } from './client-errors.ts'
import { settingsOf, type ConnectOptions } from './options.ts'

const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

const refusedWith = (pattern: RegExp) => (error: unknown) => isTandemClientError(error, 'BAD_REQUEST') && pattern.test(error.message)

test('auth and tls are copied into the settings, and absent when not given', () => {
  const auth = { username: 'alice', password: 'pw' }
  const tls = { ca: pem, cert: Buffer.from(pem), key: '-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n' }
  const settings = settingsOf({ auth, tls })
  assert.deepEqual(settings.auth, auth)
  assert.deepEqual(settings.tls, tls)
  auth.password = 'changed later'
  assert.equal(settings.auth?.password, 'pw', 'the settings keep their own copy')
  const plain = settingsOf({})
  assert.equal('auth' in plain, false)
  assert.equal('tls' in plain, false)
})

test('auth HTTP Basic cannot carry is refused with BAD_REQUEST', () => {
  const bad: unknown[] = [null, 'alice:pw', { username: '', password: 'pw' }, { username: 'a:b', password: 'pw' }, { username: 'alice' }, { username: 'alice', password: '' }, { username: 7, password: 'pw' }]
  for (const auth of bad) assert.throws(() => settingsOf({ auth } as ConnectOptions), refusedWith(/auth/), JSON.stringify(auth))
  assert.throws(() => settingsOf({ auth: { username: '', password: 'pw' } }), refusedWith(/auth\.username must be a non-empty string/))
})

test('tls must be PEM, and a client certificate comes with its key', () => {
  assert.throws(() => settingsOf({ tls: { ca: '/etc/ssl/ca.pem' } }), refusedWith(/tls\.ca is not PEM.*readFileSync/))
  assert.throws(() => settingsOf({ tls: { ca: 42 } } as unknown as ConnectOptions), refusedWith(/tls\.ca must be PEM text/))
  assert.throws(() => settingsOf({ tls: { cert: pem } }), refusedWith(/tls\.cert and tls\.key go together/))
  assert.throws(() => settingsOf({ tls: 'ca.pem' } as unknown as ConnectOptions), refusedWith(/tls must be/))
  assert.deepEqual(settingsOf({ tls: { ca: pem } }).tls, { ca: pem })
})
