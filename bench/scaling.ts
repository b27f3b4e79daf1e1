/**
 * The scaling curve: HTTP writes/s (64 keep-alive clients, one-row INSERTs) and replication lag
 * with 0, 1, 2 and 4 replicas, and point reads/s over HTTP from 1 and from 2 replicas, printed
 * as one table. Every process runs on this one machine, so the table also records how busy its
 * cores were during each figure: where they were full, the figure is this machine's, not the
 * design's.
 *
 * Back-of-envelope estimate, written before measuring (2 cores): with 0 replicas the master and
 * autocannon share both cores (~30k writes/s, no replication work). Each replica decodes and
 * applies every entry and fsyncs it, ~15–25 % of the master's CPU per write, on the same two
 * cores: ~0.8× per added replica, so 4 replicas ≈ 0.5× of 0. Lag at half the rate grows with the
 * replicas (more processes queue for the cores): p50 ~0.5–1 ms, p99 a few ms at 4. Reads: one
 * replica under 64 connections already holds a core with autocannon on the other, so 2 replicas
 * serve ~1.0–1.2× one: no gain without cores to spare.
 *
 * Method: a fresh cluster per replica count. Writes: `reps` closed-loop runs of `seconds` each.
 * Lag: `reps` runs at half that count's median write rate (replication-lag.ts). Reads, in the
 * 2-replica cluster: `reps` × (64 connections to one replica, then 32 to each of the two at once,
 * back to back), over `idsCount` point reads of rows the writes left.
 */
import { rmSync } from 'node:fs'
import { rowCount, startProcessCluster } from './bench-cluster.ts'
import { processCpuSeconds, withMachineBusy } from './cpu.ts'
import { closedLoop } from './http-load.ts'
import { loadText, readLoad, readPaths, type ReadLoad } from './http-reads.ts'
import { measureLag, type LagResult } from './replication-lag.ts'
import { ratioText, renderMarkdown, renderText, spreadText } from './report.ts'
import type { Resources } from './resources.ts'
import { pairedRatios, spread } from './stats.ts'
import { insertOneBody } from './workload.ts'

export interface ScalingSettings {
  reps: number
  seconds: number
  connections: number
  replicaCounts: readonly number[]
  readProbesPerSec: number
}

export interface WriteRun {
  perSec: number
  machineBusy: number | undefined
  /** Cores the master process used (CPU seconds ÷ wall seconds): near 1.0, its event loop is full. */
  masterCores: number | undefined
}

export interface ScalingLevel {
  replicas: number
  writes: WriteRun[]
  /** The rate lag was measured at: half the median of `writes`. */
  lagWritesPerSec: number
  /** Empty with 0 replicas. */
  lag: (LagResult & { machineBusy: number | undefined })[]
}

export interface ScalingSamples {
  levels: ScalingLevel[]
  /** Reads in the 2-replica cluster: all to one replica, then spread over both. */
  reads: { one: ReadLoad[]; two: ReadLoad[] } | undefined
}

const fmt = (value: number) => Math.round(value).toLocaleString('en-US')

export async function measureScaling(resources: Resources, s: ScalingSettings, log: (line: string) => void): Promise<ScalingSamples> {
  const out: ScalingSamples = { levels: [], reads: undefined }
  for (const replicas of s.replicaCounts) {
    const name = `scaling-${replicas}`
    const cluster = await startProcessCluster(resources, name, replicas)
    const executeUrl = `${cluster.master.url}/db/execute`
    try {
      await closedLoop(executeUrl, { connections: s.connections, durationSec: 1, body: insertOneBody })
      const level: ScalingLevel = { replicas, writes: [], lagWritesPerSec: 0, lag: [] }
      for (let rep = 1; rep <= s.reps; rep++) {
        const before = await rowCount(cluster.master.url)
        const masterPid = [cluster.master.child?.pid]
        const cpuBefore = processCpuSeconds(masterPid)
        const started = performance.now()
        const { result, busy } = await withMachineBusy(() => closedLoop(executeUrl, { connections: s.connections, durationSec: s.seconds, body: insertOneBody }))
        const cpuAfter = processCpuSeconds(masterPid)
        const masterCores = cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / ((performance.now() - started) / 1000)
        if ((await rowCount(cluster.master.url)) - before < result.ok) throw new Error('writes were answered 2xx without inserting their rows')
        level.writes.push({ perSec: result.perSec, machineBusy: busy, masterCores })
        log(`[scaling ${replicas} replicas ${rep}/${s.reps}] writes, ${s.connections} clients: ${fmt(result.perSec)} tx/s, master ${masterCores?.toFixed(2) ?? '?'} cores, machine ${percent(busy)} busy`)
      }
      level.lagWritesPerSec = Math.max(100, Math.round(spread(level.writes.map((w) => w.perSec)).median / 2 / 100) * 100)
      for (let rep = 1; replicas > 0 && rep <= s.reps; rep++) {
        const { result, busy } = await withMachineBusy(() =>
          measureLag({
            masterUrl: cluster.master.url,
            replicaUrls: cluster.replicas.map((r) => r.url),
            writesPerSec: level.lagWritesPerSec,
            durationMs: s.seconds * 1000,
            readProbesPerSec: s.readProbesPerSec,
          }),
        )
        level.lag.push({ ...result, machineBusy: busy })
        log(`[scaling ${replicas} replicas ${rep}/${s.reps}] lag at ${fmt(level.lagWritesPerSec)} writes/s: p50 ${result.lagP50Ms.toFixed(2)} ms, p99 ${result.lagP99Ms.toFixed(2)} ms, machine ${percent(busy)} busy`)
      }
      if (replicas === 2) out.reads = await measureReadsOverReplicas(cluster.replicas.map((r) => ({ url: r.url, pid: r.child?.pid })), s, log)
      out.levels.push(level)
    } finally {
      await Promise.all([cluster.master, ...cluster.replicas].map((node) => node.kill('SIGKILL')))
      rmSync(resources.path(name), { recursive: true, force: true })
    }
  }
  return out
}

