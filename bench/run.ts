/**
 * `npm run bench [-- --json] [--reps N] [--seconds S] [--only PART,…] [--snapshot-gb G] [--load-mb M] [--soak-seconds S]`
 * — Tandem's write throughput (HTTP and library), replication lag, catch-up, point reads (HTTP,
 * the client, the embedded replica, read threads), its own SQLite build and tables without a
 * PRIMARY KEY, failover, snapshot bootstrap, loading and dumping a whole database, memory, the
 * scaling curve and jobs, each beside a baseline measured in the same run.
 *
 * What each part costs on the 2-core machine of the README (default settings, 3 repetitions; the
 * parts run in this order, each `--only` name in brackets):
 *
 *   writes           ~115 s  HTTP and library writes, sync=1, lag at two rates (main cluster)
 *   catch-up          ~35 s  500,000 rows, three times (main cluster)
 *   reads             ~50 s  the client's point reads (main cluster), the embedded replica's
 *   http-reads        ~60 s  HTTP point reads vs the floor, over 128 and 10,000 distinct SQL texts; --read-threads 1 vs 2 (main cluster)
 *   vs-rqlite        ~110 s  a 3-node rqlited beside the main cluster: point reads (128 and 10,000 texts), range aggregates, writes; --http-workers 1 vs the default
 *   security          ~35 s  writes and point reads with --auth, a cluster secret and TLS vs without
 *   statement-guard   ~55 s  writes and point reads with statement time limits vs without the guard; /readyz beside long writes
 *   rowid-tables      ~90 s  writes and point reads on Tandem's own SQLite vs the published binding; writes into a table without a PRIMARY KEY vs the keyed table, 64 clients and 1
 *   library-batches   ~15 s  64 callers × 100-row transactions vs raw SQLite
 *   failover           ~10 s
 *   scaling           ~65 s  0, 1, 2, 4 replicas: writes/s, lag; reads/s over 1 and 2 replicas
 *   snapshot          ~45 s  builds a 1 GiB database (~4 s), then three bootstraps (--snapshot-gb)
 *   load             ~150 s  a 100 MiB file and its SQL dump into Tandem and a 3-node rqlited, three times (--load-mb)
 *   soak              ~60 s  --soak-seconds (60) of 64-client writes, RSS at the start and end
 *   jobs              ~15 s
 *
 * Memory (peak RSS of every node) is read throughout and reported for whatever parts ran.
 * In all about 12 minutes, plus the build; with --soak-seconds 300, four more.
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
 * - HTTP point reads on a replica, 64 connections: ~30–50 µs of node CPU per read against the
 *   floor's ~10 µs, both sharing 2 cores with autocannon: ~0.3–0.45× the floor; 2 read threads
 *   ~1.0–1.3× one, since the HTTP work stays on the event loop (http-reads.ts).
 * - Library writes, 64 callers × 100-row transactions: raw SQLite's per-row cost plus a session
 *   changeset and two replicas applying every row on the same cores: ~0.35–0.55× raw's rows/s
 *   (library-batches.ts).
 * - Snapshot bootstrap of 1 GiB: VACUUM INTO, loopback HTTP, write + fsync, open: ~6–10 s, ~4–6×
 *   a stream copy of the file; the replica's peak RSS ~70–100 MB whatever the size
 *   (snapshot-bootstrap.ts).
 * - Loading a 100 MiB SQLite file into a master with 2 replicas (POST /db/load, the replicas copy
 *   it as a snapshot): ~5–8 s, ~15 MiB/s; the dump as SQL text ~1.2–1.5× that (load.ts).
 * - Memory: ~60–120 MB per node; over a write soak RSS settles within a few % (soak.ts).
 * - Scaling: each replica applies every write on the same 2 cores, ~0.8× writes/s per replica
 *   added; reads/s flat from 1 to 2 replicas with the cores already full (scaling.ts).
 * - Tables without a PRIMARY KEY: the rowid is one extra 8-byte key column in each session
 *   change record, ~0.95–1.05× the keyed table's writes; Tandem's own SQLite 3.53 build (-O2,
 *   the published binding's compile options) ~0.95–1.05× the binding's writes and reads
 *   (rowid-tables.ts).
 *
 * Method: every figure is measured --reps times (default 3); the report shows the median and the
 * min–max. Baselines run in the same repetition as the figure they serve, back to back with it,
 * so a noisy neighbour slows both and the per-repetition ratio stays meaningful. Lag runs at a
 * moderate fixed rate and at half the measured 64-client HTTP rate (see replication-lag.ts for
 * how commit-to-visible is timed from outside). Progress goes to stderr; the table (or JSON with
 * --json; use `npm run -s bench -- --json` for clean stdout) to stdout; the markdown table to
 * bench/RESULTS.md and README.md's bench block. `--seconds S` scales every timed run (default 3),
 * `--reps N` the repetitions. `--only PART[,PART…]` runs those parts alone and prints their markdown
 * rows instead of writing RESULTS.md and the README, whose other rows it would otherwise drop.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { rowCount, startLibraryCluster, startProcessCluster, waitForLsn, type ProcessCluster } from './bench-cluster.ts'
import { measureCatchUp, type CatchUpResult } from './catch-up.ts'
import { benchCoordinatorTtl, measureFailover, type FailoverResult } from './failover.ts'
import { idsCount, measureClientOverhead, type ClientOverheadLevel, type ReaderName, type ReadRun } from './client-overhead.ts'
import { measureEmbeddedReads, type EmbeddedReadsResult } from './embedded-reads.ts'
import { startHttpFloor } from './http-floor.ts'
import { closedLoop, type LoadResult } from './http-load.ts'
import { httpReadsFigures, httpReadsNote, measureHttpReads, scanRows, type HttpReadsSettings } from './http-reads.ts'
import { measureVsRqlite, vsRqliteFigures, vsRqliteNote, type VsRqliteSettings } from './vs-rqlite.ts'
import { httpWriteLatency, rawCommitLatency, type LatencySample } from './write-latency.ts'
import { jobsFigures, jobsNote, measureJobs, type JobsSettings } from './jobs.ts'
import { libraryBatchFigures, libraryBatchNote, measureLibraryBatches, type LibraryBatchSettings } from './library-batches.ts'
import { libraryWritesPerSec } from './library-writes.ts'
import { loadFigures, loadNote, measureLoad, type LoadSettings } from './load.ts'
import { describeMachine, machineLine, type Machine } from './machine.ts'
import { memoryFigures, memoryNote, RssSampler } from './memory.ts'
import { rawBatchedRowsPerSec, rawSingleRowTps } from './raw-sqlite.ts'
import { measureLag, type LagResult } from './replication-lag.ts'
import { figure, markdownTable, textTable, type Figure } from './report.ts'
import { Resources } from './resources.ts'
import { measureScaling, scalingMarkdown, scalingNote, scalingSummary, scalingText, type ScalingSamples, type ScalingSettings } from './scaling.ts'
import { measureSnapshotBootstrap, snapshotFigures, snapshotNote, type SnapshotSettings } from './snapshot-bootstrap.ts'
import { measureSoak, soakFigures, soakNote, type SoakSettings } from './soak.ts'
import { measureSecurity, securityFigures, securityNote, type SecuritySettings } from './security.ts'
import { longWriteFigures, longWriteNote, measureLongWrites } from './long-writes.ts'
import { measureStatementGuard, statementGuardFigures, statementGuardNote, type StatementGuardSettings } from './statement-guard.ts'
import { measureRowidTables, rowidTablesFigures, rowidTablesNote, type RowidTablesSettings } from './rowid-tables.ts'
import { assertCeilingReplicated, startStackCeiling, startStackCeilingReplica } from './stack-ceiling.ts'
import { spread } from './stats.ts'
import { insertManySql, insertOneBody, payload } from './workload.ts'

/** The parts `--only` selects, in the order a full run measures them. */
const partNames = ['writes', 'catch-up', 'reads', 'http-reads', 'vs-rqlite', 'security', 'statement-guard', 'rowid-tables', 'library-batches', 'failover', 'scaling', 'snapshot', 'load', 'soak', 'jobs'] as const
type PartName = (typeof partNames)[number]

