/**
 * Replication lag under a steady write load.
 *
 * The lag figure is the replicas' own: each replica records, for every entry it applies, the time
 * from the master's commit (the commit time the entry carries) to the moment it became visible
 * there (GET /replication/lag; one clock, one machine). The figures below from outside the cluster
 * are kept beside it as a check.
 *
 * An open-loop generator sends one-row writes to the master at a fixed rate (it does not slow
 * down when the cluster does). The reads below use `min_lsn`, which a node answers the moment it
 * has applied that LSN.
 *
 * Lag (commit on the master → visible on a replica): a prober per replica picks an LSN a little
 * ahead of the newest acknowledged one (about 10 ms of entries ahead, so the reads are parked
 * before that entry commits) and sends the same min_lsn read to the master and to the replica at
 * once. Each returns when the entry became visible on that node; lag = replica's answer − master's
 * answer. Both travel the same path to the same client, so the client's own costs cancel out.
 *
 * Read-your-write (the simple black-box bound): right after a sampled write is acknowledged, a
 * min_lsn read of its LSN goes to a replica; wait = answer − acknowledgement. It includes one
 * read round trip, so it bounds the lag from above and is what a client reading its own writes
 * from a replica waits.
 *
 * The baseline is the writes' own latency (send → acknowledgement) in the same window.
 */
import { setMaxListeners } from 'node:events'
import { Pool } from 'undici'
import { percentile } from './stats.ts'
import { insertOneBody } from './workload.ts'

export interface LagOptions {
  masterUrl: string
  replicaUrls: readonly string[]
  writesPerSec: number
  durationMs: number
  /** Read-your-write probes per second, spread over the replicas. */
  readProbesPerSec: number
}

export interface LagResult {
  /** Measured by the replicas (the worst replica's percentile). */
  lagP50Ms: number
  lagP99Ms: number
  lagSamples: number
  /** Measured from outside: the same min_lsn read on master and replica. */
  outsideLagP50Ms: number
  outsideLagP99Ms: number
  readYourWriteP50Ms: number
  readYourWriteP99Ms: number
  writeP50Ms: number
  writeP99Ms: number
  /** Writes actually sent per second (below the target only when 4096 were in flight). */
  sentWritesPerSec: number
  /** Log entries per second (group commit puts several writes in one entry). */
  entriesPerSec: number
}

const inFlightMax = 4096
const leadMs = 10
const readTimeout = 'min_lsn_timeout=10s'