async function measureReadsOverReplicas(replicas: { url: string; pid: number | undefined }[], s: ScalingSettings, log: (line: string) => void): Promise<{ one: ReadLoad[]; two: ReadLoad[] }> {
  const [first, second] = replicas
  if (first === undefined || second === undefined) throw new Error('reads over replicas need two replicas')
  const paths = await readPaths(first.url)
  await Promise.all(replicas.map((r) => closedLoop(r.url, { connections: s.connections / 2, durationSec: 1, paths })))
  const out = { one: [] as ReadLoad[], two: [] as ReadLoad[] }
  for (let rep = 1; rep <= s.reps; rep++) {
    out.one.push(await readLoad(first.url, paths, s.connections, s.seconds, first.pid))
    log(`[scaling reads ${rep}/${s.reps}] 1 replica, ${s.connections} connections: ${loadText(out.one.at(-1)!)}`)
    const { result: both, busy } = await withMachineBusy(() => Promise.all(replicas.map((r) => readLoad(r.url, paths, s.connections / 2, s.seconds, r.pid))))
    const cores = both.every((b) => b.nodeCores !== undefined) ? both.reduce((sum, b) => sum + b.nodeCores!, 0) : undefined
    out.two.push({ perSec: both.reduce((sum, b) => sum + b.perSec, 0), latencyP50Ms: Math.max(...both.map((b) => b.latencyP50Ms)), nodeCores: cores, machineBusy: busy })
    log(`[scaling reads ${rep}/${s.reps}] 2 replicas, ${s.connections / 2} connections each: ${loadText(out.two.at(-1)!)}`)
  }
  return out
}

function percent(busy: number | undefined): string {
  return busy === undefined ? '?' : `${(busy * 100).toFixed(0)} %`
}

/** A figure is called core-bound when the machine was at least this busy while it was measured. */
const coreBoundBusy = 0.9

const busyText = (values: (number | undefined)[]) => {
  const known = values.filter((v) => v !== undefined)
  return known.length === 0 ? '?' : percent(spread(known).median)
}

const coresText = (values: (number | undefined)[]) => {
  const known = values.filter((v) => v !== undefined)
  return known.length === 0 ? '?' : spread(known).median.toFixed(2)
}

const header = ['Replicas', 'Writes/s, 64 clients', '÷ 0 replicas', 'Master cores', 'Machine busy', 'Lag at writes/s', 'Lag p50 (ms)', 'Lag p99 (ms)', 'Machine busy', 'Reads/s, 64 connections', '÷ 1 replica', 'Machine busy']

