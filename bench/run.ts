/**
 * `npm run bench [-- --json] [--reps N] [--seconds S] [--only jobs]` — Tandem's write throughput,
 * replication lag, catch-up rate, point reads (the client over HTTP, the embedded replica) and
 * jobs, each beside a baseline measured in the same run.
 *
 * Back-of-envelope estimate, written before measuring (2-core VM, virtio disk, Node 20):
 *
 * - Raw SQLite, WAL + synchronous=FULL, one row per transaction: each COMMIT appends a few WAL
 *   frames and fsyncs once. A virtio disk with a write cache answers fsync in ~0.1–0.2 ms, the
 *   INSERT itself costs a few µs: ~5–8k tx/s. 100 rows per transaction amortize the fsync:
 *   ~2–5 µs per row → 200–400k rows/s.
 * - node:http floor: loopback round trip with client and server on the same 2 cores: ~8–12k
 *   req/s with 1 connection (latency-bound, ~100 µs), ~20–30k with 64 (CPU-bound).
 * - Tandem over HTTP, 1 client: the floor's round trip + fastify routing and JSON (~50 µs) + one
 *   pipeline batch (setImmediate, BEGIN, two savepoints, a session, the log append, COMMIT with
 *   its fsync: ~200 µs) + pushing the entry to 2 replicas, which apply and fsync it on the same
 *   2 cores while the client waits for its next turn: ~0.4–0.7 ms → 1.5–2.5k tx/s, a third of
 *   raw SQLite and a fifth of the floor.
 * - Tandem over HTTP, 64 clients: group commit puts tens of requests in one transaction, so
 *   fsyncs and sessions amortize; what remains is per-request CPU (HTTP + JSON + a savepoint and
 *   an INSERT ≈ 40–60 µs on the master) plus the replicas' apply, sharing 2 cores with the load
 *   generator: 10–20k tx/s — above raw SQLite's one-row transactions, below the floor.
 * - The library API, no HTTP: 1 caller ≈ 3–4k tx/s (fsync + replicas' CPU), 64 callers ≈
 *   30–60k tx/s (savepoint + INSERT + session per request, one fsync per batch).
 * - Replication lag: the entry is pushed over a loopback WebSocket right after COMMIT and the
 *   replica applies it on its next event-loop turn with one fsync: ~0.3–1 ms at p50, below the
 *   write's own round trip; p99 a few ms (GC, 4 processes on 2 cores).
 * - Catch-up: the master streams up to 2000 entries per frame and the replica applies up to 5000
 *   entries per transaction, so fsyncs vanish; changeset apply + log append + CRC ≈ 2–5 µs per
 *   row → 100–300k rows/s, near raw SQLite with 100 rows per transaction.
 * - Point reads by primary key through tandem/client, pinned to a replica, beside a bare undici
 *   fetch and undici request() of the same read: 1 caller ~150–250 µs at p50 (4–7k reads/s), the
 *   client ~0.9–1.1× fetch's rate; 16 callers CPU-bound, ~0.8–1.0×; request() ~20–40 µs faster
 *   than fetch per read (client-overhead.ts says why).
 * - Point reads from an embedded replica: a Map lookup and a parameter spread over raw SQLite's
 *   ~1.5–3 µs prepared read: 300–600k reads/s, ~0.85–0.95× raw on the same file (embedded-reads.ts).
 * - Jobs, no-op tasks over 2 replicas × 4 threads: each slot turns over in two commits (the
 *   result's, then the next lease's) plus the hops: ~2–4k tasks/s, 1–2 % of a plain 8-thread
 *   pool; a single-task job ~2.5–4 ms, 4–6 one-row writes' worth (jobs.ts).
 *
 * Method: every figure is measured --reps times (default 3); the report shows the median and the
 * min–max. Baselines run in the same repetition as the figure they serve, back to back with it,
 * so a noisy neighbour slows both and the per-repetition ratio stays meaningful. Lag runs at a
 * moderate fixed rate and at half the measured 64-client HTTP rate (see replication-lag.ts for
 * how commit-to-visible is timed from outside). Progress goes to stderr; the table (or JSON with
 * --json; use `npm run -s bench -- --json` for clean stdout) to stdout; the markdown table to
 * bench/RESULTS.md. `--seconds S` scales every timed run (default 3), `--reps N` the repetitions.
 * `--only jobs` runs the jobs figures alone (~20 s) and prints their markdown rows instead of
 * writing RESULTS.md, whose other rows it would otherwise drop.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { rowCount, startLibraryCluster, startProcessCluster, type ProcessCluster } from './bench-cluster.ts'
import { measureCatchUp, type CatchUpResult } from './catch-up.ts'
import { measureFailover, type FailoverResult } from './failover.ts'
import { idsCount, measureClientOverhead, type ClientOverheadLevel, type ReaderName, type ReadRun } from './client-overhead.ts'
import { measureEmbeddedReads, type EmbeddedReadsResult } from './embedded-reads.ts'
import { startHttpFloor } from './http-floor.ts'
import { closedLoop, type LoadResult } from './http-load.ts'
import { jobsFigures, jobsNote, measureJobs, type JobsSettings } from './jobs.ts'
import { libraryWritesPerSec } from './library-writes.ts'
import { describeMachine, machineLine, type Machine } from './machine.ts'
import { rawBatchedRowsPerSec, rawSingleRowTps } from './raw-sqlite.ts'
import { measureLag, type LagResult } from './replication-lag.ts'
import { figure, markdownTable, textTable, type Figure } from './report.ts'
import { Resources } from './resources.ts'
import { spread } from './stats.ts'
import { insertOneBody } from './workload.ts'

interface Settings {
  reps: number
  /** Each closed-loop throughput run (HTTP and library). */
  loadSeconds: number
  rawSeconds: number
  lagSeconds: number
  /** The moderate lag load; the heavy one is half the measured many-client HTTP rate. */
  lagModerateWritesPerSec: number
  readProbesPerSec: number
  catchUpRows: number
  rowsPerTransaction: number
  manyClients: number
  /** Each reader's timed run in the read figures (the client's, at each concurrency; the embedded replica's). */
  readSeconds: number
  /** Concurrent callers of the client-overhead runs: 1 (latency) and a few (throughput). */
  clientCallers: number[]
  embeddedRows: number
  jobs: JobsSettings
}