export async function measureLag(options: LagOptions): Promise<LagResult> {
  const writePool = new Pool(options.masterUrl, { connections: 64 })
  const probePool = new Pool(options.masterUrl, { connections: 2 * options.replicaUrls.length })
  const replicaPools = options.replicaUrls.map((url) => new Pool(url, { connections: 4 }))
  const pools = [writePool, probePool, ...replicaPools]
  const stopProbes = new AbortController()
  // Every parked probe listens on it: two per replica plus the read-your-write probes in flight.
  setMaxListeners(0, stopProbes.signal)
  const lags: number[] = []
  const readYourWrites: number[] = []
  const writes: number[] = []
  /** Writes and read-your-write probes in flight. */
  const pending = new Set<Promise<void>>()
  const probers = new Set<Promise<void>>()
  const sampleEvery = Math.max(1, Math.round(options.writesPerSec / options.readProbesPerSec))
  let failure: unknown
  let firstLsn: number | undefined
  let newestLsn = 0
  let running = true

  const track = (work: Promise<void>, into: Set<Promise<void>> = pending) => {
    const tracked = work.catch((error: unknown) => {
      if (!stopProbes.signal.aborted) failure ??= error
    })
    into.add(tracked)
    void tracked.finally(() => into.delete(tracked))
  }

  /** Resolves with the time the node answered that it has applied `lsn`. */
  const visibleAt = async (pool: Pool, lsn: number): Promise<number> => {
    const response = await pool.request({ path: `/db/query?level=none&min_lsn=${lsn}&${readTimeout}&q=SELECT%201`, method: 'GET', signal: stopProbes.signal })
    const text = await response.body.text()
    const at = performance.now()
    if (response.statusCode !== 200) throw new Error(`min_lsn read answered HTTP ${response.statusCode}: ${text}`)
    return at
  }

  const write = async (index: number): Promise<void> => {
    const sentAt = performance.now()
    const response = await writePool.request({ path: '/db/execute', method: 'POST', headers: { 'content-type': 'application/json' }, body: insertOneBody })
    const body = (await response.body.json()) as { lsn?: number; results?: { error?: string }[] }
    const ackedAt = performance.now()
    if (response.statusCode !== 200 || body.lsn === undefined || body.results?.[0]?.error !== undefined) {
      throw new Error(`write answered HTTP ${response.statusCode}: ${JSON.stringify(body)}`)
    }
    writes.push(ackedAt - sentAt)
    firstLsn ??= body.lsn
    newestLsn = Math.max(newestLsn, body.lsn)
    if (index % sampleEvery === 0) {
      const replica = replicaPools[(index / sampleEvery) % replicaPools.length]!
      track(visibleAt(replica, body.lsn).then((at) => void readYourWrites.push(at - ackedAt)))
    }
  }

  const probe = async (replica: Pool, started: number): Promise<void> => {
    while (running && failure === undefined) {
      if (firstLsn === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 1))
        continue
      }
      const entriesPerMs = (newestLsn - firstLsn) / Math.max(1, performance.now() - started)
      const target = newestLsn + Math.max(2, Math.ceil(entriesPerMs * leadMs))
      const [onMaster, onReplica] = await Promise.all([visibleAt(probePool, target), visibleAt(replica, target)])
      lags.push(onReplica - onMaster)
    }
  }

  const startedWall = Date.now()
  const started = performance.now()
  for (const replica of replicaPools) track(probe(replica, started), probers)
  let issued = 0
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = performance.now() - started
      if (elapsed >= options.durationMs || failure !== undefined) {
        clearInterval(tick)
        resolve()
        return
      }
      const due = Math.floor((elapsed / 1000) * options.writesPerSec)
      while (issued < due && pending.size < inFlightMax) track(write(issued++))
    }, 1)
  })
  const issuedMs = performance.now() - started
  running = false
  while (pending.size > 0) await Promise.all([...pending])
  // The last probes may be parked on an LSN no write will reach: give them a moment, then cancel.
  await Promise.race([Promise.all([...probers]), new Promise((resolve) => setTimeout(resolve, 200))])
  stopProbes.abort()
  await Promise.all([...probers])
  const measured = await Promise.all(
    replicaPools.map(async (pool) => {
      const response = await pool.request({ path: `/replication/lag?since=${startedWall}`, method: 'GET' })
      const body = (await response.body.json()) as { samples: number; p50Ms: number | null; p99Ms: number | null }
      if (response.statusCode !== 200 || body.p50Ms === null || body.p99Ms === null) throw new Error(`GET /replication/lag answered ${response.statusCode}: ${JSON.stringify(body)}`)
      return body
    }),
  )
  await Promise.all(pools.map((p) => p.close()))
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error('lag measurement failed', { cause: failure })
  if (lags.length === 0 || readYourWrites.length === 0) throw new Error('no lag samples were taken')

  for (const values of [lags, readYourWrites, writes]) values.sort((a, b) => a - b)
  return {
    lagP50Ms: Math.max(...measured.map((m) => m.p50Ms!)),
    lagP99Ms: Math.max(...measured.map((m) => m.p99Ms!)),
    lagSamples: measured.reduce((sum, m) => sum + m.samples, 0),
    outsideLagP50Ms: percentile(lags, 50),
    outsideLagP99Ms: percentile(lags, 99),
    readYourWriteP50Ms: percentile(readYourWrites, 50),
    readYourWriteP99Ms: percentile(readYourWrites, 99),
    writeP50Ms: percentile(writes, 50),
    writeP99Ms: percentile(writes, 99),
    sentWritesPerSec: issued / (issuedMs / 1000),
    entriesPerSec: (newestLsn - (firstLsn ?? newestLsn)) / (issuedMs / 1000),
  }
}
