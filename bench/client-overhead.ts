/**
 * What `tandem/client` costs per read: point SELECTs by primary key through `db.query()`, pinned
 * to one node, beside a bare undici `fetch` of GET /db/query?level=none&q=… on the same node,
 * and beside undici's `request()` of the same GET: the leanest Node HTTP client, the floor under
 * both (fetch wraps the same dispatcher in WHATWG Request, Response and streams).
 *
 * Back-of-envelope estimate, written before measuring (2 cores shared by the caller and the
 * node): a loopback round trip through fastify with a cached prepared point SELECT costs the
 * node ~60–100 µs and a bare fetch ~40–60 µs more on the caller (WHATWG Response, body stream,
 * JSON.parse), so 1 caller sees ~150–250 µs at p50, 4–7k reads/s. The client dispatches on
 * undici directly (lighter than fetch) but adds a JSON request body the node must parse, a
 * deadline (AbortController + timer), the lossless JSON decode of the answer, row objects and
 * the session's min_lsn check on the node: roughly a wash, ~0.9–1.1× fetch's rate. With 16
 * callers both are CPU-bound on the two cores; the client's extra per-request work shows more:
 * ~0.8–1.0×. undici's request() skips fetch's WHATWG layer: ~20–40 µs less per read than fetch.
 *
 * Method: `connect()` with its defaults (session consistency: after the first read every read
 * carries the session's min_lsn, which the idle node already holds), each read pinned with
 * `{ node }`. The baselines share an undici Agent with the client's pool size (16 keep-alive
 * connections per node) and parse the JSON answer. All read the same ids, checking each row's
 * payload. The client binds the id as a parameter; GET can only carry the SQL text, so the
 * baselines inline it, and the ids cycle over `idsCount` rows so that every text stays in the
 * node's prepared-statement cache (256 statements): no reader pays SQLite's prepare. Each
 * repetition runs the readers back to back at each concurrency, rotating which goes first; the
 * ratios are per repetition.
 */
import { Agent, fetch, request } from 'undici'
import { connect, type TandemClient } from '../src/client/index.ts'
import { rows } from '../tests/harness/http.ts'
import { percentile } from './stats.ts'
import { payload } from './workload.ts'

export interface ClientOverheadOptions {
  /** The node every read goes to (a replica). */
  nodeUrl: string
  /** The URLs `connect()` learns the cluster from. */
  seedUrls: readonly string[]
  /** Concurrent closed-loop callers, one run per entry, e.g. [1, 16]. */
  callers: readonly number[]
  reps: number
  /** Each reader's timed run, per concurrency and repetition. */
  seconds: number
  /** Called after each timed run (progress). */
  onRun?: (run: ReadRun & { rep: number; callers: number; reader: ReaderName }) => void
}

export interface ReadRun {
  perSec: number
  requests: number
  p50Us: number
  p99Us: number
}

export interface ClientOverheadLevel {
  callers: number
  /** One run per repetition, in order. */
  client: ReadRun[]
  fetch: ReadRun[]
  request: ReadRun[]
}

export type ReaderName = 'client' | 'fetch' | 'request'

/** The order the readers run in, rotated by one each repetition. */
const readerNames: readonly ReaderName[] = ['client', 'fetch', 'request']

const readSql = 'SELECT id, payload FROM bench WHERE id = ?'
/** A power of two below the node's statement cache capacity (256). */
export const idsCount = 128
/** Latencies kept per run; past it a run still counts requests but keeps no more samples. */
const latencySamplesMax = 1_000_000
const requestTimeoutMs = 10_000
/** The client's default `connectionsPerNode`, given to the baselines' pool too. */
const connectionsPerNode = 16
const warmUpMs = 300

type Reader = (index: number) => Promise<string | undefined>

