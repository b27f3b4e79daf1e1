/**
 * Snapshot bootstrap: a new replica of a large database (1 GiB by default), timed from its start
 * until it serves reads (GET /readyz answers 200 and a point read returns its row), while the
 * master keeps taking a steady stream of writes; with the new replica's peak RSS, which stays
 * small only if the snapshot is streamed and never held whole. Baseline, same repetition: copying
 * the master's database file through a read/write stream, then fsync (fs.copyFile + fsync was
 * measured too in the first runs: ~0.7× the stream copy's time, both dominated by the fsync).
 *
 * Back-of-envelope estimate, written before measuring (virtio disk, page cache warm, 2 cores):
 * a stream copy of 1 GiB moves ~1–2 GB/s through the page cache, plus an fsync that writes the
 * GiB out: ~1–2 s. The bootstrap does more: the master writes a consistent copy with VACUUM INTO
 * (reads every page and rebuilds the B-trees into a new file: ~3–6 s), streams it over loopback
 * HTTP (~1 s), the replica writes it and fsyncs (~1–2 s), renames it into place, opens it and
 * starts streaming the log from the snapshot's LSN (the writes made meanwhile): ~6–10 s in all,
 * ~4–6× the copy. Peak RSS of the replica: Node + fastify + SQLite + a few 64 KiB stream
 * buffers: ~70–100 MB whatever the database size, ~0.1× a GiB.
 *
 * Method: the database is built once per run, before the master starts, with the SQLite binding
 * on the master's data directory (rows of `rowBytes` characters, 10,000 per transaction,
 * synchronous=off), until the file reaches the target size; nothing is cached across runs. The
 * master then starts on it with `--log-retain-bytes` of 4 MiB and takes ~10 MiB of writes, so its
 * log no longer starts at LSN 1 and a new replica must bootstrap from a snapshot (the state of a
 * real master whose database outgrew its log); the rows built before the master started are in
 * no log entry, so the replica can only have them from the snapshot. Then `writesPerSec`
 * one-row INSERTs per second are sent open-loop for the rest of the part. Each repetition copies
 * the file (the baseline), then starts a fresh replica, polls GET /readyz every 25 ms,
 * reads a row built before the master started, reads the replica's VmHWM (its peak RSS since it
 * started), checks it installed a snapshot and then applied the writes made meanwhile, and
 * removes it.
 */
