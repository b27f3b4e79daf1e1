/**
 * Loading a whole database, and taking it out and back in as SQL text, beside rqlite 8.26.8 (the
 * API Tandem speaks) on the same machine in the same repetition:
 *
 * - file: POST /db/load of a ~100 MiB SQLite file (application/octet-stream) to a fresh master
 *   with 2 replicas, timed from the start of the request until both replicas have applied the
 *   master's LSN (a replica copies the master's database when it reaches the load entry).
 *   Baseline: the same file to the leader of a fresh 3-node rqlited cluster, until every node
 *   counts every row (rqlite's load is one Raft entry: each node applies it to its own file).
 * - dump: GET /db/backup?fmt=sql of that master (seconds, bytes); baseline: rqlited's leader's.
 * - text: POST /db/load of the whole dump (text/plain) into another fresh master with 2
 *   replicas; baseline: Tandem's own load of the same rows as a file (the first figure), since
 *   rqlited cannot load it (below).
 * - slice: the first `sliceRows` rows of each dump (its schema, those INSERTs, its index, COMMIT)
 *   loaded as text by each side into a fresh cluster of its own, until every node holds them.
 *
 * Why a slice: rqlite runs SQL text with go-sqlite3's Exec, which prepares a statement and then
 * copies the rest of the text as the tail, statement after statement, so the time grows with the
 * square of the text's length (rqlite/rqlite#1016, mattn/go-sqlite3#1039). A prototype of this
 * part on this machine took 2.3 s for a 2.6 MB dump, 8 s for 5.3 MB and 26–78 s for 10.6 MB
 * (one node, then three): a 100 MB dump would take hours. The slice keeps a like-for-like
 * figure at a size rqlited can load.
 *
 * Back-of-envelope estimate, written before measuring Tandem (2 cores, virtio disk, page cache
 * warm; the rqlite figures were estimated before the prototype, which came in ~3× slower):
 *
 * - Tandem, file: the body streams to a file (~0.2 s), quick_check reads it (~0.3 s), INSERT …
 *   SELECT copies 100 MiB of rows and builds the index in one transaction (~1.5–3 s), COMMIT
 *   writes them to the WAL and fsyncs (~0.5 s); then each replica reaches the load entry and asks
 *   for a snapshot: VACUUM INTO on the master (~1 s each, both on 2 cores), the stream over
 *   loopback, write + fsync + open on the replica (~1 s): ~5–8 s in all, ~15 MiB/s.
 * - rqlited, file (estimated before the prototype): the leader writes the whole file as one Raft
 *   entry to its log and fsyncs, sends it to 2 followers that do the same, then every node
 *   replaces its database with it: ~3–6 s. The prototype took ~20 s for 126 MiB and the leader's
 *   peak RSS was ~1 GB: the entry is held whole, several times over.
 * - Dump: one INSERT per row, quote() of each value, ~1 KB a row: ~50–100 MB/s on either side,
 *   ~1–2 s for 100 MB.
 * - Tandem, text: SQLite parses and runs ~75,000 INSERTs with the index in one transaction
 *   (~2–3 s), then the same snapshots as a file load: ~6–10 s, ~1.2–1.5× the file's time.
 * - Slice (~2 MB): Tandem ~1 s, mostly the replicas' snapshots; rqlited ~2–3 s (the prototype's
 *   2.6 MB on one node): ~0.3–0.5×.
 *
 * Method: the database is built once per run with the SQLite binding in the run's directory
 * (rows of a random 1,000-character text payload, an account, a timestamp and a title, an index
 * on (account, created), 5,000 rows per transaction, until the file reaches `mb` MiB; rollback
 * journal, so the file is whole: load-source.ts). Every cluster is fresh and runs on this
 * machine; the next starts while the one before is checked and stopped, and is up before the next
 * timed step. Tandem's nodes run with --synchronous full as in every part, rqlited with its
 * defaults and -fk. Tandem is timed to the replicas' min_lsn reads of the load's LSN (no
 * polling), then checked: every node's checksum equal, and the text-loaded cluster's tables
 * equal to the file-loaded cluster's. rqlited is polled every 25 ms with SELECT count(*) at
 * level=none on every node, then checked: count, sum(account) and sum(length(body)) equal to the
 * source's on every node. Any difference throws. MB is 2^20 bytes, as in the memory figures.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { waitFor } from '../tests/harness/cluster.ts'
import { checksum, get } from '../tests/harness/http.ts'
import { NodeProcess } from '../tests/harness/node-process.ts'
import type { Rqlited } from '../tests/harness/rqlited.ts'
import { waitForLsn } from './bench-cluster.ts'
import { statusMb } from './memory.ts'
import { buildLoadSource, bodyChars, loadSourceAggregateSql, sliceDump, type LoadSource } from './load-source.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { firstRow, RqliteCluster } from './rqlite-cluster.ts'
import { spread } from './stats.ts'

export interface LoadSettings {
  reps: number
  /** The database file's size, in MiB. */
  mb: number
  /** The rows of each dump both sides load as SQL text (rqlited cannot load the whole dump in time). */
  sliceRows: number
}