function settingsFromArgs(): Settings & { json: boolean; isJobsOnly: boolean } {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      reps: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '3' },
      only: { type: 'string' },
    },
  })
  const reps = Number(values.reps)
  const seconds = Number(values.seconds)
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be an integer ≥ 1')
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number')
  if (values.only !== undefined && values.only !== 'jobs') throw new Error('--only takes one part: jobs')
  return {
    json: values.json,
    isJobsOnly: values.only === 'jobs',
    reps,
    loadSeconds: seconds,
    rawSeconds: Math.max(0.5, Math.round(seconds * (2 / 3) * 10) / 10),
    lagSeconds: Math.max(1, Math.round(seconds * (5 / 3) * 10) / 10),
    lagModerateWritesPerSec: 1000,
    readProbesPerSec: 100,
    catchUpRows: 100_000,
    rowsPerTransaction: 100,
    manyClients: 64,
    readSeconds: Math.max(0.5, Math.round(seconds * (2 / 3) * 10) / 10),
    clientCallers: [1, 16],
    embeddedRows: 100_000,
    jobs: {
      reps,
      replicas: 2,
      concurrency: 4,
      fanOutTasks: Math.max(1000, Math.round((5000 * seconds) / 3 / 1000) * 1000),
      latencyJobs: Math.max(50, Math.round((300 * seconds) / 3)),
      rawMs: Math.max(300, Math.round((1000 * seconds) / 3)),
    },
  }
}

const log = (line: string) => process.stderr.write(`${line}\n`)
const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

interface LagLevel {
  writesPerSec: number
  results: LagResult[]
}

