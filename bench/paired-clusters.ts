/**
 * Two clusters that differ in one respect (security on or off, the statement guard on or off),
 * measured back to back in each repetition: 64-connection HTTP writes on each master and point
 * reads on each first replica, with the serving node's CPU per request. Alternating which goes
 * first keeps a drift in the machine's load from favouring either.
 */
import { Agent, request } from 'undici'
import { waitFor } from '../tests/harness/cluster.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { processCpuSeconds } from './cpu.ts'
import { closedLoop, type LoadRequest } from './http-load.ts'
import type { Resources } from './resources.ts'
import { createTableSql, insertManyBody, insertOneBody } from './workload.ts'

export interface PairSettings {
  reps: number
  seconds: number
  connections: number
}

/** How one cluster of the pair starts, and how a client reaches it. */
export interface Variant {
  name: string
  args: string[]
  env?: Record<string, string>
  headers: Record<string, string>
  dispatcher: Agent | undefined
}

export interface PairedCluster {
  master: NodeProcess
  replicas: NodeProcess[]
  headers: Record<string, string>
  dispatcher: Agent | undefined
}

/** Per variant name, one sample per repetition. */
export type Samples<K extends string> = Record<K, number[]>

export interface PairResult<K extends string> {
  writes: Samples<K>
  reads: Samples<K>
  /** µs of the serving node's CPU (the master for writes, the replica for reads) per request. */
  writeCpuUs: Samples<K>
  readCpuUs: Samples<K>
}

const ids = 128
export const pointReadIds = ids

/** Point reads by primary key over the rows startPairedCluster inserts, level=none. */
export const readPaths = Array.from({ length: ids }, (_, i) => `/db/query?level=none&q=${encodeURIComponent(`SELECT id, payload FROM bench WHERE id = ${i + 1}`)}`)

export async function call(url: string, setup: Pick<PairedCluster, 'headers' | 'dispatcher'>, body?: string): Promise<{ status: number; text: string }> {
  const response = await request(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...setup.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
    ...(setup.dispatcher === undefined ? {} : { dispatcher: setup.dispatcher }),
  })
  return { status: response.statusCode, text: await response.body.text() }
}

/** A master and 2 replicas (synchronous=full), the bench table filled and replicated. */
export async function startPairedCluster(resources: Resources, variant: Variant): Promise<PairedCluster> {
  const { name, args } = variant
  const env = variant.env ?? {}
  const master = resources.node(await NodeProcess.start({ role: 'master', dataDir: resources.path(name, 'master'), args: ['--synchronous', 'full', ...args], env }))
  const replicas: NodeProcess[] = []
  for (let i = 1; i <= 2; i++) {
    replicas.push(resources.node(await NodeProcess.start({ role: 'replica', dataDir: resources.path(name, `replica${i}`), masterUrl: master.url, args: ['--synchronous', 'full', ...args], env })))
  }
  const created = await call(`${master.url}/db/execute`, variant, JSON.stringify([createTableSql]))
  if (created.status !== 200) throw new Error(`${name}: creating the bench table failed: HTTP ${created.status} ${created.text}`)
  const filled = await call(`${master.url}/db/execute`, variant, insertManyBody(ids))
  if (filled.status !== 200) throw new Error(`${name}: filling the bench table failed: HTTP ${filled.status} ${filled.text}`)
  const { lsn } = JSON.parse(filled.text) as { lsn: number }
  for (const replica of replicas) {
    await waitFor(async () => ((await call(`${replica.url}/db/query?level=none&min_lsn=${lsn}&q=SELECT%201`, variant)).status === 200 ? true : undefined), 30_000, () => `${name}: ${replica.url} at LSN ${lsn}`)
  }
  return { master, replicas, headers: variant.headers, dispatcher: variant.dispatcher }
}

/**
 * Writes, then reads, on each cluster of the pair in every repetition; `afterRep` runs after
 * both (the security part measures its floors there), given the repetition's order.
 */
export async function measurePair<K extends string>(
  s: PairSettings,
  pair: Record<K, PairedCluster>,
  log: (rep: number, result: PairResult<K>) => void,
  afterRep?: (order: readonly K[]) => Promise<void>,
): Promise<PairResult<K>> {
  const names = Object.keys(pair) as K[]
  const empty = () => Object.fromEntries(names.map((n) => [n, [] as number[]])) as Samples<K>
  const result: PairResult<K> = { writes: empty(), reads: empty(), writeCpuUs: empty(), readCpuUs: empty() }
  /** Requests per second, and µs of the serving node's CPU per request. */
  const load = async (url: string, pid: number | undefined, durationSec: number, work: LoadRequest, headers: Record<string, string>) => {
    const before = processCpuSeconds([pid])
    const run = await closedLoop(url, { connections: s.connections, durationSec, headers, ...work })
    const after = processCpuSeconds([pid])
    return { perSec: run.perSec, cpuUs: before === undefined || after === undefined ? Number.NaN : ((after - before) * 1e6) / run.ok }
  }
  const writes = (setup: PairedCluster, durationSec: number) => load(`${setup.master.url}/db/execute`, setup.master.child?.pid, durationSec, { body: insertOneBody }, setup.headers)
  const reads = (setup: PairedCluster, durationSec: number) => load(setup.replicas[0]!.url, setup.replicas[0]!.child?.pid, durationSec, { paths: readPaths }, setup.headers)
  // Warm both (statement caches, TLS sessions, credential caches, V8's JIT) before timing.
  for (const name of names) {
    await writes(pair[name], 1)
    await reads(pair[name], 1)
  }
  for (let rep = 0; rep < s.reps; rep++) {
    const order = rep % 2 === 0 ? names : [...names].reverse()
    for (const name of order) {
      const { perSec, cpuUs } = await writes(pair[name], s.seconds)
      result.writes[name].push(perSec)
      result.writeCpuUs[name].push(cpuUs)
    }
    for (const name of order) {
      const { perSec, cpuUs } = await reads(pair[name], s.seconds)
      result.reads[name].push(perSec)
      result.readCpuUs[name].push(cpuUs)
    }
    await afterRep?.(order)
    log(rep, result)
  }
  return result
}