import { DatabaseSync } from '@photostructure/sqlite'
import { createReadStream, createWriteStream, mkdirSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { Pool } from 'undici'
import { databasePath } from '../src/storage/index.ts'
import { LogStore } from '../src/replication-log/log-store.ts'
import { fillToSize } from './load-source.ts'
import { waitFor } from '../tests/harness/cluster.ts'
import { execute, get, query } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import { waitForLsn } from './bench-cluster.ts'
import { statusMb } from './memory.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { spread } from './stats.ts'
import { createTableSql, insertManySql, insertOneBody } from './workload.ts'

export interface SnapshotSettings {
  reps: number
  /** The database's size before the master starts, in GiB. */
  gib: number
  /** Steady writes to the master during every bootstrap. */
  writesPerSec: number
}

export interface SnapshotRun {
  /** Replica start → /readyz 200 and a point read answered. */
  servingMs: number
  /** Replica start → its ready line (HTTP listening; the snapshot follows). */
  listeningMs: number
  /** Then until it had applied every write acknowledged up to the read (streaming the log). */
  caughtUpMs: number
  /** The new replica's VmHWM once serving. */
  replicaPeakMb: number
  /** The installed database file. */
  snapshotBytes: number
  /** Writes the master acknowledged while the replica bootstrapped. */
  writesDuring: number
  streamCopyMs: number
}

export interface SnapshotSamples {
  databaseBytes: number
  rows: number
  buildMs: number
  runs: SnapshotRun[]
  /** The master's VmHWM at the end of the part (building the copies, serving them, taking writes). */
  masterPeakMb: number
}

const rowBytes = 1000
const rowsPerBuildTransaction = 10_000
const logRetainBytes = 4 * 1024 * 1024
const primeBytes = 10 * 1024 * 1024
const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

export async function measureSnapshotBootstrap(resources: Resources, s: SnapshotSettings, log: (line: string) => void): Promise<SnapshotSamples> {
  const masterDir = resources.path('snapshot', 'master')
  log(`[snapshot] building a ${s.gib} GiB database with the SQLite binding`)
  const built = buildDatabase(masterDir, s.gib * 1024 ** 3)
  log(`[snapshot] built ${fmt(built.rows)} rows, ${fmt(built.bytes / 1024 ** 2)} MiB in ${fmt(built.ms)} ms`)
  const master = resources.node(
    await NodeProcess.start({ role: 'master', dataDir: masterDir, args: ['--synchronous', 'full', '--log-retain-bytes', String(logRetainBytes)] }),
  )
  await primeLog(master.url)
  const writer = new SteadyWriter(master.url, s.writesPerSec)
  const runs: SnapshotRun[] = []
  try {
    for (let rep = 1; rep <= s.reps; rep++) {
      const run = await bootstrapOnce(resources, master, rep, built, writer)
      runs.push(run)
      log(
        `[snapshot ${rep}/${s.reps}] serving reads ${fmt(run.servingMs)} ms after start (listening ${fmt(run.listeningMs)} ms; then caught up in ${fmt(run.caughtUpMs)} ms), ` +
          `peak RSS ${run.replicaPeakMb.toFixed(0)} MB, snapshot ${fmt(run.snapshotBytes / 1024 ** 2)} MiB, ${fmt(run.writesDuring)} writes meanwhile; ` +
          `copying the file ${fmt(run.streamCopyMs)} ms`,
      )
    }
  } finally {
    await writer.stop()
  }
  const masterPeakMb = statusMb(master.child?.pid, 'VmHWM') ?? Number.NaN
  await master.kill('SIGKILL')
  rmSync(resources.path('snapshot'), { recursive: true, force: true })
  return { databaseBytes: built.bytes, rows: built.rows, buildMs: built.ms, runs, masterPeakMb }
}

/** Fills the bench table until the file holds `targetBytes`; the master has not started yet. */
function buildDatabase(dataDir: string, targetBytes: number): { rows: number; bytes: number; ms: number } {
  const started = performance.now()
  mkdirSync(dataDir, { recursive: true })
  const path = databasePath(dataDir)
  const db = new DatabaseSync(path)
  try {
    db.exec('PRAGMA journal_mode = OFF')
    db.exec('PRAGMA synchronous = OFF')
    // Tandem's own tables first: a master refuses a database it did not create (its replicas would
    // never get the rows), and this one stands for a master's whose log no longer holds them.
    LogStore.ensureSchema(db)
    db.exec(createTableSql)
    const insert = db.prepare(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${rowsPerBuildTransaction}) ` +
        `INSERT INTO bench(payload) SELECT hex(randomblob(${rowBytes / 2})) FROM n`,
    )
    const rows = fillToSize(db, insert, targetBytes, rowsPerBuildTransaction)
    // Durable before the master opens it, as a database restored from a backup would be.
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = FULL')
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
    return { rows, bytes: statSync(path).size, ms: performance.now() - started }
  } finally {
    db.close()
  }
}

/** Writes ~primeBytes of log in 100-row entries, until retention has dropped LSN 1. */
async function primeLog(masterUrl: string): Promise<void> {
  const rows = 100
  const statement = [insertManySql(rows), ...Array.from({ length: rows }, (_, i) => String(i % 10).repeat(rowBytes))]
  for (let written = 0; written < primeBytes; written += rows * rowBytes) {
    const result = await execute(masterUrl, [statement])
    if (result.status !== 200 || result.body.results[0]?.error !== undefined) throw new Error(`priming the log failed: HTTP ${result.status} ${JSON.stringify(result.body)}`)
  }
  await waitFor(
    async () => {
      const oldest = (await get<{ master?: { log_oldest_lsn?: number | null } }>(`${masterUrl}/status`)).body.master?.log_oldest_lsn
      return typeof oldest === 'number' && oldest > 1 ? true : undefined
    },
    20_000,
    () => 'the master truncating its log past LSN 1 (retention runs every second)',
  )
}

async function bootstrapOnce(resources: Resources, master: NodeProcess, rep: number, built: { rows: number; bytes: number }, writer: SteadyWriter): Promise<SnapshotRun> {
  const source = databasePath(master.spec.dataDir)
  const copies = resources.path('snapshot', 'copies')
  mkdirSync(copies, { recursive: true })
  const streamCopyMs = await timed(async () => {
    const target = `${copies}/stream.db`
    await pipeline(createReadStream(source), createWriteStream(target))
    await fsync(target)
  })
  rmSync(copies, { recursive: true, force: true })

  const dataDir = resources.path('snapshot', `replica${rep}`)
  const writesBefore = writer.acknowledged
  const started = performance.now()
  const replica = resources.node(await NodeProcess.start({ role: 'replica', dataDir, masterUrl: master.url, args: ['--synchronous', 'full'] }))
  const listeningMs = performance.now() - started
  await waitFor(async () => ((await get(`${replica.url}/readyz`)).status === 200 ? true : undefined), 120_000, () => `replica ${replica.url} ready`)
  // A row built before the master started: only a snapshot can have brought it.
  const id = Math.max(1, Math.floor(built.rows / 2))
  const read = await query(replica.url, `SELECT id, length(payload) FROM bench WHERE id = ${id}`)
  const servingMs = performance.now() - started
  const values = read.body.results?.[0]?.values
  if (read.status !== 200 || values?.[0]?.[0] !== id || values[0][1] !== rowBytes) throw new Error(`the new replica answered HTTP ${read.status}: ${JSON.stringify(read.body)}`)
  const replicaPeakMb = statusMb(replica.child?.pid, 'VmHWM') ?? Number.NaN
  const writesDuring = writer.acknowledged - writesBefore

  const caughtUpStarted = performance.now()
  await waitForLsn(replica.url, writer.newestLsn, 60)
  const caughtUpMs = performance.now() - caughtUpStarted
  const status = (await get<{ replication?: { snapshots_installed?: number } }>(`${replica.url}/status`)).body
  if ((status.replication?.snapshots_installed ?? 0) < 1) throw new Error('the new replica streamed the log instead of installing a snapshot: this is not a bootstrap time')
  if (writer.failure !== undefined) throw writer.failure
  const snapshotBytes = statSync(databasePath(dataDir)).size
  await replica.kill('SIGKILL')
  rmSync(dataDir, { recursive: true, force: true })
  return { servingMs, listeningMs, caughtUpMs, replicaPeakMb, snapshotBytes, writesDuring, streamCopyMs }
}

async function fsync(path: string): Promise<void> {
  const file = await open(path, 'r+')
  try {
    await file.sync()
  } finally {
    await file.close()
  }
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now()
  await work()
  return performance.now() - started
}

/** Open-loop one-row INSERTs at a fixed rate until stopped; the first failure is kept. */
class SteadyWriter {
  acknowledged = 0
  newestLsn = 0
  failure: Error | undefined
  private readonly pool: Pool
  private readonly timer: NodeJS.Timeout
  private readonly pending = new Set<Promise<void>>()
  private static readonly inFlightMax = 1024

  constructor(masterUrl: string, writesPerSec: number) {
    this.pool = new Pool(masterUrl, { connections: 16, headersTimeout: 30_000, bodyTimeout: 30_000 })
    const started = performance.now()
    let issued = 0
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / 1000) * writesPerSec)
      while (issued < due && this.pending.size < SteadyWriter.inFlightMax) {
        issued++
        const write = this.write().catch((error: unknown) => {
          this.failure ??= error instanceof Error ? error : new Error(String(error))
        })
        this.pending.add(write)
        void write.finally(() => this.pending.delete(write))
      }
    }, 1)
  }

  private async write(): Promise<void> {
    const response = await this.pool.request({ path: '/db/execute', method: 'POST', headers: { 'content-type': 'application/json' }, body: insertOneBody })
    const body = (await response.body.json()) as { lsn?: number; results?: { error?: string }[] }
    if (response.statusCode !== 200 || body.lsn === undefined || body.results?.[0]?.error !== undefined) {
      throw new Error(`a write during the bootstrap answered HTTP ${response.statusCode}: ${JSON.stringify(body)}`)
    }
    this.acknowledged++
    this.newestLsn = Math.max(this.newestLsn, body.lsn)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await Promise.all([...this.pending])
    await this.pool.close()
  }
}

const median = (values: number[]) => spread(values).median

export function snapshotFigures(r: SnapshotSamples, s: SnapshotSettings): Figure[] {
  const of = (pick: (run: SnapshotRun) => number) => r.runs.map(pick)
  const size = `${s.gib} GiB`
  return [
    figure('snapshot_bootstrap', `Snapshot bootstrap: a new replica of a ${size} database serving reads, from its start, master taking ${fmt(s.writesPerSec)} writes/s`, 's', of((x) => x.servingMs / 1000), [
      { label: 'copying the database file, read/write stream + fsync', unit: 's', samples: of((x) => x.streamCopyMs / 1000) },
    ]),
    figure('snapshot_replica_rss', `Snapshot bootstrap: the new replica's peak RSS, start → serving`, 'MB', of((x) => x.replicaPeakMb), [
      { label: 'the database file it received', unit: 'MB', samples: of((x) => x.snapshotBytes / 1024 ** 2) },
    ]),
  ]
}