interface CatchUpSamples {
  rawBatched: number[]
  rawOneTransaction: number[]
  catchUp: CatchUpResult[]
}

interface ReadSamples {
  client: ClientOverheadLevel[]
  embedded: EmbeddedReadsResult
}

interface ThroughputSamples {
  rawSingle: number[]
  floor1: number[]
  http1: LoadResult[]
  floorMany: number[]
  httpMany: LoadResult[]
  library1: number[]
  libraryMany: number[]
  /** The same writes with sync=1: acknowledged once a replica committed them. */
  sync1: LoadResult[]
  syncMany: LoadResult[]
}

/** Figures 1–3: writes over HTTP and through the library, beside the floor and raw SQLite. */
async function measureThroughput(resources: Resources, cluster: ProcessCluster, s: Settings): Promise<ThroughputSamples> {
  const floor = await startHttpFloor(resources)
  const library = await startLibraryCluster(resources, 'library', 2)
  const executeUrl = `${cluster.master.url}/db/execute`
  const load = (url: string, connections: number, durationSec = s.loadSeconds) =>
    closedLoop(url, { connections, durationSec, body: insertOneBody })

  log('warming up (JIT, connections, page cache)')
  await load(floor.url, s.manyClients, 1)
  await load(executeUrl, s.manyClients, 1)
  await libraryWritesPerSec(library.master, s.manyClients, 1000)
  rawSingleRowTps(resources.path('raw-warmup'), 300)

  const out: ThroughputSamples = { rawSingle: [], floor1: [], http1: [], floorMany: [], httpMany: [], library1: [], libraryMany: [], sync1: [], syncMany: [] }
  const many = s.manyClients
  for (let rep = 1; rep <= s.reps; rep++) {
    const report = <T>(label: string, unit: string, result: T, perSec: (r: T) => number): T => {
      log(`[throughput ${rep}/${s.reps}] ${label}: ${fmt(perSec(result))} ${unit}`)
      return result
    }
    const same = (value: number) => value
    const tandemLoad = async (connections: number, url = executeUrl) => {
      const before = await rowCount(cluster.master.url)
      const result = await load(url, connections)
      // autocannon counts answers, not outcomes: make sure every 2xx really inserted its row.
      const inserted = (await rowCount(cluster.master.url)) - before
      if (inserted < result.ok) throw new Error(`${result.ok} writes were answered 2xx but only ${inserted} rows were inserted`)
      return result
    }
    out.rawSingle.push(report('raw SQLite, 1 row per transaction', 'tx/s', rawSingleRowTps(resources.path('raw-single'), s.rawSeconds * 1000), same))
    out.floor1.push(report('node:http floor, 1 client', 'req/s', (await load(floor.url, 1)).perSec, same))
    out.http1.push(report('Tandem HTTP, 1 client', 'tx/s', await tandemLoad(1), (r) => r.perSec))
    out.floorMany.push(report(`node:http floor, ${many} clients`, 'req/s', (await load(floor.url, many)).perSec, same))
    out.httpMany.push(report(`Tandem HTTP, ${many} clients`, 'tx/s', await tandemLoad(many), (r) => r.perSec))
    // closedLoop fails on any answer but 200 (a SYNC_TIMEOUT is a 202): every counted write was confirmed.
    out.sync1.push(report('Tandem HTTP sync=1, 1 client', 'tx/s', await tandemLoad(1, `${executeUrl}?sync=1`), (r) => r.perSec))
    out.syncMany.push(report(`Tandem HTTP sync=1, ${many} clients`, 'tx/s', await tandemLoad(many, `${executeUrl}?sync=1`), (r) => r.perSec))
    out.library1.push(report('Tandem library, 1 caller', 'tx/s', await libraryWritesPerSec(library.master, 1, s.loadSeconds * 1000), same))
    out.libraryMany.push(report(`Tandem library, ${many} callers`, 'tx/s', await libraryWritesPerSec(library.master, many, s.loadSeconds * 1000), same))
  }
  // Both stay registered with `resources`; stopping them now keeps them off the next phases' CPU.
  await floor.stop()
  await library.stop()
  return out
}

