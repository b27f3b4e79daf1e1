/**
 * A replica's catch-up rate: kill it (SIGKILL), write `rows` rows on the master in transactions
 * of `rowsPerTransaction` (one log entry each), restart it on the same data directory, and time
 * from its ready line until it has applied the master's LSN (a min_lsn read returns at that
 * moment). Then check the work was real: the replica streamed the log (no snapshot) and holds
 * the master's exact content (equal checksums at the same LSN).
 */
import { checksum, execute, get } from '../tests/harness/http.ts'
import type { ProcessCluster } from './bench-cluster.ts'
import { waitForLsn } from './bench-cluster.ts'
import { insertManySql, payload } from './workload.ts'

export interface CatchUpResult {
  rowsPerSec: number
  catchUpMs: number
  /** Log entries the replica had to apply. */
  entries: number
  /** From the restart to the ready line (not part of catchUpMs). */
  restartMs: number
  /** Writing the rows on the master while the replica was down. */
  writeMs: number
}

export async function measureCatchUp(cluster: ProcessCluster, replicaIndex: number, rows: number, rowsPerTransaction: number): Promise<CatchUpResult> {
  const { master } = cluster
  const replica = cluster.replicas[replicaIndex]!
  const startLsn = (await checksum(master.url)).lsn
  await waitForLsn(replica.url, startLsn)
  await replica.kill('SIGKILL')

  const statement = [insertManySql(rowsPerTransaction), ...Array.from({ length: rowsPerTransaction }, () => payload)]
  const writeStarted = performance.now()
  let lastLsn = startLsn
  for (let written = 0; written < rows; written += rowsPerTransaction) {
    const result = await execute(master.url, [statement])
    if (result.status !== 200 || result.body.results[0]?.error !== undefined) {
      throw new Error(`catch-up write failed: HTTP ${result.status} ${JSON.stringify(result.body)}`)
    }
    lastLsn = result.body.lsn
  }
  const writeMs = performance.now() - writeStarted

  const restartStarted = performance.now()
  await replica.restart()
  const readyAt = performance.now()
  await waitForLsn(replica.url, lastLsn, 120)
  const catchUpMs = performance.now() - readyAt

  const status = (await get<{ replication?: { snapshots_installed?: number } }>(`${replica.url}/status`)).body
  if ((status.replication?.snapshots_installed ?? 0) > 0) {
    throw new Error('the restarted replica bootstrapped from a snapshot instead of streaming the log: this is not a catch-up rate')
  }
  const [masterSum, replicaSum] = await Promise.all([checksum(master.url), checksum(replica.url)])
  if (masterSum.lsn !== replicaSum.lsn || masterSum.checksum !== replicaSum.checksum) {
    throw new Error(`after catch-up the replica differs from the master: ${JSON.stringify({ master: masterSum, replica: replicaSum })}`)
  }
  return { rowsPerSec: rows / (catchUpMs / 1000), catchUpMs, entries: lastLsn - startLsn, restartMs: readyAt - restartStarted, writeMs }
}
