/**
 * Point reads by primary key over HTTP on a replica, beside the HTTP floor; then the same reads
 * with the replica's read pool at 1 and at 2 threads (`--read-threads`), when the build has it.
 *
 * Back-of-envelope estimate, written before measuring (2 cores shared by the replica, the idle
 * master and the load generator): autocannon's 64 keep-alive connections cost the bench process
 * ~10–15 µs per request; the floor answers a fixed body in ~10 µs of its own, so the pair reaches
 * ~60–80k req/s with both cores full (the write floor did ~76k). A Tandem replica adds fastify
 * routing, the query-string parse, the statement cache lookup, a ~2 µs SQLite point read and the
 * JSON answer: ~30–50 µs per read on its event loop → ~20–30k reads/s, ~0.3–0.45× the floor.
 * With 2 read threads the SQLite step moves off the event loop, but the HTTP work stays on it and
 * the load generator holds about a core: on 2 cores, expect ~1.0–1.3× from 1 to 2 threads, not 2×.
 *
 * Method: ids cycle over `idsCount` rows spread over the table (each GET inlines its id, so every
 * SQL text stays in the node's statement cache); every connection cycles through the same paths.
 * The floor answers the exact bytes the replica answers for the first id. Each repetition runs
 * the floor then the replica, back to back; the ratio is per repetition. Read threads: the
 * replica is restarted with `--read-threads 1`, measured, restarted with `--read-threads 2`,
 * measured, in each repetition (it is left running with 2).
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { waitFor } from '../tests/harness/cluster.ts'
import { get, rows } from '../tests/harness/http.ts'
import type { NodeProcess } from '../tests/harness/node-process.ts'
import { processCpuSeconds, withMachineBusy } from './cpu.ts'
import { startHttpFloor } from './http-floor.ts'
import { closedLoop } from './http-load.ts'
import { figure, unavailableFigure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { startStackCeiling } from './stack-ceiling.ts'
import { spread } from './stats.ts'

export const readSql = 'SELECT id, payload FROM bench WHERE id = ?'
/** A power of two below the node's statement cache capacity (1,024), as in client-overhead.ts. */
const idsCount = 128
/**
 * Distinct SQL texts, as applications that inline values send them: far past the statement
 * cache (1,024 statements) and what the node remembers of read costs (1,024 texts), so nearly every read is new to it.
 */
export const distinctTexts = 10_000

export interface HttpReadsSettings {
  reps: number
  seconds: number
  connections: number
}

/** One timed load: its rate, and what the node and the machine spent on it. */
export interface ReadLoad {
  perSec: number
  latencyP50Ms: number
  /** Cores the replica process used (CPU seconds ÷ wall seconds). */
  nodeCores: number | undefined
  /** Share of both cores busy, every process together: 0–1. */
  machineBusy: number | undefined
}

/**
 * Per thread count: point reads (bound by the main thread's HTTP work) and range aggregates
 * (bound by SQLite, the work the pool spreads over cores).
 */
export type ReadThreadsSamples =
  | { available: true; defaultThreads: string; one: ReadLoad[]; two: ReadLoad[]; scanOne: ReadLoad[]; scanTwo: ReadLoad[] }
  | { available: false; reason: string }

export interface HttpReadsSamples {
  floor: ReadLoad[]
  /** node:http running the same SELECT on the replica's file, read-only, on its main thread. */
  ceiling: ReadLoad[]
  replica: ReadLoad[]
  /** The same replica, point reads over distinctTexts ids instead of idsCount. */
  distinct: ReadLoad[]
  readThreads: ReadThreadsSamples
}

const bin = fileURLToPath(new URL('../bin/tandem.js', import.meta.url))

/** Whether this build's `tandem replica` takes --read-threads; if not, why the figure is missing. */
export function readThreadsSupport(): { available: true; defaultThreads: string } | { available: false; reason: string } {
  const help = execFileSync(process.execPath, [bin, 'replica', '--help'], { encoding: 'utf8' })
  const option = /--read-threads[\s\S]*?\(default: ([^)]+)\)/.exec(help)
  if (!help.includes('--read-threads')) {
    return { available: false, reason: '`tandem replica --help` lists no --read-threads option in this build (the worker-thread read pool is not in it yet)' }
  }
  return { available: true, defaultThreads: option?.[1] ?? 'unknown' }
}

