/**
 * Tandem's etcd client against a real etcd: leases, the compare-and-set that hands out the
 * master key, endpoints that do not answer, and servers that answer something else than etcd.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { EtcdClient } from '../../src/coordinator/etcd-client.ts'
import { isTandemError } from '../../src/shared/errors.ts'
import { Etcd } from '../harness/etcd.ts'

let etcd: Etcd
before(async () => {
  etcd = await Etcd.start()
})
after(async () => {
  await etcd?.stop()
})

test('a lease lives while it is kept alive, and its keys go with it when it is revoked', async () => {
  const client = new EtcdClient([etcd.url], 2000)
  const lease = await client.grantLease(5)
  assert.equal(lease.ttlSeconds, 5)
  assert.equal(await client.keepAlive(lease.id), 5)
  await client.txn([], [{ put: { key: '/c1/k', value: '{"a":1}', lease: lease.id } }])
  assert.deepEqual((await client.range('/c1/k')).map((kv) => [kv.value, kv.lease]), [['{"a":1}', lease.id]])
  await client.revoke(lease.id)
  assert.equal(await client.keepAlive(lease.id), 0, 'a revoked lease is gone')
  assert.deepEqual(await client.range('/c1/k'), [])
})

test('of many nodes taking an absent key at once, exactly one succeeds', async () => {
  const clients = Array.from({ length: 8 }, () => new EtcdClient([etcd.url], 2000))
  const answers = await Promise.all(clients.map((client, i) => client.txn([{ key: '/c2/master', target: 'CREATE', revision: 0 }], [{ put: { key: '/c2/master', value: String(i) } }])))
  assert.equal(answers.filter((a) => a.succeeded).length, 1)
  const winner = answers.findIndex((a) => a.succeeded)
  assert.deepEqual((await clients[0]!.range('/c2/master')).map((kv) => kv.value), [String(winner)])
})

test('a prefix range returns the keys under it and no others', async () => {
  const client = new EtcdClient([etcd.url], 2000)
  await client.txn([], [{ put: { key: '/c3/nodes/a', value: '1' } }, { put: { key: '/c3/nodes/b', value: '2' } }, { put: { key: '/c3/nodesX', value: '3' } }, { put: { key: '/c3/node', value: '4' } }])
  assert.deepEqual((await client.range('/c3/nodes/', { prefix: true })).map((kv) => kv.key), ['/c3/nodes/a', '/c3/nodes/b'])
})

let impostor: Server
let impostorUrl = ''
before(async () => {
  impostor = createServer((request, response) => {
    const answers: Record<string, string> = { '/v3/lease/grant': '{"ID":"1; DROP","TTL":"5"}', '/v3/kv/range': '{"kvs":"nope"}', '/v3/kv/txn': '[1,2]' }
    response.end(answers[request.url ?? ''] ?? 'hello')
  })
  await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve))
  const address = impostor.address()
  impostorUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`
})
after(() => {
  impostor?.close()
})

test('a server that is not etcd gets a clear error, never a guess', async () => {
  const client = new EtcdClient([impostorUrl], 2000)
  for (const call of [() => client.grantLease(5), () => client.range('/x'), () => client.txn([], []), () => client.keepAlive('1')]) {
    await assert.rejects(call(), (error) => isTandemError(error, 'NO_MASTER') && /etcd/.test(error.message))
  }
})

test('an endpoint that does not answer is passed over for the next one; none answering is NO_MASTER', async () => {
  const client = new EtcdClient(['http://127.0.0.1:1', etcd.url], 2000)
  assert.ok((await client.grantLease(5)).id.length > 0)
  const none = new EtcdClient(['http://127.0.0.1:1'], 500)
  await assert.rejects(none.grantLease(5), (error) => isTandemError(error, 'NO_MASTER') && /not reachable/.test(error.message))
})