/** Figure 4: lag at each rate (a moderate fixed one, and half the measured 64-client HTTP rate). */
async function measureLags(cluster: ProcessCluster, s: Settings, rates: number[]): Promise<LagLevel[]> {
  const out: LagLevel[] = []
  for (const writesPerSec of rates) {
    const level: LagLevel = { writesPerSec, results: [] }
    for (let rep = 1; rep <= s.reps; rep++) {
      const result = await measureLag({
        masterUrl: cluster.master.url,
        replicaUrls: cluster.replicas.map((r) => r.url),
        writesPerSec,
        durationMs: s.lagSeconds * 1000,
        readProbesPerSec: s.readProbesPerSec,
      })
      level.results.push(result)
      log(
        `[lag ${fmt(writesPerSec)}/s ${rep}/${s.reps}] sent ${fmt(result.sentWritesPerSec)} writes/s in ${fmt(result.entriesPerSec)} entries/s: ` +
          `lag p50 ${result.lagP50Ms.toFixed(2)} ms, p99 ${result.lagP99Ms.toFixed(2)} ms (${result.lagSamples} samples); ` +
          `write p50 ${result.writeP50Ms.toFixed(2)} ms, p99 ${result.writeP99Ms.toFixed(2)} ms; ` +
          `read-your-write on a replica p50 ${result.readYourWriteP50Ms.toFixed(2)} ms, p99 ${result.readYourWriteP99Ms.toFixed(2)} ms`,
      )
    }
    out.push(level)
  }
  return out
}

/** Figure 5: catch-up after a SIGKILL, beside raw SQLite writing the same rows. */
async function measureCatchUps(resources: Resources, cluster: ProcessCluster, s: Settings): Promise<CatchUpSamples> {
  const out: CatchUpSamples = { rawBatched: [], rawOneTransaction: [], catchUp: [] }
  for (let rep = 1; rep <= s.reps; rep++) {
    const tag = `[catch-up ${rep}/${s.reps}]`
    out.rawBatched.push(rawBatchedRowsPerSec(resources.path('raw-batched'), s.catchUpRows, s.rowsPerTransaction))
    log(`${tag} raw SQLite, ${s.rowsPerTransaction} rows per transaction: ${fmt(out.rawBatched.at(-1)!)} rows/s`)
    out.rawOneTransaction.push(rawBatchedRowsPerSec(resources.path('raw-batched'), s.catchUpRows, s.catchUpRows))
    log(`${tag} raw SQLite, all rows in one transaction: ${fmt(out.rawOneTransaction.at(-1)!)} rows/s`)
    const result = await measureCatchUp(cluster, 0, s.catchUpRows, s.rowsPerTransaction)
    out.catchUp.push(result)
    log(
      `${tag} replica caught up ${fmt(s.catchUpRows)} rows (${result.entries} entries) in ${result.catchUpMs.toFixed(0)} ms: ` +
        `${fmt(result.rowsPerSec)} rows/s (restart ${result.restartMs.toFixed(0)} ms, writing ${result.writeMs.toFixed(0)} ms)`,
    )
  }
  return out
}

const readerLabels: Record<ReaderName, string> = {
  client: 'tandem/client db.query()',
  fetch: 'bare undici fetch of GET /db/query',
  request: 'undici request() of the same GET',
}

/**
 * Figures 6–7: point reads through the client on a replica of the main cluster (idle by now),
 * then, with that cluster stopped, from an embedded replica of a cluster of its own.
 */