export function snapshotNote(r: SnapshotSamples, s: SnapshotSettings): string {
  const of = (pick: (run: SnapshotRun) => number) => median(r.runs.map(pick))
  return (
    `Snapshot bootstrap: a ${fmt(r.databaseBytes / 1024 ** 2)} MiB database (${fmt(r.rows)} rows of ${rowBytes} characters, built in ${(r.buildMs / 1000).toFixed(1)} s with the SQLite binding before the master started; nothing is cached across runs); ` +
    `the master runs with --log-retain-bytes ${logRetainBytes / 1024 ** 2} MiB and has truncated its log past LSN 1, so a new replica must bootstrap from a snapshot (VACUUM INTO on the master, streamed over HTTP). ` +
    `Timed from spawning the replica until GET /readyz answered 200 and a point read of a row that only the snapshot holds answered (polled every 25 ms); it was listening after ${(of((x) => x.listeningMs) / 1000).toFixed(2)} s ` +
    `and had applied every write acknowledged meanwhile ${fmt(of((x) => x.caughtUpMs))} ms after serving; the master took ${fmt(of((x) => x.writesDuring))} writes during each bootstrap (open loop, ${fmt(s.writesPerSec)}/s, none failed). ` +
    `Peak RSS is the replica's VmHWM once serving; the master's peak over the part was ${r.masterPeakMb.toFixed(0)} MB. Target: serving in ≤ 15 s. The baseline copies the master's database file in the same repetition, page cache warm.`
  )
}
