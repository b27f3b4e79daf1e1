import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { TandemError } from '../shared/errors.ts'
import { ClusterSecret, Users } from '../security/index.ts'
import { Gate, isLoopbackHost, permissionFor, type Access } from './gate.ts'

const secret = new ClusterSecret('the cluster secret, long enough')
const users = Users.fromJson([{ username: 'reader', password: 'pw', perms: ['query'] }, { username: '*', perms: ['ready'] }], 'users.json')
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

function requestWith(headers: Record<string, string>, method = 'GET'): IncomingMessage {
  return { headers: { host: '127.0.0.1:4001', ...headers }, method, socket: {} } as unknown as IncomingMessage
}

async function admit(gate: Gate, headers: Record<string, string>, method?: string): Promise<Access | TandemError> {
  return gate.admit(requestWith(headers, method))
}

test('every endpoint names its permission', () => {
  assert.equal(permissionFor('/db/execute'), 'execute')
  assert.equal(permissionFor('/db/query'), 'query')
  assert.equal(permissionFor('/db/request'), 'query')
  assert.equal(permissionFor('/status'), 'status')
  assert.equal(permissionFor('/nodes'), 'status')
  assert.equal(permissionFor('/readyz'), 'ready')
  assert.equal(permissionFor('/db/backup'), 'backup')
  assert.equal(permissionFor('/replication'), 'replicate')
  assert.equal(permissionFor('/replication/snapshot'), 'replicate')
  assert.equal(permissionFor('/cluster/fence'), 'cluster')
  assert.equal(permissionFor('/jobs/abc/cancel'), 'jobs')
  assert.equal(permissionFor('/jobsx'), undefined)
  assert.equal(permissionFor('/schedules'), 'jobs')
  assert.equal(permissionFor('/schedules/nightly'), 'jobs')
  assert.equal(permissionFor('/schedulesx'), undefined)
})

test('an open node (no secret, no mutual TLS) treats every caller as a node', async () => {
  const gate = new Gate({ users: Users.open(), secret: undefined, tls: undefined, host: '127.0.0.1', corsOrigins: [] })
  const access = await admit(gate, {})
  assert.ok(!(access instanceof TandemError) && access.isNode && gate.can(access, 'cluster'))
})

test('with a secret, only a request carrying its token is a node, and a wrong token is refused', async () => {
  const gate = new Gate({ users, secret, tls: undefined, host: '127.0.0.1', corsOrigins: [] })
  const node = await admit(gate, { 'x-tandem-node-token': secret.token })
  assert.ok(!(node instanceof TandemError) && node.isNode && gate.can(node, 'cluster'))
  const wrong = await admit(gate, { 'x-tandem-node-token': new ClusterSecret('another secret, long enough').token })
  assert.ok(wrong instanceof TandemError && wrong.code === 'UNAUTHORIZED' && /cluster secret/.test(wrong.message))
  const client = await admit(gate, { authorization: basic('reader', 'pw') })
  assert.ok(!(client instanceof TandemError) && !client.isNode)
  assert.ok(gate.can(client, 'query') && !gate.can(client, 'execute'))
  assert.throws(() => gate.require(client, 'execute', 'a write'), (e: TandemError) => e.code === 'FORBIDDEN')
  assert.throws(() => gate.requireNode(client, 'fence'), (e: TandemError) => e.code === 'FORBIDDEN')
  const anonymous = await admit(gate, {})
  assert.ok(!(anonymous instanceof TandemError))
  assert.throws(() => gate.require(anonymous, 'query', 'a read'), (e: TandemError) => e.code === 'UNAUTHORIZED')
})

test("a request a replica forwards is checked as the client who sent it, not as the replica", async () => {
  const gate = new Gate({ users, secret, tls: undefined, host: '127.0.0.1', corsOrigins: [] })
  const forwarded = await admit(gate, { 'x-tandem-node-token': secret.token, 'x-tandem-forwarded': '1', authorization: basic('reader', 'pw') })
  assert.ok(!(forwarded instanceof TandemError) && forwarded.isNode && forwarded.isForwarded)
  assert.ok(gate.can(forwarded, 'query') && !gate.can(forwarded, 'execute'))
  assert.throws(() => gate.requireNode(forwarded, 'fence'))
})

test('a node on loopback answers only loopback host names; pages of other origins are refused unless allowed', async () => {
  const gate = new Gate({ users: Users.open(), secret: undefined, tls: undefined, host: '127.0.0.1', corsOrigins: ['http://app.example'] })
  for (const host of ['127.0.0.1:4001', 'localhost:4001', '[::1]:4001', 'LOCALHOST']) assert.ok(!((await admit(gate, { host })) instanceof TandemError), host)
  for (const host of ['evil.example', 'evil.example:4001', '10.0.0.1:4001']) {
    const refused = await admit(gate, { host })
    assert.ok(refused instanceof TandemError && refused.code === 'FORBIDDEN', host)
  }
  const foreign = await admit(gate, { origin: 'http://evil.example' }, 'POST')
  assert.ok(foreign instanceof TandemError && foreign.code === 'FORBIDDEN')
  assert.ok(!((await admit(gate, { origin: 'http://app.example' }, 'POST')) instanceof TandemError))
  assert.ok(!((await admit(gate, { origin: 'http://127.0.0.1:4001' }, 'POST')) instanceof TandemError), 'same origin')
  assert.deepEqual(gate.corsHeaders(requestWith({ origin: 'http://app.example' }))?.['access-control-allow-origin'], 'http://app.example')
  assert.equal(gate.corsHeaders(requestWith({ origin: 'http://evil.example' })), undefined)
})

test('a node listening on every address does not check the Host name (authentication is required there)', async () => {
  const gate = new Gate({ users: Users.open(), secret: undefined, tls: undefined, host: '0.0.0.0', corsOrigins: [] })
  assert.ok(!((await admit(gate, { host: 'db.internal:4001' })) instanceof TandemError))
  assert.ok(isLoopbackHost('127.0.0.5') && isLoopbackHost('::1') && !isLoopbackHost('0.0.0.0'))
})