/** Rows each SQLite-bound read aggregates: ~1 ms of SQLite work against ~0.03 ms of HTTP work on the main thread. */
export const scanRows = 20_000
/** Connections for the SQLite-bound reads: enough to keep two threads busy, far below the queues. */
const scanConnections = 16

/**
 * GET paths of range aggregates over `scanRows` rows, starting at `idsCount` offsets within the
 * first 2 × scanRows ids: the same pages every time, so the figure measures SQLite's CPU work
 * rather than page reads from the OS (a long table's ranges would not stay in the page cache).
 */
export async function scanPaths(nodeUrl: string): Promise<string[]> {
  const [[low, high]] = (await rows(nodeUrl, 'SELECT min(id), max(id) FROM bench')) as [[number | null, number | null]]
  if (low === null || high === null || high - low + 1 < scanRows * 2) throw new Error(`the bench table on ${nodeUrl} holds fewer than ${scanRows * 2} ids`)
  return Array.from({ length: idsCount }, (_, i) => {
    const from = low + Math.floor((i * scanRows) / (idsCount - 1))
    const sql = `SELECT count(*), sum(length(payload)) FROM bench WHERE id BETWEEN ${from} AND ${from + scanRows - 1}`
    return `/db/query?level=none&q=${encodeURIComponent(sql)}`
  })
}

/** GET paths of point reads of `count` ids spread over the bench table on `nodeUrl`. */
export async function readPaths(nodeUrl: string, count = idsCount): Promise<string[]> {
  const [[low, high]] = (await rows(nodeUrl, 'SELECT min(id), max(id) FROM bench')) as [[number | null, number | null]]
  if (low === null || high === null || high - low + 1 < count) throw new Error(`the bench table on ${nodeUrl} holds fewer than ${count} ids`)
  return Array.from({ length: count }, (_, i) => {
    const id = low + Math.floor((i * (high - low)) / (count - 1))
    return `/db/query?level=none&q=${encodeURIComponent(readSql.replace('?', String(id)))}`
  })
}

/**
 * Closed-loop GETs of `paths` against `url` (autocannon, unless `loop` says), with the CPU the
 * node spent (its process at `pid`, or all of `pid`'s processes together) and the machine's.
 */
export async function readLoad(url: string, paths: readonly string[], connections: number, seconds: number, pid?: number | readonly number[], loop: typeof closedLoop = closedLoop): Promise<ReadLoad> {
  const pids = Array.isArray(pid) ? pid : [pid as number | undefined]
  const cpuBefore = processCpuSeconds(pids)
  const started = performance.now()
  const { result, busy } = await withMachineBusy(() => loop(url, { connections, durationSec: seconds, paths }))
  const cpuAfter = processCpuSeconds(pids)
  const wallSec = (performance.now() - started) / 1000
  return {
    perSec: result.perSec,
    latencyP50Ms: result.latencyP50Ms,
    nodeCores: cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / wallSec,
    machineBusy: busy,
  }
}

export const loadText = (load: ReadLoad) =>
  `${Math.round(load.perSec).toLocaleString('en-US')} reads/s, p50 ${load.latencyP50Ms.toFixed(2)} ms` +
  (load.nodeCores === undefined ? '' : `, node ${load.nodeCores.toFixed(2)} cores`) +
  (load.machineBusy === undefined ? '' : `, machine ${(load.machineBusy * 100).toFixed(0)} % busy`)

