/**
 * The clusters the benchmark measures: a master and replicas as real `tandem` processes (the
 * tests' harness), or a master inside this process (the library API) with replica processes.
 * Both run synchronous=full and hold the `bench` table on every node before they are returned.
 */
import { waitFor } from '../tests/harness/cluster.ts'
import { execute, get, query, rows } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { TandemNode } from '../src/index.ts'
import type { Resources } from './resources.ts'
import { createTableSql } from './workload.ts'

export interface ProcessCluster {
  master: NodeProcess
  replicas: NodeProcess[]
}

export async function startProcessCluster(resources: Resources, name: string, replicaCount: number): Promise<ProcessCluster> {
  const master = resources.node(
    await NodeProcess.start({ role: 'master', dataDir: resources.path(name, 'master'), args: ['--synchronous', 'full'] }),
  )
  const replicas = await startReplicas(resources, name, master.url, replicaCount)
  const created = await execute(master.url, [createTableSql])
  if (created.status !== 200 || created.body.results[0]?.error !== undefined) {
    throw new Error(`creating the bench table failed: HTTP ${created.status} ${JSON.stringify(created.body)}`)
  }
  await Promise.all(replicas.map((r) => waitForLsn(r.url, created.body.lsn)))
  return { master, replicas }
}

export interface LibraryCluster {
  master: TandemNode
  replicas: NodeProcess[]
  /** Stops the in-process master and kills its replicas; safe to call twice. */
  stop(): Promise<void>
}

/** The master runs in this process; TANDEM_LOG_LEVEL=warn keeps its info lines off the report. */
export async function startLibraryCluster(resources: Resources, name: string, replicaCount: number): Promise<LibraryCluster> {
  process.env['TANDEM_LOG_LEVEL'] ??= 'warn'
  const master = await TandemNode.start({ role: 'master', dataDir: resources.path(name, 'master'), port: 0, synchronous: 'full' })
  const replicas: NodeProcess[] = []
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all(replicas.map((r) => r.kill('SIGKILL')))
      await master.stop()
    })()
    return stopping
  }
  resources.onClose(stop)
  replicas.push(...(await startReplicas(resources, name, master.url, replicaCount)))
  const created = await master.write({ statements: [{ sql: createTableSql }], transaction: false })
  await Promise.all(replicas.map((r) => waitForLsn(r.url, created.lsn)))
  return { master, replicas, stop }
}

async function startReplicas(resources: Resources, name: string, masterUrl: string, count: number): Promise<NodeProcess[]> {
  const replicas: NodeProcess[] = []
  for (let i = 1; i <= count; i++) {
    const replica = resources.node(
      await NodeProcess.start({ role: 'replica', dataDir: resources.path(name, `replica${i}`), masterUrl, args: ['--synchronous', 'full'] }),
    )
    replicas.push(replica)
  }
  // Ready means streaming from the master (GET /readyz answers 200).
  await Promise.all(replicas.map((r) => waitFor(async () => ((await get(`${r.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => `replica ${r.url} streaming`)))
  return replicas
}

/** Resolves once the node at `url` has applied `lsn` (the min_lsn read waits for it). */
export async function waitForLsn(url: string, lsn: number, timeoutSec = 30): Promise<void> {
  const result = await query(url, 'SELECT 1', `level=none&min_lsn=${lsn}&min_lsn_timeout=${timeoutSec}s`)
  if (result.status !== 200) throw new Error(`${url} did not reach LSN ${lsn}: HTTP ${result.status} ${JSON.stringify(result.body)}`)
}

/** The rows in the bench table on the node at `url`. */
export async function rowCount(url: string): Promise<number> {
  const [[count]] = (await rows(url, 'SELECT count(*) FROM bench')) as [[number]]
  return count
}
