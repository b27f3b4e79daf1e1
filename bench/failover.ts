/**
 * Failover time: a master with two replicas is killed (SIGKILL); from `POST /cluster/promote` on
 * the most up-to-date replica until the first write on it succeeds. Baseline, same repetition:
 * the way back without failover — restart the killed master process on its data and write.
 *
 * Estimate: promotion asks each peer for its position (one loopback round trip, ~1 ms, plus
 * a dead master's connection refusal), closes the follower, raises the epoch (one fsync) and
 * opens the writer: ~10–30 ms. A process restart pays Node's start-up, module loading and
 * opening the database: ~200–400 ms on this machine.
 */
import { execute, get } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { Etcd } from '../tests/harness/etcd.ts'
import { startProcessCluster, waitForLsn } from './bench-cluster.ts'
import type { Resources } from './resources.ts'
import { insertOneSql, payload } from './workload.ts'

export interface FailoverResult {
  promoteToWriteMs: number
  restartToWriteMs: number
  /** Both replicas told to promote at once: from then to the first write on the one that won. */
  racedToWriteMs: number
  /** With --coordinator on etcd (2 s lease): from the master's kill to the first write on the replica that took over; undefined without etcd. */
  automaticToWriteMs: number | undefined
}

/** The lease the automatic failover runs with: etcd's shortest, a takeover's floor. */
export const benchCoordinatorTtl = '2s'

async function firstWriteMs(url: string, started: number, deadlineMs = 30_000): Promise<number> {
  for (;;) {
    const result = await execute(url, [[insertOneSql, payload]]).catch(() => undefined)
    if (result?.status === 200) return performance.now() - started
    if (performance.now() - started > deadlineMs) throw new Error(`no successful write on ${url} within ${deadlineMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

export async function measureFailover(resources: Resources, rep: number): Promise<FailoverResult> {
  const cluster = await startProcessCluster(resources, `failover-${rep}`, 2)
  const written = await execute(cluster.master.url, [[insertOneSql, payload]])
  await Promise.all(cluster.replicas.map((r) => waitForLsn(r.url, written.body.lsn)))
  await cluster.master.kill('SIGKILL')
  const promoted = cluster.replicas[0]!
  const started = performance.now()
  const response = await fetch(`${promoted.url}/cluster/promote`, { method: 'POST', signal: AbortSignal.timeout(30_000) })
  if (!response.ok) throw new Error(`promotion failed: HTTP ${response.status} ${await response.text()}`)
  const promoteToWriteMs = await firstWriteMs(promoted.url, started)
  await Promise.all(cluster.replicas.map((r) => r.kill('SIGKILL')))
  const racedToWriteMs = await racedFailover(resources, rep)

  // Baseline: a lone master, killed and started again on its data.
  const lone = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path(`restart-${rep}`, 'master'), args: ['--synchronous', 'full'] }))
  await execute(lone.url, ['CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)'])
  const restarted = performance.now()
  await lone.restart()
  const restartToWriteMs = await firstWriteMs(lone.url, restarted)
  await lone.kill('SIGKILL')
  const automaticToWriteMs = await automaticFailover(resources, rep)
  return { promoteToWriteMs, restartToWriteMs, racedToWriteMs, automaticToWriteMs }
}

/**
 * Automatic failover: every node with --coordinator on a real etcd; the master is killed and
 * nobody is told anything. Timed from the kill to the first successful write, tried on each
 * replica in turn (a client that knows the nodes and looks for the master). Without etcd on this
 * machine, undefined (the report leaves the figure out).
 */
async function automaticFailover(resources: Resources, rep: number): Promise<number | undefined> {
  let etcd: Etcd
  try {
    etcd = await Etcd.start()
  } catch (error) {
    console.error(`[failover] automatic failover not measured: ${(error as Error).message}`)
    return undefined
  }
  try {
    const args = ['--synchronous', 'full', '--coordinator', etcd.url, '--coordinator-ttl', benchCoordinatorTtl]
    const master = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path(`auto-${rep}`, 'master'), args }))
    for (let i = 0; (await get(`${master.url}/readyz`)).status !== 200; i++) {
      if (i > 2000) throw new Error('the master never held its key')
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const replicas = [1, 2].map((i) => NodeProcess.start({ role: 'replica', dataDir: resources.path(`auto-${rep}`, `replica${i}`), masterUrl: master.url, args }))
    const started = (await Promise.all(replicas)).map((r) => resources.node(r))
    const written = await execute(master.url, ['CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)', [insertOneSql, payload]])
    await Promise.all(started.map((r) => waitForLsn(r.url, written.body.lsn)))
    // Replicas become eligible once they have heard from the master: they have (waitForLsn).
    await master.kill('SIGKILL')
    const killed = performance.now()
    for (;;) {
      for (const replica of started) {
        const result = await execute(replica.url, [[insertOneSql, payload]]).catch(() => undefined)
        if (result?.status === 200) {
          const ms = performance.now() - killed
          await Promise.all(started.map((r) => r.kill('SIGKILL')))
          return ms
        }
      }
      if (performance.now() - killed > 60_000) throw new Error('no replica took over within 60 s')
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
  } finally {
    await etcd.stop()
  }
}

/**
 * Two promotions racing: the master of a 3-node cluster is killed and both replicas are told to
 * promote themselves at the same moment. One wins the epoch by a majority (after split votes, a
 * random wait of 60–120 ms × the round); timed to the first write on the winner.
 */
async function racedFailover(resources: Resources, rep: number): Promise<number> {
  const cluster = await startProcessCluster(resources, `race-${rep}`, 2)
  const written = await execute(cluster.master.url, [[insertOneSql, payload]])
  await Promise.all(cluster.replicas.map((r) => waitForLsn(r.url, written.body.lsn)))
  await cluster.master.kill('SIGKILL')
  const started = performance.now()
  const answers = await Promise.all(cluster.replicas.map((r) => fetch(`${r.url}/cluster/promote`, { method: 'POST', signal: AbortSignal.timeout(30_000) })))
  const winners = cluster.replicas.filter((_, i) => answers[i]!.ok)
  if (winners.length !== 1) throw new Error(`${winners.length} of two racing promotions won: ${(await Promise.all(answers.map((a) => a.text()))).join(' | ')}`)
  const ms = await firstWriteMs(winners[0]!.url, started)
  await Promise.all(cluster.replicas.map((r) => r.kill('SIGKILL')))
  return ms
}