export async function measureClientOverhead(options: ClientOverheadOptions): Promise<ClientOverheadLevel[]> {
  const { nodeUrl } = options
  const ids = await spreadIds(nodeUrl)
  const urls = ids.map((id) => `${nodeUrl}/db/query?level=none&q=${encodeURIComponent(readSql.replace('?', String(id)))}`)
  const callersMax = Math.max(...options.callers)
  // undici's timeouts bound a request that never answers.
  const agent = new Agent({ connections: connectionsPerNode, pipelining: 1, headersTimeout: requestTimeoutMs, bodyTimeout: requestTimeoutMs })
  let client: TandemClient | undefined
  try {
    const db = (client = await connect(options.seedUrls))
    const readers: Record<ReaderName, Reader> = {
      client: async (index) => {
        const found = await db.query<{ id: number; payload: string }>(readSql, [ids[index]!], { node: nodeUrl })
        return found[0]?.payload
      },
      fetch: async (index) => {
        const response = await fetch(urls[index]!, { dispatcher: agent })
        const body = (await response.json()) as QueryBody
        if (response.status !== 200) throw new Error(`GET /db/query answered HTTP ${response.status}: ${JSON.stringify(body)}`)
        return payloadOf(body)
      },
      request: async (index) => {
        const response = await request(urls[index]!, { dispatcher: agent })
        const body = (await response.body.json()) as QueryBody
        if (response.statusCode !== 200) throw new Error(`GET /db/query answered HTTP ${response.statusCode}: ${JSON.stringify(body)}`)
        return payloadOf(body)
      },
    }
    for (let index = 0; index < ids.length; index++) {
      const found = await Promise.all(readerNames.map((name) => readers[name](index)))
      if (found.some((value) => value !== payload)) throw new Error(`the readers disagree on row ${ids[index]}: ${JSON.stringify(found)}`)
    }
    // Warm-up: JIT every path, open every connection.
    for (const name of readerNames) await closedLoop(readers[name], callersMax, warmUpMs)

    const levels = options.callers.map((callers): ClientOverheadLevel => ({ callers, client: [], fetch: [], request: [] }))
    for (let rep = 0; rep < options.reps; rep++) {
      for (const level of levels) {
        const order = readerNames.map((_, i) => readerNames[(i + rep) % readerNames.length]!)
        for (const name of order) {
          const run = await closedLoop(readers[name], level.callers, options.seconds * 1000)
          level[name].push(run)
          options.onRun?.({ ...run, rep, callers: level.callers, reader: name })
        }
      }
    }
    return levels
  } finally {
    await client?.close()
    await agent.close()
  }
}

interface QueryBody {
  results?: { values?: unknown[][] }[]
}

/** The payload column of the first row of a GET /db/query answer. */
function payloadOf(body: QueryBody): string | undefined {
  const value = body.results?.[0]?.values?.[0]?.[1]
  return typeof value === 'string' ? value : undefined
}

/** `idsCount` ids spread over the bench table on the node, which must hold that many rows. */
async function spreadIds(nodeUrl: string): Promise<number[]> {
  const [[low, high]] = (await rows(nodeUrl, 'SELECT min(id), max(id) FROM bench')) as [[number | null, number | null]]
  if (low === null || high === null || high - low + 1 < idsCount) throw new Error(`the bench table on ${nodeUrl} holds fewer than ${idsCount} ids`)
  return Array.from({ length: idsCount }, (_, i) => low + Math.floor((i * (high - low)) / (idsCount - 1)))
}

/** `callers` loops, each sending its next read when the previous one answered, for `durationMs`. */
async function closedLoop(read: Reader, callers: number, durationMs: number): Promise<ReadRun> {
  const latenciesMs: number[] = []
  let requests = 0
  let next = 0
  let isStopped = false
  const started = performance.now()
  const deadline = started + durationMs
  const caller = async () => {
    try {
      while (!isStopped && performance.now() < deadline) {
        const index = next++ & (idsCount - 1)
        const sent = performance.now()
        const value = await read(index)
        const tookMs = performance.now() - sent
        if (value !== payload) throw new Error(`read ${JSON.stringify(value)} instead of the row's payload`)
        if (latenciesMs.length < latencySamplesMax) latenciesMs.push(tookMs)
        requests++
      }
    } catch (error) {
      // One failure ends the run: a rate with failures in it would be meaningless.
      isStopped = true
      throw error
    }
  }
  const outcomes = await Promise.allSettled(Array.from({ length: callers }, caller))
  const failure = outcomes.find((o) => o.status === 'rejected')
  if (failure !== undefined) throw failure.reason
  const elapsedMs = performance.now() - started
  latenciesMs.sort((a, b) => a - b)
  return {
    perSec: requests / (elapsedMs / 1000),
    requests,
    p50Us: percentile(latenciesMs, 50) * 1000,
    p99Us: percentile(latenciesMs, 99) * 1000,
  }
}