export interface LoadRun {
  fileMs: number
  rqliteFileMs: number
  /** VmHWM of the node that took the file: Tandem's master, rqlited's leader. */
  masterPeakMb: number
  leaderPeakMb: number
  dumpMs: number
  dumpBytes: number
  rqliteDumpMs: number
  rqliteDumpBytes: number
  /** rqlited's dump requests answered 503 (no leader) and asked again. */
  rqliteDumpRetries: number
  /** An election moved rqlited's leadership during its file load. */
  rqliteLeaderChanged: boolean
  textMs: number
  textMasterPeakMb: number
  sliceMs: number
  sliceBytes: number
  rqliteSliceMs: number
  rqliteSliceBytes: number
}

export interface LoadSamples {
  fileBytes: number
  rows: number
  buildMs: number
  runs: LoadRun[]
}

const replicaCount = 2
const rqliteNodes = 3
const loadTimeoutMs = 180_000
const mib = 1024 ** 2
const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

export async function measureLoad(resources: Resources, s: LoadSettings, log: (line: string) => void): Promise<LoadSamples> {
  const dir = resources.path('load')
  mkdirSync(dir, { recursive: true })
  log(`[load] building a ${s.mb} MiB database with the SQLite binding`)
  const source = buildLoadSource(`${dir}/source.db`, s.mb * mib, s.sliceRows)
  log(`[load] built ${fmt(source.rows)} rows, ${(source.file.length / mib).toFixed(1)} MiB in ${fmt(source.buildMs)} ms`)
  const runs: LoadRun[] = []
  for (let rep = 1; rep <= s.reps; rep++) {
    const run = await loadOnce(resources, `load/${rep}`, source, s.sliceRows)
    runs.push(run)
    log(
      `[load ${rep}/${s.reps}] file: Tandem ${secs(run.fileMs)}, rqlited ${secs(run.rqliteFileMs)} (peak RSS ${fmt(run.masterPeakMb)} vs ${fmt(run.leaderPeakMb)} MB); ` +
        `${run.rqliteLeaderChanged ? 'rqlited elected another leader during the load; ' : ''}` +
        `dump: Tandem ${secs(run.dumpMs)} for ${fmt(run.dumpBytes / mib)} MiB, rqlited ${secs(run.rqliteDumpMs)} for ${fmt(run.rqliteDumpBytes / mib)} MiB${run.rqliteDumpRetries > 0 ? ` (asked ${run.rqliteDumpRetries + 1} times: 503, no leader)` : ''}; ` +
        `whole dump as text: Tandem ${secs(run.textMs)} (master peak RSS ${fmt(run.textMasterPeakMb)} MB); ` +
        `${fmt(s.sliceRows)}-row slice as text: Tandem ${secs(run.sliceMs)}, rqlited ${secs(run.rqliteSliceMs)}`,
    )
  }
  rmSync(dir, { recursive: true, force: true })
  return { fileBytes: source.file.length, rows: source.rows, buildMs: source.buildMs, runs }
}

/**
 * One repetition: every cluster fresh. Each cluster starts while the one before is checked and
 * stopped, and is up before the next timed step begins: starting processes on 2 cores costs
 * ~3 s a cluster, and the part would otherwise pass its ~3 minutes.
 */
