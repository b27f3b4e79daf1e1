/**
 * Automatic failover on a real etcd (issue 17, part 3): every node runs with --coordinator. The
 * master holds the master key on its lease; when it dies (or stops renewing), the most
 * up-to-date replica takes the key at a new epoch and becomes master by itself, and the old
 * master comes back as a replica of it. A master that cannot prove its lease acknowledges
 * nothing. Run by `npm run test:etcd` (needs `etcd` on the PATH: apt-get install etcd-server).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { call } from '../harness/http.ts'
import { oneHistory, valuesOf, writeAcknowledged } from './writes.ts'
import { damageRootPage } from '../harness/damage.ts'
import { Etcd } from '../harness/etcd.ts'
import { TcpProxy } from '../harness/tcp-proxy.ts'
import type { NodeProcess } from '../harness/node-process.ts'

let etcd: Etcd
const clusters: Cluster[] = []
before(async () => {
  etcd = await Etcd.start()
})
after(async () => {
  for (const cluster of clusters) await cluster.stop()
  await etcd?.stop()
})

let prefixes = 0
/** Each test its own cluster in etcd (its own prefix), a 2 s lease so that takeovers are quick. */
function coordinated(form: 'http' | 'etcd' = 'http'): { args: string[]; prefix: string } {
  const prefix = `/test${++prefixes}`
  const target = form === 'http' ? ['--coordinator', etcd.url, '--coordinator-prefix', prefix] : ['--coordinator', `etcd://${new URL(etcd.url).host}${prefix}`]
  return { args: [...target, '--coordinator-ttl', '2s'], prefix }
}