async function measureReads(resources: Resources, cluster: ProcessCluster, s: Settings): Promise<ReadSamples> {
  const replica = cluster.replicas.at(-1)!
  const client = await measureClientOverhead({
    nodeUrl: replica.url,
    seedUrls: [cluster.master.url, replica.url],
    callers: s.clientCallers,
    reps: s.reps,
    seconds: s.readSeconds,
    onRun: (r) =>
      log(
        `[client reads ${r.rep + 1}/${s.reps}] ${readerLabels[r.reader]}, ${r.callers === 1 ? '1 caller' : `${r.callers} callers`}: ` +
          `${fmt(r.perSec)} reads/s, p50 ${fmt(r.p50Us)} µs, p99 ${fmt(r.p99Us)} µs`,
      ),
  })
  await Promise.all([cluster.master, ...cluster.replicas].map((node) => node.kill('SIGKILL')))
  log(`[embedded reads] filling ${fmt(s.embeddedRows)} rows, then ${s.reps} × ${s.readSeconds} s per reader`)
  const embedded = await measureEmbeddedReads(resources, { reps: s.reps, seconds: s.readSeconds, rows: s.embeddedRows })
  embedded.embedded.samples.forEach((value, i) => {
    log(`[embedded reads ${i + 1}/${s.reps}] embedded replica ${fmt(value)} reads/s, raw SQLite ${fmt(embedded.raw.samples[i]!)} reads/s`)
  })
  return { client, embedded }
}

function buildFigures(t: ThroughputSamples, lags: LagLevel[], c: CatchUpSamples, r: ReadSamples, s: Settings): Figure[] {
  const many = s.manyClients
  const rawSingle = { label: 'raw SQLite, 1 row per transaction', unit: 'tx/s' as const, samples: t.rawSingle }
  const lagFigures = lags.flatMap((level) => {
    const at = `at ${fmt(level.writesPerSec)} writes/s`
    const of = (pick: (r: LagResult) => number) => level.results.map(pick)
    return [
      figure(`replication_lag_p50_${level.writesPerSec}`, `Replication lag p50 ${at}`, 'ms', of((r) => r.lagP50Ms), [
        { label: 'write latency p50, same load', unit: 'ms', samples: of((r) => r.writeP50Ms) },
      ]),
      figure(`replication_lag_p99_${level.writesPerSec}`, `Replication lag p99 ${at}`, 'ms', of((r) => r.lagP99Ms), [
        { label: 'write latency p99, same load', unit: 'ms', samples: of((r) => r.writeP99Ms) },
      ]),
    ]
  })
  const clientFigures = r.client.flatMap((level) => {
    const callers = level.callers === 1 ? '1 caller' : `${level.callers} callers`
    const baselines = (unit: 'reads/s' | 'µs', pick: (run: ReadRun) => number) =>
      (['fetch', 'request'] as const).map((name) => ({ label: `${readerLabels[name]}, ${callers}`, unit, samples: level[name].map(pick) }))
    return [
      figure(`client_reads_${level.callers}`, `Client point reads on a replica, ${callers}`, 'reads/s', level.client.map((run) => run.perSec), baselines('reads/s', (run) => run.perSec)),
      figure(`client_read_p50_${level.callers}`, `Client point read latency p50, ${callers}`, 'µs', level.client.map((run) => run.p50Us), baselines('µs', (run) => run.p50Us)),
    ]
  })
  return [
    figure('http_writes_1', 'HTTP writes, 1 client', 'tx/s', t.http1.map((r) => r.perSec), [
      { label: 'node:http floor, 1 client', unit: 'req/s', samples: t.floor1 },
      rawSingle,
    ]),
    figure(`http_writes_${many}`, `HTTP writes, ${many} clients`, 'tx/s', t.httpMany.map((r) => r.perSec), [
      { label: `node:http floor, ${many} clients`, unit: 'req/s', samples: t.floorMany },
      rawSingle,
    ]),
    figure('sync_writes_1', 'HTTP writes with sync=1, 1 client', 'tx/s', t.sync1.map((r) => r.perSec), [
      { label: 'the same writes without sync, 1 client', unit: 'tx/s', samples: t.http1.map((r) => r.perSec) },
    ]),
    figure(`sync_writes_${many}`, `HTTP writes with sync=1, ${many} clients`, 'tx/s', t.syncMany.map((r) => r.perSec), [
      { label: `the same writes without sync, ${many} clients`, unit: 'tx/s', samples: t.httpMany.map((r) => r.perSec) },
    ]),
    figure('library_writes_1', 'Library writes, 1 caller', 'tx/s', t.library1, [rawSingle]),
    figure(`library_writes_${many}`, `Library writes, ${many} callers`, 'tx/s', t.libraryMany, [rawSingle]),
    ...lagFigures,
    figure('catch_up', `Replica catch-up, ${fmt(s.catchUpRows)} rows`, 'rows/s', c.catchUp.map((r) => r.rowsPerSec), [
      { label: `raw SQLite, ${s.rowsPerTransaction} rows per transaction`, unit: 'rows/s', samples: c.rawBatched },
      { label: 'raw SQLite, all rows in one transaction', unit: 'rows/s', samples: c.rawOneTransaction },
    ]),
    ...clientFigures,
    figure('embedded_reads', 'Embedded replica point reads by primary key', 'reads/s', r.embedded.embedded.samples, [
      { label: 'raw SQLite, same file', unit: 'reads/s', samples: r.embedded.raw.samples },
    ]),
  ]
}