async function loadOnce(resources: Resources, name: string, source: LoadSource, sliceRows: number): Promise<LoadRun> {
  const octets = 'application/octet-stream'
  const text = 'text/plain'

  const fileCluster = await startTandem(resources, `${name}/tandem-file`)
  const fileMs = await tandemLoad(fileCluster, source.file, octets)
  const dump = await download(fileCluster.master.url)
  const slice = sliceDump(dump.bytes, sliceRows)
  const rqliteFileStarting = background(RqliteCluster.start(resources, `${name}/rqlite-file`, rqliteNodes))
  const reference = await assertConverged(fileCluster, 'the file load')
  await assertAggregate(fileCluster.master.url, source.whole, 'the file load')
  const masterPeakMb = statusMb(fileCluster.master.child?.pid, 'VmHWM') ?? Number.NaN
  await stopTandem(fileCluster)

  const rqliteFileCluster = await rqliteFileStarting
  const { ms: rqliteFileMs, taker } = await rqliteLoad(rqliteFileCluster, source.file, octets, source.whole)
  const leaderPeakMb = statusMb(taker.pid, 'VmHWM') ?? Number.NaN
  const leaderAfterLoad = await rqliteFileCluster.leader()
  const rqliteDump = await rqliteDownload(rqliteFileCluster)
  const rqliteSlice = sliceDump(rqliteDump.bytes, sliceRows)
  const textStarting = background(startTandem(resources, `${name}/tandem-text`))
  await assertRqliteRows(rqliteFileCluster, source.whole)
  await rqliteFileCluster.stop()

  const textCluster = await textStarting
  const textMs = await tandemLoad(textCluster, dump.bytes, text)
  // Both slice clusters at once: rqlited's idles through Tandem's slice load (heartbeats only).
  const sliceStarting = background(startTandem(resources, `${name}/tandem-slice`))
  const rqliteSliceStarting = background(RqliteCluster.start(resources, `${name}/rqlite-slice`, rqliteNodes))
  const textTables = await assertConverged(textCluster, 'the dump load')
  if (JSON.stringify(textTables) !== JSON.stringify(reference)) {
    throw new Error(`the dump loaded as text holds other rows than the file it was taken from: ${JSON.stringify(textTables)} ≠ ${JSON.stringify(reference)}`)
  }
  const textMasterPeakMb = statusMb(textCluster.master.child?.pid, 'VmHWM') ?? Number.NaN
  await stopTandem(textCluster)

  const [sliceCluster, rqliteSliceCluster] = await Promise.all([sliceStarting, rqliteSliceStarting])
  const sliceMs = await tandemLoad(sliceCluster, slice, text)
  await assertConverged(sliceCluster, 'the slice load')
  await assertAggregate(sliceCluster.master.url, source.slice, 'the slice load')
  await stopTandem(sliceCluster)

  const { ms: rqliteSliceMs } = await rqliteLoad(rqliteSliceCluster, rqliteSlice, text, source.slice)
  await assertRqliteRows(rqliteSliceCluster, source.slice)
  await rqliteSliceCluster.stop()

  return {
    fileMs,
    rqliteFileMs,
    masterPeakMb,
    leaderPeakMb,
    dumpMs: dump.ms,
    dumpBytes: dump.bytes.length,
    rqliteDumpMs: rqliteDump.ms,
    rqliteDumpBytes: rqliteDump.bytes.length,
    rqliteDumpRetries: rqliteDump.retries,
    rqliteLeaderChanged: leaderAfterLoad !== taker,
    textMs,
    textMasterPeakMb,
    sliceMs,
    sliceBytes: slice.length,
    rqliteSliceMs,
    rqliteSliceBytes: rqliteSlice.length,
  }
}

/**
 * A start left running while other work is awaited: if that work throws first, the start's own
 * failure must not surface as an unhandled rejection (the cluster is stopped by resources.close()).
 */
function background<T>(starting: Promise<T>): Promise<T> {
  starting.catch(() => undefined)
  return starting
}

interface TandemCluster {
  master: NodeProcess
  replicas: NodeProcess[]
}

/**
 * --max-result-bytes 0: the dump's one SELECT per table counts against the limit client reads
 * have (64 MiB by default), which cuts GET /db/backup?fmt=sql of a 100 MiB database short, mid-
 * line, behind a 200 (the checksum is exempt from it; the dump is not, yet).
 */
const masterArgs = ['--synchronous', 'full', '--max-result-bytes', '0']

/**
 * A master and its replicas, the replicas started together. Their processes are stopped by
 * resources.close() like any other, but kept out of the run's memory figures: a node holding a
 * whole load says nothing about a node's steady state, and this part reports its own peaks.
 */
