/**
 * One writer's latency, as percentiles: the same one-row INSERT sent over one keep-alive
 * connection, one at a time, timed per request with a sub-millisecond clock (autocannon's
 * percentiles are whole milliseconds). The baseline is what one durable write costs at best on
 * this machine: raw SQLite's commit of the same row (WAL, synchronous=FULL), timed the same way,
 * plus the node:http floor's round trip from the same client.
 *
 * Back-of-envelope estimate, written before measuring: a raw commit ~100 µs (one fsync), the
 * floor's round trip ~60–80 µs; Tandem's write at 1 client ~400 µs (see run.ts): about 2.4× the
 * sum at p50, the mean a little above the median.
 */
import { Agent, request } from 'undici'
import { DatabaseSync } from '@photostructure/sqlite'
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createTableSql, insertOneBody, insertOneSql, payload } from './workload.ts'

export interface LatencySample {
  p50Us: number
  p99Us: number
}

function percentiles(micros: number[]): LatencySample {
  const sorted = [...micros].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50Us: at(0.5), p99Us: at(0.99) }
}

/**
 * `count` POSTs of a one-row INSERT body to `url`, one at a time, after `warmup` untimed ones;
 * with `gapMs`, each answered write is followed by that pause (sparse writes: on Tandem each
 * commit then goes to the replicas at once instead of sharing a held frame).
 */
export async function httpWriteLatency(url: string, count: number, warmup = 200, gapMs = 0): Promise<LatencySample> {
  const agent = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 })
  try {
    const micros: number[] = []
    for (let i = 0; i < warmup + count; i++) {
      const started = performance.now()
      const response = await request(url, { method: 'POST', body: insertOneBody, headers: { 'content-type': 'application/json' }, dispatcher: agent })
      const text = await response.body.text()
      if (response.statusCode !== 200) throw new Error(`a timed write answered HTTP ${response.statusCode}: ${text}`)
      if (i >= warmup) micros.push((performance.now() - started) * 1000)
      if (gapMs > 0) await new Promise((resolve) => setTimeout(resolve, gapMs))
    }
    return percentiles(micros)
  } finally {
    await agent.close()
  }
}

/** `count` one-row transactions on a fresh file in `dir`, each timed from BEGIN to COMMIT's return. */
export function rawCommitLatency(dir: string, count: number): LatencySample {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const db = new DatabaseSync(join(dir, 'raw.db'))
  try {
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = FULL')
    db.exec(createTableSql)
    const insert = db.prepare(insertOneSql)
    const micros: number[] = []
    for (let i = 0; i < count; i++) {
      const started = performance.now()
      db.exec('BEGIN IMMEDIATE')
      insert.run(payload)
      db.exec('COMMIT')
      micros.push((performance.now() - started) * 1000)
    }
    return percentiles(micros)
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