function notes(s: Settings, lags: LagLevel[]): string[] {
  const median = (values: number[]) => spread(values).median
  const levels = lags
    .map((l) => {
      const sent = fmt(median(l.results.map((r) => r.sentWritesPerSec)))
      const entries = fmt(median(l.results.map((r) => r.entriesPerSec)))
      const ryw = `${median(l.results.map((r) => r.readYourWriteP50Ms)).toFixed(2)}/${median(l.results.map((r) => r.readYourWriteP99Ms)).toFixed(2)} ms`
      return `at ${fmt(l.writesPerSec)}/s (sent ${sent}/s in ${entries} log entries/s) read-your-write p50/p99 ${ryw}`
    })
    .join('; ')
  return [
    'Every write is a one-row INSERT (32-byte text) into a table with an INTEGER PRIMARY KEY. Tandem: a master with 2 replicas attached, all synchronous=full, every process on this one machine. Raw SQLite: WAL + synchronous=FULL through @photostructure/sqlite, in the benchmark process.',
    `Throughput: closed loop for ${s.loadSeconds} s per run — autocannon over keep-alive connections for HTTP (Tandem and a minimal node:http server answering a fixed JSON), async callers of node.write() for the library.`,
    `Lag: open-loop writes at a moderate rate and at half the median ${s.manyClients}-client HTTP rate, ${s.lagSeconds} s per run. The same min_lsn read, parked ahead of the newest LSN, goes to the master and to a replica; lag = the replica's answer − the master's. The simple bound — a min_lsn read on a replica sent when the write is acknowledged, which adds a read round trip — ${levels}.`,
    `Catch-up: a replica is SIGKILLed, ${fmt(s.catchUpRows)} rows are written in transactions of ${s.rowsPerTransaction} (one log entry each), the replica restarts on its data; timed from its ready line until it has applied the master's LSN (checksums verified equal; no snapshot).`,
    `Client reads: tandem/client's db.query('SELECT id, payload FROM bench WHERE id = ?', [id]) pinned to one replica, default options (session consistency, so each read carries the session's min_lsn), beside undici's fetch() and request() of GET /db/query?level=none&q=… with the id inlined, on the same replica over a pool of the same size; closed loop with ${s.clientCallers.join(' and ')} callers, ${s.readSeconds} s per reader and run; ${idsCount} ids, so every SQL text stays prepared on the node.`,
    `Embedded reads: openReplica() in the benchmark process, db.get() of the same SELECT over ${fmt(s.embeddedRows)} rows, beside raw @photostructure/sqlite reading the replica's own file read-only, ${s.readSeconds} s per reader and run.`,
    'Failover: a master with 2 replicas is SIGKILLed; timed from POST /cluster/promote on a replica to the first successful write on it. Baseline: a lone master SIGKILLed and started again on its data, to its first successful write.',
  ]
}