async function startTandem(resources: Resources, name: string): Promise<TandemCluster> {
  const nodes: NodeProcess[] = []
  resources.onClose(() => Promise.all(nodes.map((node) => node.kill('SIGKILL'))).then(() => undefined))
  const start = async (spec: Parameters<typeof NodeProcess.start>[0]) => {
    const node = await NodeProcess.start(spec)
    nodes.push(node)
    return node
  }
  const master = await start({ role: 'master', dataDir: resources.path(name, 'master'), args: masterArgs })
  const replicas = await Promise.all(
    Array.from({ length: replicaCount }, (_, i) => start({ role: 'replica', dataDir: resources.path(name, `replica${i + 1}`), masterUrl: master.url, args: ['--synchronous', 'full'] })),
  )
  // Ready means streaming from the master (GET /readyz answers 200).
  await Promise.all(replicas.map((r) => waitFor(async () => ((await get(`${r.url}/readyz`)).status === 200 ? true : undefined), 20_000, () => `replica ${r.url} streaming`)))
  return { master, replicas }
}

async function stopTandem(cluster: TandemCluster): Promise<void> {
  await Promise.all([cluster.master, ...cluster.replicas].map((node) => node.kill('SIGKILL')))
  for (const node of [cluster.master, ...cluster.replicas]) rmSync(node.spec.dataDir, { recursive: true, force: true })
}

/** POST /db/load to the master → every replica has applied the load's LSN, in ms. */
async function tandemLoad(cluster: TandemCluster, body: Buffer, contentType: string): Promise<number> {
  const started = performance.now()
  const response = await post(`${cluster.master.url}/db/load`, body, contentType)
  const lsn = (response.body as { lsn?: unknown }).lsn
  if (response.status !== 200 || typeof lsn !== 'number') throw new Error(`Tandem's load answered HTTP ${response.status}: ${response.text.slice(0, 500)}`)
  await Promise.all(cluster.replicas.map((replica) => waitForLsn(replica.url, lsn, loadTimeoutMs / 1000)))
  return performance.now() - started
}

/** POST /db/load to the leader → every node counts the rows (`want`: loadSourceAggregateSql's row); the time, and the node that took it. */
async function rqliteLoad(cluster: RqliteCluster, body: Buffer, contentType: string, want: unknown[]): Promise<{ ms: number; taker: Rqlited }> {
  const taker = await cluster.leader()
  const started = performance.now()
  const response = await post(`${taker.url}/db/load`, body, contentType)
  const results = (response.body as { results?: { error?: string }[] }).results
  if (response.status !== 200 || results === undefined || results.some((r) => r.error !== undefined)) {
    throw new Error(`rqlited's load answered HTTP ${response.status}: ${response.text.slice(0, 500)}`)
  }
  await cluster.waitForAll('SELECT count(*) FROM item', [want[0]], loadTimeoutMs)
  return { ms: performance.now() - started, taker }
}

/** Every rqlited node holds the source's rows, by loadSourceAggregateSql. */
async function assertRqliteRows(cluster: RqliteCluster, want: unknown[]): Promise<void> {
  for (const node of cluster.nodes) {
    const got = await firstRow(node.url, loadSourceAggregateSql)
    if (got !== JSON.stringify(want)) throw new Error(`rqlited node ${node.nodeId} holds other rows than the source: ${got} ≠ ${JSON.stringify(want)}`)
  }
}

/** Every node's checksum and LSN equal to the master's; the master's tables' checksums. */
async function assertConverged(cluster: TandemCluster, what: string): Promise<Record<string, string>> {
  const [master, ...replicas] = await Promise.all([cluster.master, ...cluster.replicas].map((node) => checksum(node.url)))
  for (const [i, replica] of replicas.entries()) {
    if (replica.lsn !== master!.lsn || replica.checksum !== master!.checksum) {
      throw new Error(`after ${what}, replica ${i + 1} answers LSN ${replica.lsn} checksum ${replica.checksum}; the master LSN ${master!.lsn} checksum ${master!.checksum}`)
    }
  }
  return master!.tables
}

async function assertAggregate(url: string, want: unknown[], what: string): Promise<void> {
  const got = await firstRow(url, loadSourceAggregateSql)
  if (got !== JSON.stringify(want)) throw new Error(`after ${what}, the master holds other rows than the source: ${got} ≠ ${JSON.stringify(want)}`)
}