function tableRows(t: ScalingSamples): string[][] {
  const zero = t.levels.find((l) => l.replicas === 0)
  return t.levels.map((level) => {
    const writes = level.writes.map((w) => w.perSec)
    const lag = level.lag
    const reads = level.replicas === 1 ? t.reads?.one : level.replicas === 2 ? t.reads?.two : undefined
    return [
      String(level.replicas),
      spreadText(spread(writes), 'tx/s'),
      zero === undefined ? '—' : ratioText(pairedRatios(writes, zero.writes.map((w) => w.perSec))),
      coresText(level.writes.map((w) => w.masterCores)),
      busyText(level.writes.map((w) => w.machineBusy)),
      lag.length === 0 ? '—' : fmt(level.lagWritesPerSec),
      lag.length === 0 ? '—' : spreadText(spread(lag.map((r) => r.lagP50Ms)), 'ms'),
      lag.length === 0 ? '—' : spreadText(spread(lag.map((r) => r.lagP99Ms)), 'ms'),
      lag.length === 0 ? '—' : busyText(lag.map((r) => r.machineBusy)),
      reads === undefined ? '—' : spreadText(spread(reads.map((r) => r.perSec)), 'reads/s'),
      reads === undefined || t.reads === undefined ? '—' : ratioText(pairedRatios(reads.map((r) => r.perSec), t.reads.one.map((r) => r.perSec))),
      reads === undefined ? '—' : busyText(reads.map((r) => r.machineBusy)),
    ]
  })
}

/** The table's figures for --json: medians, spreads and per-repetition ratios. */
export function scalingSummary(t: ScalingSamples): Record<string, unknown>[] {
  const zero = t.levels.find((l) => l.replicas === 0)
  return t.levels.map((level) => {
    const writes = level.writes.map((w) => w.perSec)
    const reads = level.replicas === 1 ? t.reads?.one : level.replicas === 2 ? t.reads?.two : undefined
    return {
      replicas: level.replicas,
      writesPerSec: spread(writes),
      writesRatioToZeroReplicas: zero === undefined ? null : pairedRatios(writes, zero.writes.map((w) => w.perSec)),
      lagWritesPerSec: level.lag.length === 0 ? null : level.lagWritesPerSec,
      lagP50Ms: level.lag.length === 0 ? null : spread(level.lag.map((r) => r.lagP50Ms)),
      lagP99Ms: level.lag.length === 0 ? null : spread(level.lag.map((r) => r.lagP99Ms)),
      readsPerSec: reads === undefined ? null : spread(reads.map((r) => r.perSec)),
      readsRatioToOneReplica: reads === undefined || t.reads === undefined ? null : pairedRatios(reads.map((r) => r.perSec), t.reads.one.map((r) => r.perSec)),
    }
  })
}

export const scalingText = (t: ScalingSamples) => renderText(header, tableRows(t))
export const scalingMarkdown = (t: ScalingSamples) => renderMarkdown(header, tableRows(t))

/** Which figures were bound by the cores, in plain sentences drawn from the CPU readings. */
export function scalingNote(t: ScalingSamples, s: ScalingSettings, cores: number): string {
  const median = (values: (number | undefined)[]) => {
    const known = values.filter((v) => v !== undefined)
    return known.length === 0 ? undefined : spread(known).median
  }
  const bound = (busy: number | undefined) => busy !== undefined && busy >= coreBoundBusy
  const figures: string[] = []
  const others: string[] = []
  for (const level of t.levels) {
    ;(bound(median(level.writes.map((w) => w.machineBusy))) ? figures : others).push(`writes/s with ${level.replicas}`)
    if (level.lag.length > 0) (bound(median(level.lag.map((r) => r.machineBusy))) ? figures : others).push(`lag with ${level.replicas}`)
  }
  if (t.reads !== undefined) {
    ;(bound(median(t.reads.one.map((r) => r.machineBusy))) ? figures : others).push('reads/s from 1 replica')
    ;(bound(median(t.reads.two.map((r) => r.machineBusy))) ? figures : others).push('reads/s from 2')
  }
  const masterCores = t.levels.map((l) => `${median(l.writes.map((w) => w.masterCores))?.toFixed(2) ?? '?'} with ${l.replicas}`).join(', ')
  const list = (items: string[]) => (items.length === 0 ? 'none' : items.join('; '))
  return (
    `Scaling: a fresh master per row with that many replicas, every process on this one ${cores}-core machine with the load generator; writes ${s.reps} × ${s.seconds} s closed loop, ` +
    `lag ${s.reps} × ${s.seconds} s open loop at half that row's median write rate (replication-lag.ts), reads ${s.reps} × ${s.seconds} s of 64 connections to one replica, then 32 to each of two at once, in the 2-replica cluster. ` +
    `Bound by this machine's ${cores} cores (both ≥ ${coreBoundBusy * 100} % busy while measured): ${list(figures)}. Not bound by them: ${list(others)}. ` +
    `During the write runs the master process used ${masterCores} replicas (cores; 1.00 is its event loop full). ` +
    `Every replica applies and fsyncs every write on the same ${cores} cores as the master and the load generator, so here an added replica takes CPU from the others: this table cannot show how Tandem scales on a machine with cores to spare.`
  )
}