/** The last note: it covers every figure. */
const methodNote = (s: Settings) => `Median of ${s.reps} runs (min–max). Ratios are per run: figure ÷ the baseline measured back to back with it in the same run.`

function markdown(machine: Machine, figures: Figure[], noteLines: string[]): string {
  return [
    '<!-- Written by `npm run bench`: paste between the bench:start and bench:end markers in README.md. -->',
    '',
    `Command: \`npm run bench\` · Machine: ${machineLine(machine)} · ${new Date().toISOString().slice(0, 10)}`,
    '',
    markdownTable(figures),
    '',
    ...noteLines.map((n) => `- ${n}`),
    '',
  ].join('\n')
}

async function main(): Promise<void> {
  const { json, isJobsOnly, ...settings } = settingsFromArgs()
  const machine = describeMachine()
  log(`machine: ${machineLine(machine)}`)
  const resources = new Resources()
  process.once('exit', () => resources.killNow())
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every process the benchmark started`)
      void resources.close().finally(() => process.exit(130))
    })
  }
  const started = performance.now()
  try {
    log(`data under ${resources.root}`)
    const figures: Figure[] = []
    const noteLines: string[] = []
    const details: Record<string, unknown> = {}
    if (!isJobsOnly) {
      const cluster = await startProcessCluster(resources, 'cluster', 2)
      const throughput = await measureThroughput(resources, cluster, settings)
      const heavy = Math.max(100, Math.round(spread(throughput.httpMany.map((r) => r.perSec)).median / 2 / 100) * 100)
      const lags = await measureLags(cluster, settings, [...new Set([Math.min(settings.lagModerateWritesPerSec, heavy), heavy])])
      const catchUps = await measureCatchUps(resources, cluster, settings)
      const reads = await measureReads(resources, cluster, settings)
      const failovers: FailoverResult[] = []
      for (let rep = 1; rep <= settings.reps; rep++) {
        failovers.push(await measureFailover(resources, rep))
        log(`[failover ${rep}/${settings.reps}] promote → first write ${failovers.at(-1)!.promoteToWriteMs.toFixed(0)} ms; restart → first write ${failovers.at(-1)!.restartToWriteMs.toFixed(0)} ms`)
      }
      figures.push(
        ...buildFigures(throughput, lags, catchUps, reads, settings),
        figure('failover', 'Failover: tandem promote → first write on the new master', 'ms', failovers.map((f) => f.promoteToWriteMs), [
          { label: 'restart of a killed master → first write', unit: 'ms', samples: failovers.map((f) => f.restartToWriteMs) },
        ]),
      )
      noteLines.push(...notes(settings, lags))
      Object.assign(details, { throughput, lags, catchUps, reads, failovers })
    }
    // Last: its own cluster, started once every other cluster is stopped.
    const jobs = await measureJobs(resources, settings.jobs, log)
    figures.push(...jobsFigures(jobs, settings.jobs))
    noteLines.push(jobsNote(jobs, settings.jobs), methodNote(settings))
    details['jobs'] = jobs
    const seconds = ((performance.now() - started) / 1000).toFixed(0)
    const resultsPath = fileURLToPath(new URL('./RESULTS.md', import.meta.url))
    // A partial run keeps RESULTS.md whole: its rows are printed, to paste by hand.
    if (!isJobsOnly) writeFileSync(resultsPath, markdown(machine, figures, noteLines))
    if (json) {
      process.stdout.write(`${JSON.stringify({ machine, settings, figures, details }, null, 2)}\n`)
    } else {
      process.stdout.write(`\nTandem benchmark — ${machineLine(machine)}\n\n${textTable(figures)}\n\n${noteLines.map((n) => `* ${n}`).join('\n')}\n`)
      if (isJobsOnly) process.stdout.write(`\n${markdownTable(figures)}\n\n${noteLines.map((n) => `- ${n}`).join('\n')}\n`)
    }
    log(isJobsOnly ? `\ndone; RESULTS.md left as it was (${seconds} s)` : `\nwrote ${resultsPath} (${seconds} s)`)
  } finally {
    await resources.close()
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
})