/** GET /db/backup?fmt=sql, timed; with `retryStatus`, that answer (and only that) is returned instead of thrown. */
async function download(url: string, retryStatus?: number): Promise<{ bytes: Buffer; ms: number; isRetry?: true }> {
  const started = performance.now()
  const { status, bytes } = await request(`${url}/db/backup?fmt=sql`, { signal: AbortSignal.timeout(loadTimeoutMs) })
  const ms = performance.now() - started
  if (status === retryStatus) return { bytes, ms, isRetry: true }
  if (status !== 200) throw new Error(`GET ${url}/db/backup?fmt=sql answered HTTP ${status}: ${bytes.toString('utf8', 0, 500)}`)
  if (!bytes.subarray(-8).equals(Buffer.from('COMMIT;\n'))) throw new Error(`GET ${url}/db/backup?fmt=sql ended without its COMMIT (${bytes.length} bytes): ${bytes.toString('utf8', bytes.length - 200)}`)
  return { bytes, ms }
}

/**
 * rqlited's dump, from its leader. A 503 (`leader not found`: the leader lost its lease just
 * after a large load, and an election is under way) is asked again of the leader that follows;
 * only the answered request is timed. Returns how many were asked again.
 */
async function rqliteDownload(cluster: RqliteCluster): Promise<{ bytes: Buffer; ms: number; retries: number }> {
  const retriesMax = 5
  for (let retries = 0; ; retries++) {
    const dump = await download((await cluster.leader()).url, retries < retriesMax ? 503 : undefined)
    if (dump.isRetry !== true) return { bytes: dump.bytes, ms: dump.ms, retries }
  }
}

async function post(url: string, body: Buffer, contentType: string): Promise<{ status: number; text: string; body: unknown }> {
  const answer = await request(url, { method: 'POST', headers: { 'content-type': contentType }, body: body as BodyInit, signal: AbortSignal.timeout(loadTimeoutMs) })
  const text = answer.bytes.toString('utf8')
  try {
    return { status: answer.status, text, body: JSON.parse(text) as unknown }
  } catch {
    return { status: answer.status, text, body: undefined }
  }
}

/** fetch(), read whole; a failure names the request (fetch's own says only `terminated`). */
async function request(url: string, init: RequestInit): Promise<{ status: number; bytes: Buffer }> {
  try {
    const response = await fetch(url, init)
    return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()) }
  } catch (error) {
    throw new Error(`${init.method ?? 'GET'} ${url} failed: ${String(error)} (${String((error as { cause?: unknown }).cause)})`, { cause: error })
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`
const rate = (bytes: number, ms: number) => bytes / mib / (ms / 1000)

export function loadFigures(r: LoadSamples, s: LoadSettings): Figure[] {
  const of = (pick: (run: LoadRun) => number) => r.runs.map(pick)
  const size = `${fmt(r.fileBytes / mib)} MiB`
  const slice = `${fmt(s.sliceRows)}-row slice of the dump (~${(median(of((x) => x.sliceBytes)) / mib).toFixed(1)} MiB)`
  const rqlite = `rqlited, ${rqliteNodes} nodes`
  return [
    figure('load_file_s', `Load a ${size} SQLite file: POST /db/load to the master → both replicas at its LSN`, 's', of((x) => x.fileMs / 1000), [
      { label: `${rqlite}: POST /db/load to the leader → every node counts every row`, unit: 's', samples: of((x) => x.rqliteFileMs / 1000) },
    ]),
    figure('load_file_rate', `Load a ${size} SQLite file, rate`, 'MB/s', of((x) => rate(r.fileBytes, x.fileMs)), [
      { label: `${rqlite}, the same file`, unit: 'MB/s', samples: of((x) => rate(r.fileBytes, x.rqliteFileMs)) },
    ]),
    figure('load_file_rss', `Load a ${size} SQLite file: the master's peak RSS`, 'MB', of((x) => x.masterPeakMb), [
      { label: `${rqlite}: the leader's peak RSS`, unit: 'MB', samples: of((x) => x.leaderPeakMb) },
    ]),
    figure('dump_s', `Dump it: GET /db/backup?fmt=sql from the master (~${fmt(median(of((x) => x.dumpBytes)) / mib)} MiB of SQL text)`, 's', of((x) => x.dumpMs / 1000), [
      { label: `${rqlite}: the same from the leader`, unit: 's', samples: of((x) => x.rqliteDumpMs / 1000) },
    ]),
    figure('dump_rate', 'Dump it, rate', 'MB/s', of((x) => rate(x.dumpBytes, x.dumpMs)), [
      { label: `${rqlite}, its dump`, unit: 'MB/s', samples: of((x) => rate(x.rqliteDumpBytes, x.rqliteDumpMs)) },
    ]),
    figure('load_text_s', 'Load the whole dump as SQL text into a fresh master → both replicas at its LSN', 's', of((x) => x.textMs / 1000), [
      { label: 'Tandem, the same rows as a SQLite file (first row; rqlited cannot load this text: see the note)', unit: 's', samples: of((x) => x.fileMs / 1000) },
    ]),
    figure('load_text_rate', 'Load the whole dump as SQL text, rate', 'MB/s', of((x) => rate(x.dumpBytes, x.textMs)), [
      { label: 'Tandem, the same rows as a SQLite file', unit: 'MB/s', samples: of((x) => rate(r.fileBytes, x.fileMs)) },
    ]),
    figure('load_text_rss', "Load the whole dump as SQL text: the master's peak RSS", 'MB', of((x) => x.textMasterPeakMb), [
      { label: "Tandem, the master's peak RSS taking the file", unit: 'MB', samples: of((x) => x.masterPeakMb) },
    ]),
    figure('load_slice_s', `Load a ${slice} as SQL text → every node holds it`, 's', of((x) => x.sliceMs / 1000), [
      { label: `${rqlite}: its own dump's slice`, unit: 's', samples: of((x) => x.rqliteSliceMs / 1000) },
    ]),
    figure('load_slice_rate', `Load a ${slice} as SQL text, rate`, 'MB/s', of((x) => rate(x.sliceBytes, x.sliceMs)), [
      { label: `${rqlite}, its own dump's slice`, unit: 'MB/s', samples: of((x) => rate(x.rqliteSliceBytes, x.rqliteSliceMs)) },
    ]),
  ]
}