interface Settings {
  reps: number
  /** Each closed-loop throughput run (HTTP and library). */
  loadSeconds: number
  rawSeconds: number
  /** Writes timed one at a time per repetition for the 1-client latency percentiles. */
  latencyWrites: number
  /** Writes timed one every sparseGapMs. */
  sparseWrites: number
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
  httpReads: HttpReadsSettings
  vsRqlite: VsRqliteSettings
  security: SecuritySettings
  statementGuard: StatementGuardSettings
  rowidTables: RowidTablesSettings
  libraryBatches: LibraryBatchSettings
  scaling: ScalingSettings
  snapshot: SnapshotSettings
  load: LoadSettings
  soak: SoakSettings
  jobs: JobsSettings
}

function settingsFromArgs(): Settings & { json: boolean; parts: ReadonlySet<PartName>; isFull: boolean } {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      reps: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '3' },
      only: { type: 'string' },
      'snapshot-gb': { type: 'string', default: '1' },
      'load-mb': { type: 'string', default: '100' },
      'soak-seconds': { type: 'string', default: '60' },
    },
  })
  const reps = Number(values.reps)
  const seconds = Number(values.seconds)
  const snapshotGib = Number(values['snapshot-gb'])
  const loadMb = Number(values['load-mb'])
  const soakSeconds = Number(values['soak-seconds'])
  if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps must be an integer ≥ 1')
  if (!(seconds > 0)) throw new Error('--seconds must be a positive number')
  if (!(snapshotGib > 0)) throw new Error('--snapshot-gb must be a positive number')
  if (!(loadMb >= 10)) throw new Error('--load-mb must be at least 10')
  if (!(soakSeconds >= 10)) throw new Error('--soak-seconds must be at least 10')
  const only = values.only?.split(',').map((name) => name.trim())
  for (const name of only ?? []) {
    if (!(partNames as readonly string[]).includes(name)) throw new Error(`--only takes parts separated by commas, of: ${partNames.join(', ')}`)
  }
  const scaled = (factor: number, min: number) => Math.max(min, Math.round(seconds * factor * 10) / 10)
  return {
    json: values.json,
    parts: new Set((only ?? partNames) as PartName[]),
    isFull: only === undefined,
    reps,
    loadSeconds: seconds,
    latencyWrites: Math.max(500, Math.round((2000 * seconds) / 3)),
    sparseWrites: Math.max(300, Math.round((1000 * seconds) / 3)),
    rawSeconds: scaled(2 / 3, 0.5),
    lagSeconds: scaled(5 / 3, 1),
    lagModerateWritesPerSec: 1000,
    readProbesPerSec: 100,
    catchUpRows: 500_000,
    rowsPerTransaction: 100,
    manyClients: 64,
    readSeconds: scaled(2 / 3, 0.5),
    clientCallers: [1, 16],
    embeddedRows: 100_000,
    httpReads: { reps, seconds, connections: 64 },
    vsRqlite: { reps, seconds, connections: 64 },
    security: { reps, seconds, connections: 64 },
    statementGuard: { reps, seconds, connections: 64 },
    rowidTables: { reps, seconds, connections: 64 },
    libraryBatches: { reps, seconds, callers: 64, rowsPerTransaction: 100, rawRows: 300_000 },
    scaling: { reps, seconds: scaled(2 / 3, 1), connections: 64, replicaCounts: [0, 1, 2, 4], readProbesPerSec: 100 },
    snapshot: { reps, gib: snapshotGib, writesPerSec: 1000 },
    load: { reps, mb: loadMb, sliceRows: 2000 },
    soak: { seconds: soakSeconds, connections: 64 },
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

/** The pause after each sparse write: longer than --stream-linger-ms, so no commit is held. */
const sparseGapMs = 2
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

interface ThroughputSamples {
  rawSingle: number[]
  floor1: number[]
  http1: LoadResult[]
  floorMany: number[]
  /** node:http + SQLite group commit, no log or replicas (stack-ceiling.ts). */
  ceilingMany: number[]
  /** The same ceiling streaming each batch's statements to two minimal replicas. */
  replicatedCeilingMany: number[]
  httpMany: LoadResult[]
  library1: number[]
  libraryMany: number[]
  /** The same writes with sync=1: acknowledged once a replica committed them. */
  sync1: LoadResult[]
  syncMany: LoadResult[]
  /** One writer, one request at a time, timed per request: Tandem, the floor, raw SQLite's commit. */
  latency1: LatencySample[]
  floorLatency1: LatencySample[]
  ceilingLatency1: LatencySample[]
  replicatedCeilingLatency1: LatencySample[]
  rawCommitLatency: LatencySample[]
  /** One write every sparseGapMs: Tandem, and the ceiling with two replicas. */
  sparseLatency1: LatencySample[]
  replicatedCeilingSparseLatency1: LatencySample[]
}

/** Figures 1–3: writes over HTTP and through the library, beside the floor and raw SQLite. */
async function measureThroughput(resources: Resources, cluster: ProcessCluster, s: Settings): Promise<ThroughputSamples> {
  const floor = await startHttpFloor(resources)
  mkdirSync(resources.path('ceiling'), { recursive: true })
  const ceiling = await startStackCeiling(resources, join(resources.path('ceiling'), 'ceiling.db'), 'write')
  const ceilingUrl = `${ceiling.url}/db/execute`
  const replicatedDb = join(resources.path('ceiling'), 'replicated.db')
  const replicated = await startStackCeiling(resources, replicatedDb, 'write')
  const ceilingReplicaDbs = [1, 2].map((i) => join(resources.path('ceiling'), `replica-${i}.db`))
  const ceilingReplicas = [
    await startStackCeilingReplica(resources, ceilingReplicaDbs[0]!, replicated.url),
    await startStackCeilingReplica(resources, ceilingReplicaDbs[1]!, replicated.url),
  ]
  const replicatedUrl = `${replicated.url}/db/execute`
  const library = await startLibraryCluster(resources, 'library', 2)
  const executeUrl = `${cluster.master.url}/db/execute`
  const load = (url: string, connections: number, durationSec = s.loadSeconds) =>
    closedLoop(url, { connections, durationSec, body: insertOneBody })

  log('warming up (JIT, connections, page cache)')
  await load(floor.url, s.manyClients, 1)
  await load(ceilingUrl, s.manyClients, 1)
  await load(replicatedUrl, s.manyClients, 1)
  await load(executeUrl, s.manyClients, 1)
  await libraryWritesPerSec(library.master, s.manyClients, 1000)
  rawSingleRowTps(resources.path('raw-warmup'), 300)

  const out: ThroughputSamples = {
    rawSingle: [],
    floor1: [],
    http1: [],
    floorMany: [],
    ceilingMany: [],
    replicatedCeilingMany: [],
    httpMany: [],
    library1: [],
    libraryMany: [],
    sync1: [],
    syncMany: [],
    latency1: [],
    floorLatency1: [],
    ceilingLatency1: [],
    replicatedCeilingLatency1: [],
    rawCommitLatency: [],
    sparseLatency1: [],
    replicatedCeilingSparseLatency1: [],
  }
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
    const latencyText = (l: LatencySample) => `p50 ${Math.round(l.p50Us)} µs, p99 ${Math.round(l.p99Us)} µs`
    out.rawCommitLatency.push(rawCommitLatency(resources.path('raw-latency'), s.latencyWrites))
    out.floorLatency1.push(await httpWriteLatency(floor.url, s.latencyWrites))
    out.ceilingLatency1.push(await httpWriteLatency(ceilingUrl, s.latencyWrites))
    out.replicatedCeilingLatency1.push(await httpWriteLatency(replicatedUrl, s.latencyWrites))
    out.latency1.push(await httpWriteLatency(executeUrl, s.latencyWrites))
    out.replicatedCeilingSparseLatency1.push(await httpWriteLatency(replicatedUrl, s.sparseWrites, 100, sparseGapMs))
    out.sparseLatency1.push(await httpWriteLatency(executeUrl, s.sparseWrites, 100, sparseGapMs))
    log(
      `[throughput ${rep}/${s.reps}] one write at a time (${s.latencyWrites}): Tandem ${latencyText(out.latency1.at(-1)!)}; ` +
        `raw SQLite commit ${latencyText(out.rawCommitLatency.at(-1)!)}; floor round trip ${latencyText(out.floorLatency1.at(-1)!)}; ` +
        `the stack's ceiling ${latencyText(out.ceilingLatency1.at(-1)!)}, with two replicas ${latencyText(out.replicatedCeilingLatency1.at(-1)!)}; ` +
        `one write every ${sparseGapMs} ms (${s.sparseWrites}): Tandem ${latencyText(out.sparseLatency1.at(-1)!)}, the ceiling with two replicas ${latencyText(out.replicatedCeilingSparseLatency1.at(-1)!)}`,
    )
    out.floorMany.push(report(`node:http floor, ${many} clients`, 'req/s', (await load(floor.url, many)).perSec, same))
    out.ceilingMany.push(report(`node:http + SQLite group commit (the stack's ceiling), ${many} clients`, 'tx/s', (await load(ceilingUrl, many)).perSec, same))
    out.replicatedCeilingMany.push(report(`the stack's ceiling with two replicas, ${many} clients`, 'tx/s', (await load(replicatedUrl, many)).perSec, same))
    out.httpMany.push(report(`Tandem HTTP, ${many} clients`, 'tx/s', await tandemLoad(many), (r) => r.perSec))
    // closedLoop fails on any answer but 200 (a SYNC_TIMEOUT is a 202): every counted write was confirmed.
    out.sync1.push(report('Tandem HTTP sync=1, 1 client', 'tx/s', await tandemLoad(1, `${executeUrl}?sync=1`), (r) => r.perSec))
    out.syncMany.push(report(`Tandem HTTP sync=1, ${many} clients`, 'tx/s', await tandemLoad(many, `${executeUrl}?sync=1`), (r) => r.perSec))
    out.library1.push(report('Tandem library, 1 caller', 'tx/s', await libraryWritesPerSec(library.master, 1, s.loadSeconds * 1000), same))
    out.libraryMany.push(report(`Tandem library, ${many} callers`, 'tx/s', await libraryWritesPerSec(library.master, many, s.loadSeconds * 1000), same))
  }
  // Both stay registered with `resources`; stopping them now keeps them off the next phases' CPU.
  await floor.stop()
  await ceiling.stop()
  await assertCeilingReplicated(replicatedDb, ceilingReplicaDbs)
  for (const replica of ceilingReplicas) await replica.stop()
  await replicated.stop()
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
          `lag (by the replicas) p50 ${result.lagP50Ms.toFixed(2)} ms, p99 ${result.lagP99Ms.toFixed(2)} ms (${result.lagSamples} entries), from outside p50 ${result.outsideLagP50Ms.toFixed(2)}, p99 ${result.outsideLagP99Ms.toFixed(2)} ms; ` +
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

/** Figure 6: point reads through the client on a replica of the main cluster (idle by now). */
async function measureClientReads(cluster: ProcessCluster, s: Settings): Promise<ClientOverheadLevel[]> {
  const replica = cluster.replicas.at(-1)!
  return measureClientOverhead({
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
}

/** Figure 7: with the main cluster stopped, reads from an embedded replica of a cluster of its own. */
async function measureEmbedded(resources: Resources, s: Settings): Promise<EmbeddedReadsResult> {
  log(`[embedded reads] filling ${fmt(s.embeddedRows)} rows, then ${s.reps} × ${s.readSeconds} s per reader`)
  const embedded = await measureEmbeddedReads(resources, { reps: s.reps, seconds: s.readSeconds, rows: s.embeddedRows })
  embedded.embedded.samples.forEach((value, i) => {
    log(`[embedded reads ${i + 1}/${s.reps}] embedded replica ${fmt(value)} reads/s, raw SQLite ${fmt(embedded.raw.samples[i]!)} reads/s`)
  })
  return embedded
}

/** A part run alone on a fresh cluster still needs rows to read: `rows` of them, on every node. */
async function ensureRows(cluster: ProcessCluster, rows: number): Promise<void> {
  const perStatement = 1000
  let lsn = 0
  for (let count = await rowCount(cluster.master.url); count < rows; count += perStatement) {
    const written = await insertRows(cluster.master.url, perStatement)
    lsn = Math.max(lsn, written)
  }
  await Promise.all(cluster.replicas.map((r) => waitForLsn(r.url, lsn)))
}

async function insertRows(url: string, rows: number): Promise<number> {
  const response = await fetch(`${url}/db/execute`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([[insertManySql(rows), ...Array.from({ length: rows }, () => payload)]]),
    signal: AbortSignal.timeout(30_000),
  })
  const body = (await response.json()) as { lsn?: number; results?: { error?: string }[] }
  if (response.status !== 200 || body.lsn === undefined || body.results?.[0]?.error !== undefined) throw new Error(`filling the bench table failed: ${JSON.stringify(body)}`)
  return body.lsn
}

function throughputFigures(t: ThroughputSamples, s: Settings): Figure[] {
  const many = s.manyClients
  const rawSingle = { label: 'raw SQLite, 1 row per transaction', unit: 'tx/s' as const, samples: t.rawSingle }
  return [
    figure('http_writes_1', 'HTTP writes, 1 client', 'tx/s', t.http1.map((r) => r.perSec), [
      { label: 'node:http floor, 1 client', unit: 'req/s', samples: t.floor1 },
      rawSingle,
    ]),
    figure('http_write_latency_p50_1', 'HTTP write latency p50, 1 client (undici, each write timed)', 'µs', t.latency1.map((l) => l.p50Us), [
      {
        label: "raw SQLite's one-row commit p50 + the node:http floor's round trip p50, same client",
        unit: 'µs',
        samples: t.rawCommitLatency.map((raw, i) => raw.p50Us + t.floorLatency1[i]!.p50Us),
      },
      { label: "the stack's ceiling p50 (node:http + SQLite commit, no log or replicas), same client", unit: 'µs', samples: t.ceilingLatency1.map((l) => l.p50Us) },
      { label: "the stack's ceiling with two replicas p50 (each batch streamed to two minimal replicas), same client", unit: 'µs', samples: t.replicatedCeilingLatency1.map((l) => l.p50Us) },
    ]),
    // The same with autocannon's leaner client, whose percentiles are whole milliseconds: in a
    // closed loop of one, the mean is 1 ÷ the rate, for Tandem and for both baselines.
    figure('http_write_latency_1', 'HTTP write latency, 1 client (autocannon, mean: 1 ÷ rate)', 'µs', t.http1.map((r) => 1e6 / r.perSec), [
      {
        label: "raw SQLite's one-row commit + the node:http floor's round trip, 1 client (means)",
        unit: 'µs',
        samples: t.rawSingle.map((raw, i) => 1e6 / raw + 1e6 / t.floor1[i]!),
      },
    ]),
    figure(`http_writes_${many}`, `HTTP writes, ${many} clients`, 'tx/s', t.httpMany.map((r) => r.perSec), [
      { label: `node:http floor, ${many} clients`, unit: 'req/s', samples: t.floorMany },
      rawSingle,
      { label: `node:http + SQLite group commit, no log or replicas (the stack's ceiling), ${many} clients`, unit: 'tx/s', samples: t.ceilingMany },
      { label: `the stack's ceiling with two replicas (each batch streamed to two minimal replicas), ${many} clients`, unit: 'tx/s', samples: t.replicatedCeilingMany },
    ]),
    figure(`http_writes_ceiling_${many}`, `The stack's ceiling for the same writes (node:http + SQLite group commit), ${many} clients`, 'tx/s', t.ceilingMany, [
      { label: `node:http floor, ${many} clients`, unit: 'req/s', samples: t.floorMany },
    ]),
    figure(`http_writes_replicated_ceiling_${many}`, `The stack's ceiling with two replicas for the same writes, ${many} clients`, 'tx/s', t.replicatedCeilingMany, [
      { label: `node:http floor, ${many} clients`, unit: 'req/s', samples: t.floorMany },
    ]),
    figure('replicated_ceiling_latency_p50_1', "The stack's ceiling with two replicas, write latency p50, 1 client", 'µs', t.replicatedCeilingLatency1.map((l) => l.p50Us), [
      {
        label: "raw SQLite's one-row commit p50 + the node:http floor's round trip p50, same client",
        unit: 'µs',
        samples: t.rawCommitLatency.map((raw, i) => raw.p50Us + t.floorLatency1[i]!.p50Us),
      },
    ]),
    figure('http_write_latency_p50_sparse', `HTTP write latency p50, 1 client writing every ${sparseGapMs} ms (each commit goes to the replicas at once)`, 'µs', t.sparseLatency1.map((l) => l.p50Us), [
      { label: "the stack's ceiling with two replicas p50, same client and pace", unit: 'µs', samples: t.replicatedCeilingSparseLatency1.map((l) => l.p50Us) },
    ]),
    figure('sync_writes_1', 'HTTP writes with sync=1, 1 client', 'tx/s', t.sync1.map((r) => r.perSec), [
      { label: 'the same writes without sync, 1 client', unit: 'tx/s', samples: t.http1.map((r) => r.perSec) },
    ]),
    figure(`sync_writes_${many}`, `HTTP writes with sync=1, ${many} clients`, 'tx/s', t.syncMany.map((r) => r.perSec), [
      { label: `the same writes without sync, ${many} clients`, unit: 'tx/s', samples: t.httpMany.map((r) => r.perSec) },
    ]),
    figure('library_writes_1', 'Library writes, 1 caller', 'tx/s', t.library1, [rawSingle]),
    figure(`library_writes_${many}`, `Library writes, ${many} callers`, 'tx/s', t.libraryMany, [rawSingle]),
  ]
}

function lagFigures(lags: LagLevel[]): Figure[] {
  return lags.flatMap((level) => {
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
}

function catchUpFigures(c: CatchUpSamples, s: Settings): Figure[] {
  return [
    figure('catch_up', `Replica catch-up, ${fmt(s.catchUpRows)} rows`, 'rows/s', c.catchUp.map((r) => r.rowsPerSec), [
      { label: `raw SQLite, ${s.rowsPerTransaction} rows per transaction`, unit: 'rows/s', samples: c.rawBatched },
      { label: 'raw SQLite, all rows in one transaction', unit: 'rows/s', samples: c.rawOneTransaction },
    ]),
  ]
}

function clientReadFigures(levels: ClientOverheadLevel[]): Figure[] {
  return levels.flatMap((level) => {
    const callers = level.callers === 1 ? '1 caller' : `${level.callers} callers`
    const baselines = (unit: 'reads/s' | 'µs', pick: (run: ReadRun) => number) =>
      (['fetch', 'request'] as const).map((name) => ({ label: `${readerLabels[name]}, ${callers}`, unit, samples: level[name].map(pick) }))
    return [
      figure(`client_reads_${level.callers}`, `Client point reads on a replica, ${callers}`, 'reads/s', level.client.map((run) => run.perSec), baselines('reads/s', (run) => run.perSec)),
      figure(`client_read_p50_${level.callers}`, `Client point read latency p50, ${callers}`, 'µs', level.client.map((run) => run.p50Us), baselines('µs', (run) => run.p50Us)),
    ]
  })
}

const embeddedFigure = (e: EmbeddedReadsResult) =>
  figure('embedded_reads', 'Embedded replica point reads by primary key', 'reads/s', e.embedded.samples, [{ label: 'raw SQLite, same file', unit: 'reads/s', samples: e.raw.samples }])

const failoverFigure = (failovers: FailoverResult[]) =>
  figure('failover', 'Failover: tandem promote → first write on the new master', 'ms', failovers.map((f) => f.promoteToWriteMs), [
    { label: 'restart of a killed master → first write', unit: 'ms', samples: failovers.map((f) => f.restartToWriteMs) },
  ])

const workloadNote =
  'Every write is a one-row INSERT (32-byte text) into a table with an INTEGER PRIMARY KEY. Tandem: a master with 2 replicas attached, all synchronous=full, every process on this one machine. Raw SQLite: WAL + synchronous=FULL through @photostructure/sqlite, in the benchmark process.'

const throughputNote = (s: Settings) =>
  `Throughput: closed loop for ${s.loadSeconds} s per run — autocannon over keep-alive connections for HTTP (Tandem and a minimal node:http server answering a fixed JSON), async callers of node.write() for the library. ` +
    `1-client latency: ${s.latencyWrites} writes one at a time over one keep-alive undici connection, each timed with performance.now() (after 200 untimed), against the floor from the same client and raw SQLite's BEGIN/INSERT/COMMIT timed the same way in this process (bench/write-latency.ts). ` +
    `Sparse writes: ${s.sparseWrites} more (after 100 untimed), each followed by a ${sparseGapMs} ms pause, so that every commit comes after a quiet spell and goes to the replicas at once: the pattern of most applications, with cold caches and idle cores each time; against the stack's ceiling with two replicas paced the same.`

function lagNote(s: Settings, lags: LagLevel[]): string {
  const median = (values: number[]) => spread(values).median
  const levels = lags
    .map((l) => {
      const sent = fmt(median(l.results.map((r) => r.sentWritesPerSec)))
      const entries = fmt(median(l.results.map((r) => r.entriesPerSec)))
      const ryw = `${median(l.results.map((r) => r.readYourWriteP50Ms)).toFixed(2)}/${median(l.results.map((r) => r.readYourWriteP99Ms)).toFixed(2)} ms`
      const outside = `${median(l.results.map((r) => r.outsideLagP50Ms)).toFixed(2)}/${median(l.results.map((r) => r.outsideLagP99Ms)).toFixed(2)} ms`
      return `at ${fmt(l.writesPerSec)}/s (sent ${sent}/s in ${entries} log entries/s) from outside p50/p99 ${outside}, read-your-write p50/p99 ${ryw}`
    })
    .join('; ')
  return `Lag: open-loop writes at a moderate rate and at half the median ${s.manyClients}-client HTTP rate, ${s.lagSeconds} s per run. Lag is measured by each replica (GET /replication/lag): for every entry it applies, the master's commit time carried in the entry → visible on the replica, same clock; the worst replica's percentile. Checked from outside: the same min_lsn read, parked ahead of the newest LSN, sent to the master and to a replica (lag = the replica's answer − the master's), and the simple bound — a min_lsn read on a replica sent when the write is acknowledged, which adds a read round trip — ${levels}.`
}

const catchUpNote = (s: Settings) =>
  `Catch-up: a replica is SIGKILLed, ${fmt(s.catchUpRows)} rows are written in transactions of ${s.rowsPerTransaction} (one log entry each), the replica restarts on its data; timed from its ready line until it has applied the master's LSN (checksums verified equal; no snapshot).`

const clientReadsNote = (s: Settings) =>
  `Client reads: tandem/client's db.query('SELECT id, payload FROM bench WHERE id = ?', [id]) pinned to one replica, default options (session consistency, so each read carries the session's min_lsn), beside undici's fetch() and request() of GET /db/query?level=none&q=… with the id inlined, on the same replica over a pool of the same size; closed loop with ${s.clientCallers.join(' and ')} callers, ${s.readSeconds} s per reader and run; ${idsCount} ids, so every SQL text stays prepared on the node.`

const embeddedNote = (s: Settings) =>
  `Embedded reads: openReplica() in the benchmark process, db.get() of the same SELECT over ${fmt(s.embeddedRows)} rows, beside raw @photostructure/sqlite reading the replica's own file read-only, ${s.readSeconds} s per reader and run.`

const automaticFailoverFigure = (failovers: FailoverResult[]) => {
  const samples = failovers.map((f) => f.automaticToWriteMs).filter((ms): ms is number => ms !== undefined)
  if (samples.length !== failovers.length) return []
  return [
    figure('failover_automatic', `Automatic failover on etcd (--coordinator-ttl ${benchCoordinatorTtl}): master killed → first write on the replica that took over`, 'ms', samples, [
      { label: 'tandem promote → first write (a person or script acting at once)', unit: 'ms', samples: failovers.map((f) => f.promoteToWriteMs) },
    ]),
  ]
}

const racedFailoverFigure = (failovers: FailoverResult[]) =>
  figure('failover_raced', 'Failover with two promotions racing: both replicas told at once → first write on the winner', 'ms', failovers.map((f) => f.racedToWriteMs), [
    { label: 'one promotion → first write (the row above)', unit: 'ms', samples: failovers.map((f) => f.promoteToWriteMs) },
  ])

const failoverNote =
  'Failover: a master with 2 replicas is SIGKILLed; timed from POST /cluster/promote on a replica to the first successful write on it. Baseline: a lone master SIGKILLed and started again on its data, to its first successful write. Racing: another such cluster, both replicas told to promote at the same moment; timed to the first write on the one that won (the other gives way). Automatic: another such cluster with every node on a real etcd (--coordinator, a 2 s lease: etcd\'s shortest); the master is SIGKILLed and nobody is told; timed from the kill to the first successful write, tried on each replica in turn. It is bounded below by the lease: etcd ends it 2 s after the master\'s last renewal, which came up to 0.4 s before the kill.'

/** The last note: it covers every figure. */
const methodNote = (s: Settings) => `Median of ${s.reps} runs (min–max). Ratios are per run: figure ÷ the baseline measured back to back with it in the same run.`

function markdown(machine: Machine, figures: Figure[], scaling: ScalingSamples | undefined, noteLines: string[]): string {
  return [
    '<!-- Written by `npm run bench`, which also copies it between the bench:start and bench:end markers in README.md. -->',
    '',
    `Command: \`npm run bench\` · Machine: ${machineLine(machine)} · ${new Date().toISOString().slice(0, 10)}`,
    '',
    markdownTable(figures),
    ...(scaling === undefined ? [] : ['', 'Scaling curve (every process on this one machine; see the note below for which figures its cores bound):', '', scalingMarkdown(scaling)]),
    '',
    ...noteLines.map((n) => `- ${n}`),
    '',
  ].join('\n')
}

/** Replaces README.md's block between the bench markers with the run's table (less its comment line). */
function updateReadme(block: string): string {
  const path = fileURLToPath(new URL('../README.md', import.meta.url))
  const readme = readFileSync(path, 'utf8')
  const start = '<!-- bench:start -->'
  const end = '<!-- bench:end -->'
  const from = readme.indexOf(start)
  const to = readme.indexOf(end)
  if (from < 0 || to < from) throw new Error(`README.md has no ${start} … ${end} block to update`)
  const body = block.split('\n').slice(2).join('\n').trimEnd()
  writeFileSync(path, `${readme.slice(0, from + start.length)}\n${body}\n${readme.slice(to)}`)
  return path
}

/** Each part's figures and notes, in the report's order, and its raw samples for --json. */
interface Report {
  figures: Figure[]
  notes: string[]
  details: Record<string, unknown>
  scaling: ScalingSamples | undefined
}

async function measureParts(resources: Resources, s: Settings, parts: ReadonlySet<PartName>, machine: Machine): Promise<Report> {
  const report: Report = { figures: [], notes: [], details: {}, scaling: undefined }
  const sections = new Map<PartName, { figures: Figure[]; notes: string[] }>()
  const add = (part: PartName, figures: Figure[], notes: string[], details: Record<string, unknown>) => {
    const section = sections.get(part) ?? { figures: [], notes: [] }
    section.figures.push(...figures)
    section.notes.push(...notes)
    sections.set(part, section)
    Object.assign(report.details, details)
  }
  const partSeconds: Record<string, number> = {}
  const timed = async (part: string, work: () => Promise<void>) => {
    const started = performance.now()
    await work()
    partSeconds[part] = Math.round((performance.now() - started) / 100) / 10
    log(`[${part}] took ${partSeconds[part]} s`)
  }

  // Started by the first part that needs it; the parts after the reads run with it stopped.
  const held: { cluster?: ProcessCluster } = {}
  const mainCluster = async () => (held.cluster ??= await startProcessCluster(resources, 'cluster', 2))
  if (parts.has('writes')) {
    await timed('writes', async () => {
      const throughput = await measureThroughput(resources, await mainCluster(), s)
      const heavy = Math.max(100, Math.round(spread(throughput.httpMany.map((r) => r.perSec)).median / 2 / 100) * 100)
      const lags = await measureLags(await mainCluster(), s, [...new Set([Math.min(s.lagModerateWritesPerSec, heavy), heavy])])
      add('writes', [...throughputFigures(throughput, s), ...lagFigures(lags)], [workloadNote, throughputNote(s), lagNote(s, lags)], { throughput, lags })
    })
  }
  if (parts.has('catch-up')) {
    await timed('catch-up', async () => {
      const catchUps = await measureCatchUps(resources, await mainCluster(), s)
      add('catch-up', catchUpFigures(catchUps, s), [catchUpNote(s)], { catchUps })
    })
  }
  if (parts.has('reads') || parts.has('http-reads') || parts.has('vs-rqlite')) await ensureRows(await mainCluster(), 2 * scanRows)
  if (parts.has('reads')) {
    await timed('client reads', async () => {
      const client = await measureClientReads(await mainCluster(), s)
      add('reads', clientReadFigures(client), [clientReadsNote(s)], { clientReads: client })
    })
  }
  if (parts.has('http-reads')) {
    await timed('http-reads', async () => {
      const httpReads = await measureHttpReads(resources, (await mainCluster()).replicas.at(-1)!, s.httpReads, log)
      add('http-reads', httpReadsFigures(httpReads, s.httpReads), [httpReadsNote(httpReads, s.httpReads)], { httpReads })
    })
  }
  if (parts.has('vs-rqlite')) {
    await timed('vs-rqlite', async () => {
      const vsRqlite = await measureVsRqlite(resources, await mainCluster(), s.vsRqlite, log)
      add('vs-rqlite', vsRqliteFigures(vsRqlite, s.vsRqlite), [vsRqliteNote(vsRqlite, s.vsRqlite)], { vsRqlite })
    })
  }
  const main = held.cluster
  if (main !== undefined) await Promise.all([main.master, ...main.replicas].map((node) => node.kill('SIGKILL')))
  if (parts.has('reads')) {
    await timed('embedded reads', async () => {
      const embedded = await measureEmbedded(resources, s)
      add('reads', [embeddedFigure(embedded)], [embeddedNote(s)], { embeddedReads: embedded })
    })
  }
  if (parts.has('security')) {
    await timed('security', async () => {
      const security = await measureSecurity(resources, s.security, log)
      add('security', securityFigures(security, s.security), [securityNote(s.security)], { security })
    })
  }
  if (parts.has('statement-guard')) {
    await timed('statement-guard', async () => {
      const guard = await measureStatementGuard(resources, s.statementGuard, log)
      const longWrites = await measureLongWrites(resources, { reps: s.statementGuard.reps, seconds: s.statementGuard.seconds }, log)
      add(
        'statement-guard',
        [...statementGuardFigures(guard, s.statementGuard), ...longWriteFigures(longWrites)],
        [statementGuardNote(s.statementGuard), longWriteNote({ reps: s.statementGuard.reps, seconds: s.statementGuard.seconds })],
        { statementGuard: guard, longWrites },
      )
    })
  }
  if (parts.has('rowid-tables')) {
    await timed('rowid-tables', async () => {
      const rowidTables = await measureRowidTables(resources, s.rowidTables, log)
      add('rowid-tables', rowidTablesFigures(rowidTables, s.rowidTables), [rowidTablesNote(rowidTables, s.rowidTables)], { rowidTables })
    })
  }
  if (parts.has('library-batches')) {
    await timed('library-batches', async () => {
      const batches = await measureLibraryBatches(resources, s.libraryBatches, log)
      add('library-batches', libraryBatchFigures(batches, s.libraryBatches), [libraryBatchNote(s.libraryBatches)], { libraryBatches: batches })
    })
  }
  if (parts.has('failover')) {
    await timed('failover', async () => {
      const failovers: FailoverResult[] = []
      for (let rep = 1; rep <= s.reps; rep++) {
        failovers.push(await measureFailover(resources, rep))
        const last = failovers.at(-1)!
        log(`[failover ${rep}/${s.reps}] promote → first write ${last.promoteToWriteMs.toFixed(0)} ms; two racing → first write ${last.racedToWriteMs.toFixed(0)} ms; restart → first write ${last.restartToWriteMs.toFixed(0)} ms; automatic (etcd) → first write ${last.automaticToWriteMs?.toFixed(0) ?? 'not measured'} ms`)
      }
      add('failover', [failoverFigure(failovers), racedFailoverFigure(failovers), ...automaticFailoverFigure(failovers)], [failoverNote], { failovers })
    })
  }
  if (parts.has('scaling')) {
    await timed('scaling', async () => {
      const scaling = await measureScaling(resources, s.scaling, log)
      report.scaling = scaling
      add('scaling', [], [scalingNote(scaling, s.scaling, machine.cores)], {})
    })
  }
  if (parts.has('snapshot')) {
    await timed('snapshot', async () => {
      const snapshot = await measureSnapshotBootstrap(resources, s.snapshot, log)
      add('snapshot', snapshotFigures(snapshot, s.snapshot), [snapshotNote(snapshot, s.snapshot)], { snapshot })
    })
  }
  if (parts.has('load')) {
    await timed('load', async () => {
      const load = await measureLoad(resources, s.load, log)
      add('load', loadFigures(load, s.load), [loadNote(load, s.load)], { load })
    })
  }
  if (parts.has('soak')) {
    await timed('soak', async () => {
      const soak = await measureSoak(resources, s.soak, log)
      add('soak', soakFigures(soak), [soakNote(soak, s.soak.connections)], { soak })
    })
  }
  if (parts.has('jobs')) {
    // Last: its own cluster, started once every other cluster is stopped.
    await timed('jobs', async () => {
      const jobs = await measureJobs(resources, s.jobs, log)
      add('jobs', jobsFigures(jobs, s.jobs), [jobsNote(jobs, s.jobs)], { jobs })
    })
  }
  // The report's order: writes (HTTP, then library), lag, catch-up, reads, failover, snapshot, load, memory, jobs.
  const order: PartName[] = ['writes', 'library-batches', 'catch-up', 'reads', 'http-reads', 'vs-rqlite', 'security', 'statement-guard', 'rowid-tables', 'failover', 'snapshot', 'load', 'soak', 'scaling', 'jobs']
  for (const part of order) {
    const section = sections.get(part)
    if (section === undefined) continue
    report.figures.push(...section.figures)
    report.notes.push(...section.notes)
  }
  report.details['partSeconds'] = partSeconds
  return report
}

/** Peak RSS of every process the run started, beside the HTTP floor's (measured now if no part ran one). */
async function memoryReport(resources: Resources, sampler: RssSampler, s: Settings): Promise<{ figures: Figure[]; note: string; peaks: unknown }> {
  if (!sampler.peaksMb().some((p) => p.kind === 'floor')) {
    const floor = await startHttpFloor(resources)
    await closedLoop(floor.url, { connections: s.manyClients, durationSec: s.loadSeconds, body: insertOneBody })
    sampler.sample()
    await floor.stop()
  }
  const peaks = sampler.peaksMb()
  return { figures: memoryFigures(peaks), note: memoryNote(peaks), peaks }
}

async function main(): Promise<void> {
  const { json, parts, isFull, ...settings } = settingsFromArgs()
  const machine = describeMachine()
  log(`machine: ${machineLine(machine)}`)
  const resources = new Resources()
  const sampler = new RssSampler(() => [...resources.processes(), { label: 'bench process', kind: 'bench', pid: process.pid }])
  process.once('exit', () => resources.killNow())
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping every process the benchmark started`)
      void resources.close().finally(() => process.exit(130))
    })
  }
  const started = performance.now()
  try {
    log(`data under ${resources.root}; parts: ${[...parts].join(', ')}`)
    const report = await measureParts(resources, settings, parts, machine)
    const memory = await memoryReport(resources, sampler, settings)
    sampler.stop()
    const jobsAt = report.figures.findIndex((f) => f.id.startsWith('jobs_'))
    report.figures.splice(jobsAt < 0 ? report.figures.length : jobsAt, 0, ...memory.figures)
    const jobsNoteAt = report.notes.findIndex((n) => n.startsWith('Jobs:'))
    report.notes.splice(jobsNoteAt < 0 ? report.notes.length : jobsNoteAt, 0, memory.note)
    report.notes.push(methodNote(settings))
    const { figures, notes: noteLines, scaling } = report
    const seconds = ((performance.now() - started) / 1000).toFixed(0)
    const resultsPath = fileURLToPath(new URL('./RESULTS.md', import.meta.url))
    const text = markdown(machine, figures, scaling, noteLines)
    // A partial run keeps RESULTS.md and the README whole: its rows are printed, to paste by hand.
    if (isFull) {
      writeFileSync(resultsPath, text)
      updateReadme(text)
    }
    if (json) {
      process.stdout.write(`${JSON.stringify({ machine, settings, figures, scaling: scaling === undefined ? null : { summary: scalingSummary(scaling), samples: scaling }, memory: memory.peaks, details: report.details, seconds: Number(seconds) }, null, 2)}\n`)
    } else {
      const scalingBlock = scaling === undefined ? '' : `\n\nScaling curve\n\n${scalingText(scaling)}`
      process.stdout.write(`\nTandem benchmark — ${machineLine(machine)}\n\n${textTable(figures)}${scalingBlock}\n\n${noteLines.map((n) => `* ${n}`).join('\n')}\n`)
      if (!isFull) process.stdout.write(`\n${text}\n`)
    }
    log(isFull ? `\nwrote ${resultsPath} and README.md's bench block (${seconds} s)` : `\ndone; RESULTS.md and README.md left as they were (${seconds} s)`)
  } finally {
    sampler.stop()
    await resources.close()
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  process.exitCode = 1
})
