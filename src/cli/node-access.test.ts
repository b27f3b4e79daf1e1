import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CommandError, NodeAccess } from './node-access.ts'
import { nodeUrl } from './options.ts'

/** A node that answers 401 without credentials and echoes the user it was given. */
let server: Server
let url = ''
const dir = mkdtempSync(join(tmpdir(), 'tandem-node-access-'))

before(async () => {
  server = createServer((request, response) => {
    const header = request.headers.authorization
    if (header === undefined) {
      response.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="tandem"' })
      return response.end(JSON.stringify({ results: [], error: 'GET /status needs the status permission', code: 'UNAUTHORIZED' }))
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ user: Buffer.from(header.replace(/^Basic /, ''), 'base64').toString('utf8') }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
  rmSync(dir, { recursive: true, force: true })
})

/** The `user:password` the node received, through NodeAccess built from these inputs. */
async function userSent(target: string, flags: { user?: string }, env: Record<string, string>): Promise<string> {
  const access = NodeAccess.of(target, flags, env)
  try {
    return ((await access.json('GET', `${access.url}/status`, { timeoutMs: 5_000 })) as { user: string }).user
  } finally {
    await access.close()
  }
}

const withUser = (user: string) => url.replace('//', `//${user}@`)

test('--user beats the URL, which beats TANDEM_USER; a user without a password takes TANDEM_PASSWORD', async () => {
  const env = { TANDEM_USER: 'env-user:env-pw', TANDEM_PASSWORD: 'env-password' }
  assert.equal(await userSent(withUser('url-user:url-pw'), { user: 'flag-user:flag-pw' }, env), 'flag-user:flag-pw')
  assert.equal(await userSent(withUser('url-user:p%40ss'), {}, env), 'url-user:p@ss')
  assert.equal(await userSent(url, {}, env), 'env-user:env-pw')
  assert.equal(await userSent(url, { user: 'alice' }, env), 'alice:env-password')
  assert.equal(await userSent(url, { user: 'alice:a:b' }, {}), 'alice:a:b', 'the password is everything after the first colon')
})

test('the URL a command prints has no credentials in it', () => {
  const access = NodeAccess.of(nodeUrl('bob:hunter2@127.0.0.1:4001'), {}, {})
  assert.equal(access.url, 'http://127.0.0.1:4001')
  void access.close()
})

test('nodeUrl keeps userinfo for NodeAccess and adds http:// to a bare host', () => {
  assert.equal(nodeUrl('https://alice:pw@db.example:4001/status'), 'https://alice:pw@db.example:4001')
  assert.equal(nodeUrl('127.0.0.1:4001'), 'http://127.0.0.1:4001')
})

test('a user without a password, half a client certificate or a CA that is not PEM is a clear error', () => {
  const badRequest = (pattern: RegExp) => (error: unknown) => error instanceof CommandError && error.code === 'BAD_REQUEST' && pattern.test(error.message)
  assert.throws(() => NodeAccess.of(url, { user: 'alice' }, {}), badRequest(/user alice has no password: write --user alice:PASSWORD, or set TANDEM_PASSWORD/))
  const cert = join(dir, 'cert.pem')
  writeFileSync(cert, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n')
  assert.throws(() => NodeAccess.of(url, { cert }, {}), badRequest(/--cert and --key/))
  assert.throws(() => NodeAccess.of(url, {}, { TANDEM_CERT: cert }), badRequest(/--cert and --key/))
  const notPem = join(dir, 'ca.txt')
  writeFileSync(notPem, 'not a certificate')
  assert.throws(() => NodeAccess.of(url, { ca: notPem }, {}), badRequest(/--ca .*ca\.txt is not a PEM file/))
  assert.throws(() => NodeAccess.of(url, {}, { TANDEM_CA: join(dir, 'missing.pem') }), badRequest(/cannot read TANDEM_CA .*missing\.pem/))
})

test("a refusal is a CommandError with the node's code and message", async () => {
  const access = NodeAccess.of(url, {}, {})
  try {
    await assert.rejects(access.json('GET', `${url}/status`, { timeoutMs: 5_000 }), (error) => error instanceof CommandError && error.code === 'UNAUTHORIZED' && error.message === 'GET /status needs the status permission')
  } finally {
    await access.close()
  }
})