export function loadNote(r: LoadSamples, s: LoadSettings): string {
  const of = (pick: (run: LoadRun) => number) => median(r.runs.map(pick))
  return (
    `Load: a ${(r.fileBytes / mib).toFixed(1)} MiB SQLite file (${fmt(r.rows)} rows with a ${bodyChars}-character random text payload, an index on two columns; built in ${(r.buildMs / 1000).toFixed(1)} s with the SQLite binding) ` +
    `loaded with POST /db/load into a fresh master with ${replicaCount} replicas (--synchronous full), timed from the request's start until both replicas had applied the load's LSN (each copies the master's database); ` +
    `beside a fresh ${rqliteNodes}-node rqlited 8.26.8 cluster (defaults, -fk) taking the same file at its leader, timed until every node counted every row at level=none (polled every 25 ms). ` +
    `Then each side's dump (GET /db/backup?fmt=sql) is timed, and loaded as text into a fresh cluster of the same shape; afterwards every Tandem node's checksum equals its master's and the text-loaded tables equal the file-loaded ones, and every rqlited node's count, sum(account) and sum(length(body)) equal the source's. ` +
    `rqlited cannot load the whole ${fmt(of((x) => x.rqliteDumpBytes) / mib)} MiB dump as text: it runs SQL text through go-sqlite3, which copies the rest of the text after each statement, so its time grows with the square of the text's length (rqlite/rqlite#1016; 10.6 MB took 26–78 s in a trial, 100 MB would take hours); ` +
    `both sides load the first ${fmt(s.sliceRows)} rows of their dump instead (schema, index and COMMIT kept), each into a fresh cluster. ` +
    `${rqliteElectionText(r.runs)} Loads and dumps go to the node every rqlited node names as leader. ` +
    `Tandem's masters run with --max-result-bytes 0: the dump's SELECTs count against the 64 MiB limit client reads have, which cuts the dump of this database short behind a 200. ` +
    `Peak RSS is VmHWM read once the load is done; the nodes of this part stay out of the memory figures. MB is 2^20 bytes.`
  )
}

/** Elections are seen on a busy machine only: the load's one large Raft entry delays heartbeats past their timeout. */
function rqliteElectionText(runs: LoadRun[]): string {
  const moved = runs.filter((x) => x.rqliteLeaderChanged).length
  const retried = runs.filter((x) => x.rqliteDumpRetries > 0).length
  if (moved === 0 && retried === 0) return 'rqlited kept its leader through every file load.'
  return `rqlited elected another leader during ${moved} of ${runs.length} file loads (its one large Raft entry delays heartbeats), and its dump answered 503 (no leader) and was asked again in ${retried}.`
}

const median = (values: number[]) => spread(values).median
