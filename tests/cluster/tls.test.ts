/**
 * HTTPS and mutual TLS between real nodes, with certificates made by openssl in the test: the
 * replication stream (WSS), forwarded writes, snapshots and a promotion all run over TLS, and a
 * peer without a certificate of the cluster's CA gets nothing.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { makeCertificates } from '../harness/certificates.ts'

const dir = mkdtempSync(join(tmpdir(), 'tandem-tls-'))

const ours = makeCertificates(dir, 'ours')
const theirs = makeCertificates(dir, 'theirs')
const secretFile = join(dir, 'cluster-secret')
writeFileSync(secretFile, 'a test secret of more than sixteen bytes\n')
const mutualTls = ['--tls-cert', ours.cert, '--tls-key', ours.key, '--tls-ca', ours.ca, '--tls-client-auth', '--cluster-secret-file', secretFile]

/** A client of the cluster: trusts our CA and presents our certificate. */
const client = new Agent({ connect: { ca: readFileSync(ours.ca), cert: readFileSync(ours.cert), key: readFileSync(ours.key) } })

async function call(url: string, options: { method?: 'GET' | 'POST'; body?: unknown; dispatcher?: Agent } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await request(url, {
    method: options.method ?? 'GET',
    dispatcher: options.dispatcher ?? client,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body), headers: { 'content-type': 'application/json' } }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  })
  const text = await response.body.text()
  return { status: response.statusCode, body: JSON.parse(text) as Record<string, unknown> }
}

async function checksumOf(url: string): Promise<{ lsn: number; checksum: string }> {
  return (await call(`${url}/db/checksum`)).body as { lsn: number; checksum: string }
}

async function converged(urls: string[], lsn: number): Promise<string> {
  return waitFor(async () => {
    const sums = await Promise.all(urls.map((u) => checksumOf(u).catch(() => undefined)))
    const first = sums[0]
    return first !== undefined && first.lsn >= lsn && sums.every((s) => s?.lsn === first.lsn && s.checksum === first.checksum) ? first.checksum : undefined
  }, 20_000, () => `nodes ${urls.join(', ')} did not converge at LSN ${lsn}`)
}

let cluster: Cluster

before(async () => {
  cluster = await Cluster.start({ replicas: 2, masterArgs: mutualTls, replicaArgs: mutualTls })
})

after(async () => {
  await cluster?.stop()
  await client.close()
  rmSync(dir, { recursive: true, force: true })
})

test('with mutual TLS every node serves HTTPS, replicas stream over WSS, and a write forwarded by a replica reaches every copy', async () => {
  for (const node of cluster.nodes) assert.match(node.url, /^https:\/\//)
  const created = await call(`${cluster.master.url}/db/execute`, { method: 'POST', body: ['CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT)', ['INSERT INTO fruit(name) VALUES (?)', 'apple']] })
  assert.equal(created.status, 200, JSON.stringify(created.body))
  const forwarded = await call(`${cluster.replicas[0]!.url}/db/execute`, { method: 'POST', body: [['INSERT INTO fruit(name) VALUES (?)', 'pear']] })
  assert.equal(forwarded.status, 200, JSON.stringify(forwarded.body))
  await converged(cluster.nodes.map((n) => n.url), forwarded.body['lsn'] as number)
  const status = await call(`${cluster.master.url}/status`)
  assert.equal((status.body['replicas'] as unknown[]).length, 2)
  assert.deepEqual(status.body['security'], { auth: false, cluster_secret: true, tls: true, mutual_tls: true })
})

test('a client without a certificate, or one that does not trust the cluster CA, gets no answer', async () => {
  const noCertificate = new Agent({ connect: { ca: readFileSync(ours.ca) } })
  const otherCa = new Agent({ connect: { ca: readFileSync(theirs.ca), cert: readFileSync(ours.cert), key: readFileSync(ours.key) } })
  const foreignCertificate = new Agent({ connect: { ca: readFileSync(ours.ca), cert: readFileSync(theirs.cert), key: readFileSync(theirs.key) } })
  try {
    for (const [name, dispatcher] of [['no client certificate', noCertificate], ['a server certificate it does not trust', otherCa], ['a client certificate of another CA', foreignCertificate]] as const) {
      await assert.rejects(call(`${cluster.master.url}/db/query?q=SELECT%201`, { dispatcher }), (error: Error) => {
        assert.ok(!/HTTP/.test(error.message), `${name}: the request should fail in the TLS handshake, not with an HTTP answer: ${error.message}`)
        return true
      }, name)
    }
  } finally {
    await Promise.all([noCertificate.close(), otherCa.close(), foreignCertificate.close()])
  }
})

test('a replica with a certificate of another CA is refused and never copies the data', async () => {
  const outsider = await cluster.addReplica(['--tls-cert', theirs.cert, '--tls-key', theirs.key, '--tls-ca', theirs.ca, '--tls-client-auth', '--cluster-secret-file', secretFile])
  try {
    const outsiderClient = new Agent({ connect: { ca: readFileSync(theirs.ca), cert: readFileSync(theirs.cert), key: readFileSync(theirs.key) } })
    try {
      const status = await waitFor(async () => {
        const s = (await call(`${outsider.url}/status`, { dispatcher: outsiderClient })).body as { replication: { state: string; last_problem: string | null; applied_lsn: number } }
        return s.replication.last_problem !== null || s.replication.state !== 'connecting' ? s : undefined
      }, 15_000, () => 'the outsider replica to report why it cannot connect')
      assert.match(status.replication.last_problem ?? '', /certificate/, 'the replica says the TLS handshake failed on a certificate')
      assert.notEqual(status.replication.state, 'streaming')
      assert.equal(status.replication.applied_lsn, 0)
      const master = (await call(`${cluster.master.url}/status`)).body as { replicas: { id: string }[] }
      assert.ok(!master.replicas.some((r) => r.id === outsider.id), 'the master lists no replica that failed the TLS handshake')
    } finally {
      await outsiderClient.close()
    }
  } finally {
    await outsider.kill()
    cluster.replicas = cluster.replicas.filter((r) => r !== outsider)
  }
})

test('a promotion over mutual TLS: the other replica follows the new master and every acknowledged write survives', async () => {
  const before = await call(`${cluster.master.url}/db/execute`, { method: 'POST', body: [['INSERT INTO fruit(name) VALUES (?)', 'plum']] })
  assert.equal(before.status, 200)
  await converged(cluster.nodes.map((n) => n.url), before.body['lsn'] as number)
  await cluster.master.kill()
  const [next, other] = cluster.replicas as [typeof cluster.replicas[0], typeof cluster.replicas[0]]
  const promoted = await call(`${next.url}/cluster/promote`, { method: 'POST' })
  assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
  assert.equal(promoted.body['epoch'], 2)
  const after = await call(`${next.url}/db/execute`, { method: 'POST', body: [['INSERT INTO fruit(name) VALUES (?)', 'fig']] })
  assert.equal(after.status, 200, JSON.stringify(after.body))
  await converged([next.url, other.url], after.body['lsn'] as number)
  const rows = await call(`${other.url}/db/query?level=none&q=${encodeURIComponent('SELECT name FROM fruit ORDER BY id')}`)
  assert.deepEqual((rows.body['results'] as { values: unknown[][] }[])[0]!.values, [['apple'], ['pear'], ['plum'], ['fig']])
})
