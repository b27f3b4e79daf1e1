import { after, afterEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Cluster, waitFor } from '../harness/cluster.ts'
import { checksum, execute, get, post, rows } from '../harness/http.ts'
import { NodeProcess } from '../harness/node-process.ts'

const bin = fileURLToPath(new URL('../../bin/tandem.js', import.meta.url))

interface Status {
  role: string
  epoch: number
  position: { epoch: number; lsn: number }
  replication?: { state: string; snapshots_installed: number; master_url: string; last_problem: string | null }
}

const status = async (url: string) => (await get<Status>(`${url}/status`)).body

describe('failover', () => {
  const clusters: Cluster[] = []
  const start = async (replicas: number) => {
    const cluster = await Cluster.start({ replicas })
    clusters.push(cluster)
    await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
    return cluster
  }
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) {
      for (const node of [cluster.master, ...cluster.replicas]) node.resume()
      await cluster.stop()
    }
  })

  test('after the master is killed, tandem promote makes a replica the master of a new epoch and the other follows without a snapshot', async () => {
    const cluster = await start(2)
    for (let i = 0; i < 20; i++) await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `before ${i}`]])
    await cluster.converged()
    await cluster.master.kill('SIGKILL')
    const [r1, r2] = cluster.replicas as [NodeProcess, NodeProcess]
    const promoted = spawnSync(process.execPath, [bin, 'promote', r1.url], { encoding: 'utf8', timeout: 30_000 })
    assert.equal(promoted.status, 0, promoted.stderr)
    assert.match(promoted.stdout, /is the master of epoch 2/)
    const written = await execute(r1.url, [["INSERT INTO t(v) VALUES ('after')"]])
    assert.equal(written.status, 200, JSON.stringify(written.body))
    assert.equal(written.headers.get('x-tandem-epoch'), '2')
    // The other replica follows the new master, streaming (no snapshot), and forwards writes to it.
    await waitFor(async () => ((await status(r2.url)).replication?.master_url === r1.url ? true : undefined), 10_000, () => `r2 to follow r1\n${r1.log.slice(-8).join('\n')}\n--\n${r2.log.slice(-8).join('\n')}`)
    const viaR2 = await execute(r2.url, [["INSERT INTO t(v) VALUES ('via r2')"]])
    assert.equal(viaR2.status, 200, JSON.stringify(viaR2.body))
    const [a, b] = await Promise.all([r1, r2].map((n) => waitFor(async () => {
      const sum = await checksum(n.url)
      return sum.lsn === viaR2.body.lsn ? sum : undefined
    }, 10_000)))
    assert.equal(a!.checksum, b!.checksum)
    assert.equal((await status(r2.url)).replication?.snapshots_installed, 0)
    assert.deepEqual(await rows(r1.url, 'SELECT epoch, start_lsn FROM _tandem_epochs ORDER BY epoch'), [[1, 1], [2, a!.lsn - 2]])
  })

  test('promote refuses a replica that is behind another reachable replica, and says which', async () => {
    const cluster = await Cluster.start({ replicas: 1 })
    clusters.push(cluster)
    await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'])
    // A replica that receives everything but applies nothing for a minute: reachable, and behind.
    const behind = await cluster.addReplica(['--apply-delay-ms', '60000'])
    const ahead = cluster.replicas[0]!
    for (let i = 0; i < 5; i++) await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', `only ahead ${i}`]])
    const masterLsn = (await status(cluster.master.url)).position.lsn
    await waitFor(async () => ((await status(ahead.url)).position.lsn === masterLsn ? true : undefined), 10_000)
    await waitFor(async () => ((await status(behind.url)).replication?.state === 'streaming' ? true : undefined), 10_000)
    await cluster.master.kill('SIGKILL')
    const refused = await post<{ code: string; error: string; details: { moreUpToDate: { url: string; lsn: number } } }>(`${behind.url}/cluster/promote`, '')
    assert.equal(refused.status, 409, JSON.stringify(refused.body))
    assert.equal(refused.body.code, 'PROMOTION_REFUSED')
    assert.equal(refused.body.details.moreUpToDate.url, ahead.url)
    assert.equal(refused.body.details.moreUpToDate.lsn, masterLsn)
    assert.match(refused.body.error, /more up to date/)
    assert.equal((await status(behind.url)).role, 'replica', 'nothing changed')
    const ok = await post<{ epoch: number }>(`${ahead.url}/cluster/promote`, '')
    assert.equal(ok.status, 200)
    // The refused promotion fenced the cluster at epoch 2 before it compared positions.
    assert.equal(ok.body.epoch, 3)
    await waitFor(async () => ((await status(behind.url)).replication?.master_url === ahead.url ? true : undefined), 10_000)
    assert.deepEqual(await rows(ahead.url, `SELECT count(*) FROM t WHERE v LIKE 'only ahead%'`), [[5]])
  })

  test('a planned switchover (the old master still up) loses no acknowledged write, even asynchronous ones', async () => {
    const cluster = await start(0)
    // The replica to promote applies 500 ms late: at the promotion it is behind the master.
    const candidate = await cluster.addReplica(['--apply-delay-ms', '500'])
    await cluster.converged()
    const acknowledged: string[] = []
    for (let i = 0; i < 10; i++) {
      const value = `async ${i}`
      if ((await execute(cluster.master.url, [['INSERT INTO t(v) VALUES (?)', value]])).status === 200) acknowledged.push(value)
    }
    const promoted = await post<{ epoch: number; lsn: number }>(`${candidate.url}/cluster/promote`, '')
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
    const values = (await rows(candidate.url, 'SELECT v FROM t ORDER BY id')).map((r) => r[0])
    assert.deepEqual(values, acknowledged)
    // The old master was fenced before the catch-up: it no longer takes writes as a master.
    const late = await execute(cluster.master.url, [["INSERT INTO t(v) VALUES ('late')"]])
    assert.ok(late.status !== 200 || (await status(cluster.master.url)).role === 'replica', `the old master answered ${late.status} as a master`)
  })

  test('an old master rejoins: entries it wrote past the fork point are discarded, kept in a file, and it converges', async () => {
    const cluster = await Cluster.start({ replicas: 0 })
    clusters.push(cluster)
    const old = cluster.master
    // The replica receives entries but applies each only 3 s later: the last write is acknowledged
    // by the master (asynchronous replication) and dies with it, unapplied anywhere else.
    const replica = await cluster.addReplica(['--apply-delay-ms', '3000'])
    await execute(old.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', "INSERT INTO t(v) VALUES ('replicated')"])
    await cluster.converged()
    const lost = await execute(old.url, [["INSERT INTO t(v) VALUES ('never replicated')"]])
    assert.equal(lost.status, 200)
    await old.kill('SIGKILL')
    // One replica of a two-node cluster is no majority: it may not promote itself unless told to.
    const refused = await post<{ code: string; error: string }>(`${replica.url}/cluster/promote`, '')
    assert.equal(refused.status, 409, JSON.stringify(refused.body))
    assert.match(refused.body.error, /1 of the 2 nodes this one knows accepted epoch 2: a promotion needs a majority \(2\)/)
    assert.equal((await post(`${replica.url}/cluster/promote?force`, '')).status, 200)
    await execute(replica.url, [["INSERT INTO t(v) VALUES ('new epoch')"]])
    // The old master comes back on its data; the new master keeps telling it to follow.
    await old.restart()
    await waitFor(async () => {
      const s = await status(old.url)
      return s.role === 'replica' && s.replication?.state === 'streaming' && s.position.lsn === (await status(replica.url)).position.lsn ? true : undefined
    }, 20_000, () => `the old master to rejoin\n${old.log.slice(-10).join('\n')}`)
    assert.equal((await checksum(old.url)).checksum, (await checksum(replica.url)).checksum)
    assert.deepEqual(await rows(old.url, 'SELECT v FROM t ORDER BY id'), [['replicated'], ['new epoch']])
    const discarded = readdirSync(join(old.spec.dataDir, 'discarded'))
    assert.equal(discarded.length, 1)
    const lines = readFileSync(join(old.spec.dataDir, 'discarded', discarded[0]!), 'utf8').trim().split('\n')
    assert.equal(lines.length, 1)
    assert.equal((JSON.parse(lines[0]!) as { lsn: number }).lsn, lost.body.lsn)
    // Restarted by its old command line, it stays what it was told to be.
    await old.restart()
    assert.equal((await status(old.url)).role, 'replica')
  })

  test('a deposed master refuses writes once it learns of the new epoch, and a replica never follows an older master', async () => {
    const cluster = await start(2)
    const old = cluster.master
    const [r1, r2] = cluster.replicas as [NodeProcess, NodeProcess]
    await cluster.converged()
    old.pause()
    await samePosition([r1, r2])
    const promoted = await post(`${r1.url}/cluster/promote`, '')
    assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
    await waitFor(async () => ((await status(r2.url)).replication?.master_url === r1.url ? true : undefined), 10_000)
    old.resume()
    // The old master is told to follow (the new master keeps trying); writes to it are refused.
    const refused = await waitFor(async () => {
      const result = await execute(old.url, [["INSERT INTO t(v) VALUES ('to the deposed master')"]])
      return result.status === 421 || (await status(old.url)).role === 'replica' ? result : undefined
    }, 20_000, () => `the old master to step down\n${old.log.slice(-8).join('\n')}\n--r1\n${r1.log.slice(-8).join('\n')}`)
    assert.ok(refused.status === 421 || refused.status === 200, `a deposed master answers 421, or forwards as a replica: ${refused.status}`)
    await waitFor(async () => ((await status(old.url)).role === 'replica' ? true : undefined), 20_000)
    const all = await Promise.all([r1, r2, old].map((n) => checksum(n.url)))
    await waitFor(async () => {
      const sums = await Promise.all([r1, r2, old].map((n) => checksum(n.url)))
      return sums.every((s) => s.checksum === sums[0]!.checksum && s.lsn === sums[0]!.lsn) ? true : undefined
    }, 20_000, () => JSON.stringify(all))
  })
})