async function startCluster(replicas: number, form: 'http' | 'etcd' = 'http'): Promise<{ cluster: Cluster; prefix: string }> {
  const { args, prefix } = coordinated(form)
  const cluster = await Cluster.start({ replicas, masterArgs: args, replicaArgs: args })
  clusters.push(cluster)
  await waitFor(async () => ((await call('GET', `${cluster.master.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => `the master holding its key: ${cluster.logs()}`)
  return { cluster, prefix }
}

async function roleOf(node: NodeProcess): Promise<{ role: string; epoch: number; masterUrl: string | undefined } | undefined> {
  if (!node.isRunning || node.isPaused) return undefined
  const status = await call('GET', `${node.url}/status`).catch(() => undefined)
  if (status?.status !== 200) return undefined
  return { role: status.json.role, epoch: status.json.epoch, masterUrl: status.json.replication?.master_url }
}

/** Waits until exactly one of `nodes` is master and every other one follows it. */
async function newMaster(cluster: Cluster, nodes: NodeProcess[]): Promise<NodeProcess> {
  return waitFor(async () => {
    const roles = await Promise.all(nodes.map(roleOf))
    const masters = nodes.filter((_, i) => roles[i]?.role === 'master')
    if (masters.length !== 1) return undefined
    const master = masters[0]!
    if (!roles.every((r, i) => nodes[i] === master || r?.masterUrl === master.url)) return undefined
    return (await call('GET', `${master.url}/readyz`)).status === 200 ? master : undefined
  }, 30_000, () => `one master, followed by the others: ${cluster.logs(8)}`)
}

test('the master killed: the most up-to-date replica takes over by itself, no acknowledged write is lost, and the old master rejoins as a replica', async () => {
  const { cluster, prefix } = await startCluster(2)
  const old = cluster.master
  const first = await etcd.get(`${prefix}/master`)
  assert.equal(first?.['id'], old.id, 'the master holds the master key')
  const acknowledged = await writeAcknowledged(old.url, 20)
  await old.kill('SIGKILL')
  const master = await newMaster(cluster, cluster.replicas)
  const status = await roleOf(master)
  assert.ok(status !== undefined && status.epoch > Number(first?.['epoch']), `a new epoch: ${JSON.stringify(status)} after ${JSON.stringify(first)}`)
  assert.equal((await etcd.get(`${prefix}/master`))?.['id'], master.id, 'the new master holds the key')
  const after = await call('POST', `${master.url}/db/execute?sync=1`, [['INSERT INTO t(v) VALUES (?)', 'after']])
  assert.equal(after.status, 200, after.text)
  acknowledged.push('after')
  // The old master, started again as it was (`tandem master`), finds the key taken and follows.
  await old.restart()
  await newMaster(cluster, cluster.nodes)
  await oneHistory(cluster.nodes, () => `the three nodes converging: ${cluster.logs(8)}`)
  const values = await valuesOf(old.url)
  assert.deepEqual(values, acknowledged, 'every acknowledged write, in order, on the old master too')
})

test('a paused master acknowledges nothing once its lease may have ended; resumed, it follows the replica that took over', async () => {
  const { cluster } = await startCluster(2)
  const old = cluster.master
  assert.equal((await call('POST', `${old.url}/db/execute?sync=1`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])).status, 200)
  old.pause()
  const master = await newMaster(cluster, cluster.replicas)
  // Sent while the old master is still paused: it reads the request when it wakes, before it
  // has heard from etcd. Acknowledging it would lose it: the new master has taken writes since.
  const onNew = await call('POST', `${master.url}/db/execute?sync=1`, [['INSERT INTO t(v) VALUES (?)', 'on the new master']])
  assert.equal(onNew.status, 200, `${onNew.text}\n${cluster.logs(10)}`)
  const late = call('POST', `${old.url}/db/execute`, [['INSERT INTO t(v) VALUES (?)', 'on the old master']])
  await new Promise((resolve) => setTimeout(resolve, 200))
  old.resume()
  const reply = await late
  assert.notEqual(reply.status, 200, `the old master must not acknowledge: ${reply.text}`)
  assert.ok(['NO_MASTER', 'LEASE_LOST', 'NOT_MASTER'].includes(reply.json.code), reply.text)
  await newMaster(cluster, cluster.nodes)
  await oneHistory(cluster.nodes, () => `the three nodes converging: ${cluster.logs(8)}`)
  const values = await valuesOf(old.url)
  assert.deepEqual(values, ['on the new master'], 'one history: the new master\'s')
})

test('with a coordinator (given as etcd://HOST/PREFIX), an operator promotion is refused while the master holds the key, and force is refused always', async () => {
  const { cluster, prefix } = await startCluster(1, 'etcd')
  assert.equal((await etcd.get(`${prefix}/master`))?.['id'], cluster.master.id, 'the prefix came from the etcd:// URL')
  const replica = cluster.replicas[0]!
  const plain = await call('POST', `${replica.url}/cluster/promote`)
  assert.equal(plain.status, 409, plain.text)
  assert.equal(plain.json.code, 'PROMOTION_REFUSED')
  assert.match(plain.text, /held by node/)
  const forced = await call('POST', `${replica.url}/cluster/promote?force`)
  assert.equal(forced.status, 409, forced.text)
  assert.equal((await roleOf(replica))?.role, 'replica')
  assert.equal((await roleOf(cluster.master))?.role, 'master')
})

test('a master key Tandem did not write is never acted on: the master takes no writes until it is gone, then takes the key', async () => {
  const { args, prefix } = coordinated()
  for (const garbage of ['not json', '{"id":"x","url":"javascript:alert(1)","epoch":9}', '{"id":"x","url":"http://127.0.0.1:1","epoch":-1}', '[]']) {
    await etcd.put(`${prefix}/master`, garbage)
    const cluster = await Cluster.start({ replicas: 0, masterArgs: args })
    clusters.push(cluster)
    const status = await waitFor(async () => {
      const body = (await call('GET', `${cluster.master.url}/status`)).json
      return typeof body.coordinator?.decision === 'string' && body.coordinator.decision.startsWith('wait') ? body : undefined
    }, 10_000, () => cluster.logs())
    assert.match(status.coordinator.decision, /did not write/, garbage)
    const refused = await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE g (id INTEGER PRIMARY KEY)'])
    assert.equal(refused.status, 503, refused.text)
    assert.equal(refused.json.code, 'NO_MASTER')
    assert.equal((await call('GET', `${cluster.master.url}/readyz`)).status, 503)
    await etcd.delete(`${prefix}/master`)
    await waitFor(async () => ((await call('GET', `${cluster.master.url}/readyz`)).status === 200 ? true : undefined), 10_000, () => cluster.logs())
    assert.equal((await call('POST', `${cluster.master.url}/db/execute`, ['CREATE TABLE IF NOT EXISTS g (id INTEGER PRIMARY KEY)'])).status, 200)
    await cluster.stop()
    clusters.splice(clusters.indexOf(cluster), 1)
  }
})

test('replicas started before their master never take the key: the master takes it when it comes up, and they follow it', async () => {
  const { args, prefix } = coordinated()
  const cluster = await Cluster.start({ replicas: 0, masterArgs: args })
  clusters.push(cluster)
  const master = cluster.master
  // The master goes away before any replica heard from it, and its key with it (a cluster that
  // starts replicas first looks the same).
  await master.kill('SIGKILL')
  await waitFor(async () => ((await etcd.get(`${prefix}/master`)) === undefined ? true : undefined), 20_000, () => 'the dead master\'s key to expire')
  const replicas = [await cluster.addReplica(args), await cluster.addReplica(args)]
  // Several rank steps (0.8 s each with a 2 s TTL) with the key free and nobody to follow.
  await new Promise((resolve) => setTimeout(resolve, 4000))
  for (const replica of replicas) assert.equal((await roleOf(replica))?.role, 'replica', `a replica that never heard from a master stays one: ${cluster.logs(5)}`)
  assert.equal(await etcd.get(`${prefix}/master`), undefined)
  await master.restart()
  assert.equal(await newMaster(cluster, cluster.nodes), master)
  assert.equal((await etcd.get(`${prefix}/master`))?.['id'], master.id)
})

test('a master cut off from etcd alone stops acknowledging and a replica takes over: not even an asynchronous write it acknowledged is lost, since it streamed to the replicas until the takeover fenced it', async () => {
  const { args, prefix } = coordinated()
  const link = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(etcd.url).port) })
  try {
    const masterArgs = args.map((a) => (a === etcd.url ? link.url : a))
    const cluster = await Cluster.start({ replicas: 2, masterArgs, replicaArgs: args })
    clusters.push(cluster)
    const old = cluster.master
    await waitFor(async () => ((await call('GET', `${old.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => cluster.logs())
    assert.equal((await call('POST', `${old.url}/db/execute`, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])).status, 200)
    // Asynchronous writes, acknowledged before any replica has them, until the master refuses.
    const acknowledged: string[] = []
    let refused: { status: number; code: string } | undefined
    const writer = (async () => {
      for (let i = 0; refused === undefined && i < 100_000; i++) {
        const reply = await call('POST', `${old.url}/db/execute`, [['INSERT INTO t(v) VALUES (?)', `w${i}`]])
        if (reply.status === 200) acknowledged.push(`w${i}`)
        else refused = { status: reply.status, code: reply.json.code }
      }
    })()
    await waitFor(() => (acknowledged.length >= 50 ? true : undefined), 20_000, () => 'writes acknowledged')
    link.cut()
    await writer
    assert.ok(refused !== undefined && ['NO_MASTER', 'LEASE_LOST', 'NOT_MASTER'].includes(refused.code), JSON.stringify(refused))
    const master = await newMaster(cluster, cluster.nodes)
    assert.notEqual(master, old, 'a replica took over')
    assert.equal((await etcd.get(`${prefix}/master`))?.['id'], master.id)
    const values = new Set((await call('GET', `${master.url}/db/query?level=none&q=${encodeURIComponent('SELECT v FROM t')}`)).json.results[0].values.map((r: unknown[]) => r[0]))
    const lost = acknowledged.filter((v) => !values.has(v))
    assert.deepEqual(lost, [], `${acknowledged.length} acknowledged, ${lost.length} lost`)
  } finally {
    await link.stop()
  }
})

test('a master whose database file is damaged hands the key over: a replica takes over, and the old master copies its database', async () => {
  const { cluster } = await startCluster(2)
  const old = cluster.master
  const acknowledged = await writeAcknowledged(old.url, 50)
  await oneHistory(cluster.nodes, () => cluster.logs())
  // The replicas sleep while the master is down, so that it comes back as the master it was.
  for (const replica of cluster.replicas) replica.pause()
  await old.kill('SIGKILL')
  damageRootPage(old.spec.dataDir, 't')
  await old.restart()
  await waitFor(async () => ((await call('GET', `${old.url}/status`)).json.coordinator?.holds_master_key === true ? true : undefined), 20_000, () => old.log.slice(-10).join('\n'))
  for (const replica of cluster.replicas) replica.resume()
  const hit = await call('POST', `${old.url}/db/execute`, [["INSERT INTO t(v) VALUES ('into the damage')"]])
  assert.equal(hit.status, 503, hit.text)
  const master = await newMaster(cluster, cluster.nodes)
  assert.notEqual(master, old, 'a replica took over from the damaged master')
  await waitFor(async () => ((await call('GET', `${old.url}/status`)).json.replication?.snapshots_installed >= 1 ? true : undefined), 20_000, () => old.log.slice(-10).join('\n'))
  await oneHistory(cluster.nodes, () => cluster.logs(8))
  assert.deepEqual(await valuesOf(old.url), acknowledged, 'the old master holds the healthy copy, without the write that found the damage')
})

test('a replica that lacks writes acknowledged as replicated never takes over; the one that holds them does when it comes back', async () => {
  const { cluster, prefix } = await startCluster(2)
  const old = cluster.master
  const [holder, behind] = cluster.replicas as [NodeProcess, NodeProcess]
  const acknowledged = await writeAcknowledged(old.url, 5)
  await oneHistory(cluster.nodes, () => cluster.logs())
  // Only `holder` confirms what follows: `behind` is down (a paused one would still find the
  // entries in its socket when it wakes).
  await behind.kill('SIGKILL')
  for (let i = 0; i < 10; i++) {
    const reply = await call('POST', `${old.url}/db/execute?sync=1`, [['INSERT INTO t(v) VALUES (?)', `only on the holder ${i}`]])
    assert.equal(reply.status, 200, reply.text)
    assert.equal(reply.json.sync?.confirmed, 1)
    acknowledged.push(`only on the holder ${i}`)
  }
  // Killed right after the last acknowledgement: its LSN is already in etcd, since the master
  // writes it there before it answers.
  await old.kill('SIGKILL')
  assert.ok(Number((await etcd.get(`${prefix}/sync`))?.['lsn']) >= acknowledged.length + 1, 'the last acknowledged LSN is in etcd')
  await holder.kill('SIGKILL')
  await behind.restart()
  // Several rank steps with the key free: the replica that lacks acknowledged writes waits.
  await waitFor(async () => ((await call('GET', `${behind.url}/status`)).json.coordinator?.decision?.includes('lacks writes acknowledged') === true ? true : undefined), 20_000, () => behind.log.slice(-8).join('\n'))
  await new Promise((resolve) => setTimeout(resolve, 3000))
  assert.equal((await roleOf(behind))?.role, 'replica', 'it never took over')
  assert.equal(await etcd.get(`${prefix}/master`), undefined)
  await holder.restart()
  const master = await newMaster(cluster, [holder, behind])
  assert.equal(master, holder)
  await oneHistory([holder, behind], () => cluster.logs(8))
  assert.deepEqual(await valuesOf(behind.url), acknowledged, 'every write acknowledged as replicated survived')
})
