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
import { execute } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { startProcessCluster, waitForLsn } from './bench-cluster.ts'
import type { Resources } from './resources.ts'
import { insertOneSql, payload } from './workload.ts'

export interface FailoverResult {
  promoteToWriteMs: number
  restartToWriteMs: number
  /** Both replicas told to promote at once: from then to the first write on the one that won. */
  racedToWriteMs: number
}

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
  return { promoteToWriteMs, restartToWriteMs, racedToWriteMs }
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