/**
 * Once the master is paused, waits until these replicas hold the same position: an entry the
 * master wrote just before its pause (an internal write, say) may still be on its way to one of
 * them, and a promotion refuses a replica behind another reachable one.
 */
async function samePosition(replicas: NodeProcess[]): Promise<void> {
  await waitFor(async () => {
    const positions = await Promise.all(replicas.map(async (r) => (await checksum(r.url)).lsn))
    return positions.every((p) => p === positions[0]) ? true : undefined
  }, 10_000, () => 'the replicas to hold the same position')
}

/**
 * A replica that knows epoch 2 is pointed back at the deposed master of epoch 1 (the new master
 * is gone, so nobody tells the old one to step down). Fencing refuses; without it the replica
 * follows the deposed master: the negative control shows the check is what protects.
 */
async function pointBackAtDeposedMaster(env: Record<string, string>) {
  const cluster = await Cluster.start({ replicas: 2, env })
  await execute(cluster.master.url, ['CREATE TABLE t (id INTEGER PRIMARY KEY)'])
  await cluster.converged()
  const old = cluster.master
  const [r1, r2] = cluster.replicas as [NodeProcess, NodeProcess]
  old.pause()
  await samePosition([r1, r2])
  const promoted = await post(`${r1.url}/cluster/promote`, '')
  assert.equal(promoted.status, 200, JSON.stringify(promoted.body))
  await waitFor(async () => ((await status(r2.url)).replication?.master_url === r1.url ? true : undefined), 10_000)
  await r1.kill('SIGKILL')
  old.resume()
  const back = await post<{ code: string; error: string }>(`${r2.url}/cluster/follow`, { master: old.url })
  return { cluster, back, r2, old }
}

describe('fencing', () => {
  let cluster: Cluster | undefined
  after(async () => {
    await cluster?.stop()
  })

  test('a replica that knows a newer epoch refuses to follow a deposed master', async () => {
    const run = await pointBackAtDeposedMaster({})
    cluster = run.cluster
    assert.equal(run.back.status, 400)
    assert.match(run.back.body.error, /older than this node's 2/)
    assert.equal((await status(run.r2.url)).replication?.master_url, cluster.replicas[0]!.url, 'it still follows the new master')
  })
})

describe('fencing off (negative control)', () => {
  let cluster: Cluster | undefined
  after(async () => {
    await cluster?.stop()
  })

  test('without fencing the same replica follows the deposed master back', async () => {
    const run = await pointBackAtDeposedMaster({ TANDEM_UNSAFE_DISABLE_FENCING: '1' })
    cluster = run.cluster
    assert.equal(run.back.status, 200, JSON.stringify(run.back.body))
    await waitFor(async () => {
      const s = await status(run.r2.url)
      return s.replication?.master_url === run.old.url && s.replication.state === 'streaming' ? true : undefined
    }, 10_000, () => 'the replica to stream from the deposed master')
  })
})