export async function measureHttpReads(resources: Resources, replica: NodeProcess, s: HttpReadsSettings, log: (line: string) => void): Promise<HttpReadsSamples> {
  const paths = await readPaths(replica.url)
  const distinctPaths = await readPaths(replica.url, distinctTexts)
  const sample = await fetch(`${replica.url}${paths[0]}`, { signal: AbortSignal.timeout(10_000) })
  const body = await sample.text()
  if (sample.status !== 200 || !body.includes('"values"')) throw new Error(`the point read answered HTTP ${sample.status}: ${body}`)
  const floor = await startHttpFloor(resources, body)
  const support = readThreadsSupport()
  const out: HttpReadsSamples = {
    floor: [],
    ceiling: [],
    replica: [],
    distinct: [],
    readThreads: support.available ? { available: true, defaultThreads: support.defaultThreads, one: [], two: [], scanOne: [], scanTwo: [] } : support,
  }
  const load = (url: string, pid?: number) => readLoad(url, paths, s.connections, s.seconds, pid)
  try {
    log(`[http reads] warming up; read threads: ${support.available ? '1 vs 2' : `not measured: ${support.reason}`}`)
    await closedLoop(floor.url, { connections: s.connections, durationSec: 1, paths })
    await closedLoop(replica.url, { connections: s.connections, durationSec: 1, paths })
    for (let rep = 1; rep <= s.reps; rep++) {
      const tag = `[http reads ${rep}/${s.reps}]`
      out.floor.push(await load(floor.url))
      log(`${tag} node:http floor, ${s.connections} connections: ${loadText(out.floor.at(-1)!)}`)
      // Started for its own measurement only: a second process holding the replica's file open
      // shares its WAL index and its file locks.
      const ceiling = await startStackCeiling(resources, join(replica.spec.dataDir, 'tandem.db'), 'read')
      try {
        await closedLoop(ceiling.url, { connections: s.connections, durationSec: 1, paths })
        out.ceiling.push(await load(ceiling.url))
      } finally {
        await ceiling.stop()
      }
      log(`${tag} node:http + SQLite (the stack's ceiling), ${s.connections} connections: ${loadText(out.ceiling.at(-1)!)}`)
      out.replica.push(await load(replica.url, replica.child?.pid))
      log(`${tag} replica, ${s.connections} connections: ${loadText(out.replica.at(-1)!)}`)
      out.distinct.push(await readLoad(replica.url, distinctPaths, s.connections, s.seconds, replica.child?.pid))
      log(`${tag} replica, ${distinctTexts.toLocaleString('en-US')} distinct SQL texts, ${s.connections} connections: ${loadText(out.distinct.at(-1)!)}`)
    }
  } finally {
    await floor.stop()
  }
  if (out.readThreads.available) {
    const samples = out.readThreads
    const baseArgs = replica.spec.args ?? []
    const scans = await scanPaths(replica.url)
    const withThreads = async (threads: 1 | 2) => {
      await replica.restart({ args: [...baseArgs, '--read-threads', String(threads)] })
      await waitFor(async () => ((await get(`${replica.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => `replica ${replica.url} ready`)
      await closedLoop(replica.url, { connections: s.connections, durationSec: 1, paths })
      const point = await load(replica.url, replica.child?.pid)
      await closedLoop(replica.url, { connections: scanConnections, durationSec: 1, paths: scans })
      const scan = await readLoad(replica.url, scans, scanConnections, s.seconds, replica.child?.pid)
      return { point, scan }
    }
    for (let rep = 1; rep <= s.reps; rep++) {
      const tag = `[read threads ${rep}/${s.reps}]`
      for (const threads of [1, 2] as const) {
        const { point, scan } = await withThreads(threads)
        ;(threads === 1 ? samples.one : samples.two).push(point)
        ;(threads === 1 ? samples.scanOne : samples.scanTwo).push(scan)
        log(`${tag} --read-threads ${threads}: point reads ${loadText(point)}; ${scanRows}-row aggregates, ${scanConnections} connections: ${loadText(scan)}`)
      }
    }
  }
  return out
}

const median = (values: number[]) => spread(values).median
const coresText = (loads: ReadLoad[]) => {
  const cores = loads.map((l) => l.nodeCores).filter((c) => c !== undefined)
  const busy = loads.map((l) => l.machineBusy).filter((b) => b !== undefined)
  return cores.length === 0 || busy.length === 0 ? '' : ` (the replica used ${median(cores).toFixed(2)} cores, the machine was ${(median(busy) * 100).toFixed(0)} % busy)`
}

export function httpReadsFigures(r: HttpReadsSamples, s: HttpReadsSettings): Figure[] {
  const perSec = (loads: ReadLoad[]) => loads.map((l) => l.perSec)
  const c = s.connections
  const threads = r.readThreads.available
    ? [
        figure('http_scans_read_threads_2', `HTTP ${scanRows}-row range aggregates on a replica with --read-threads 2, ${scanConnections} connections (SQLite-bound)`, 'reads/s', perSec(r.readThreads.scanTwo), [
          { label: `the same replica with --read-threads 1`, unit: 'reads/s', samples: perSec(r.readThreads.scanOne) },
        ]),
        figure('http_reads_read_threads_2', `HTTP point reads on a replica with --read-threads 2, ${c} connections (bound by the main thread's HTTP work)`, 'reads/s', perSec(r.readThreads.two), [
          { label: `the same replica with --read-threads 1, ${c} connections`, unit: 'reads/s', samples: perSec(r.readThreads.one) },
        ]),
      ]
    : [unavailableFigure('http_reads_read_threads_2', `HTTP point reads on a replica, --read-threads 2 vs 1, ${c} connections`, 'reads/s', r.readThreads.reason)]
  return [
    figure(`http_reads_${c}`, `HTTP point reads by primary key on a replica, ${c} connections`, 'reads/s', perSec(r.replica), [
      { label: `node:http floor answering the same bytes, ${c} connections`, unit: 'req/s', samples: perSec(r.floor) },
      { label: `node:http running the same SELECT on the replica's file, main thread (the stack's ceiling), ${c} connections`, unit: 'reads/s', samples: perSec(r.ceiling) },
    ]),
    figure('http_reads_distinct', `HTTP point reads on a replica over ${distinctTexts.toLocaleString('en-US')} distinct SQL texts (ids inlined), ${c} connections`, 'reads/s', perSec(r.distinct), [
      { label: `the same reads over ${idsCount} texts, same replica, ${c} connections`, unit: 'reads/s', samples: perSec(r.replica) },
    ]),
    figure(`http_reads_ceiling_${c}`, `The stack's ceiling for the same point reads (node:http + SQLite), ${c} connections`, 'reads/s', perSec(r.ceiling), [
      { label: `node:http floor answering the same bytes, ${c} connections`, unit: 'req/s', samples: perSec(r.floor) },
    ]),
    ...threads,
  ]
}

export function httpReadsNote(r: HttpReadsSamples, s: HttpReadsSettings): string {
  const threads = r.readThreads.available
    ? `Read threads: the replica restarted with --read-threads 1, then 2, in each repetition, and measured with point reads (${s.connections} connections) and with SQLite-bound reads (SELECT count(*), sum(length(payload)) over ${scanRows} consecutive ids, ${idsCount} ranges, ${scanConnections} connections). ` +
      `Point reads with 1 thread${coresText(r.readThreads.one)}, with 2${coresText(r.readThreads.two)}: a point read is a few µs of SQLite and ~30 µs of HTTP on the main thread, so a second thread has nothing to take over. ` +
      `Aggregates with 1 thread${coresText(r.readThreads.scanOne)}, with 2${coresText(r.readThreads.scanTwo)}: here the threads do the work, and the second one uses the second core.`
    : `Read threads 1 vs 2: not measured — ${r.readThreads.reason}.`
  return (
    `HTTP reads: autocannon, ${s.connections} keep-alive connections, GET /db/query?level=none&q=SELECT id, payload FROM bench WHERE id = N over ${idsCount} ids (every SQL text stays prepared), ` +
    `${s.seconds} s per run, against a replica of the main cluster; then the same over ${distinctTexts.toLocaleString('en-US')} ids, each a SQL text of its own, far past what the node keeps prepared or measured (estimate before measuring: a read never seen is tried on the main thread within 1 ms, so it pays a prepare, ~5–10 µs, and no hop: ~0.8–0.9× the 128-text rate)${r.readThreads.available ? ` (default --read-threads, ${r.readThreads.defaultThreads} in this build)` : ''}${coresText(r.replica)}; the floor answers the replica's own answer for the first id, byte for byte. ${threads}`
  )
}
