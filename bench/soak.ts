/**
 * RSS over a write soak: a master and 2 replicas take one-row INSERTs from 64 keep-alive
 * connections flat out for `seconds`; every node's resident set (VmRSS) is read once a second.
 * Growth is the RSS at the end of the soak ÷ the RSS once warmed up (`warmUpSeconds` in, when
 * the JIT, the connections, the statement caches and SQLite's page cache have settled): a leak
 * shows as a ratio that keeps rising with the soak's length, a bounded heap as ~1.0×.
 *
 * Estimate: every buffer and cache in the write path is bounded (the write queue, the log
 * batches, the statement cache, SQLite's page cache of ~2 MiB a connection), so the RSS should
 * rise over the first seconds and then sit within a few % (V8 grows its old space in steps, and
 * returns it lazily): growth ~1.0–1.05×.
 */
import { closedLoop } from './http-load.ts'
import { startProcessCluster } from './bench-cluster.ts'
import { statusMb } from './memory.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'
import { insertOneBody } from './workload.ts'

export interface SoakSettings {
  seconds: number
  connections: number
}

export interface SoakNode {
  label: string
  kind: 'master' | 'replica'
  idleMb: number
  startMb: number
  endMb: number
  peakMb: number
  /** endMb ÷ startMb. */
  growth: number
}

export interface SoakResult {
  seconds: number
  warmUpSeconds: number
  writesPerSec: number
  nodes: SoakNode[]
}

/** 10 % of the soak, at least 5 s and at most 30 s. */
export const warmUpSecondsOf = (seconds: number) => Math.min(30, Math.max(5, Math.round(seconds / 10)))

export async function measureSoak(resources: Resources, s: SoakSettings, log: (line: string) => void): Promise<SoakResult> {
  const cluster = await startProcessCluster(resources, 'soak', 2)
  const nodes = [
    { label: 'master', kind: 'master' as const, node: cluster.master },
    ...cluster.replicas.map((node, i) => ({ label: `replica${i + 1}`, kind: 'replica' as const, node })),
  ]
  const rss = () => nodes.map(({ node }) => statusMb(node.child?.pid) ?? Number.NaN)
  const warmUpSeconds = warmUpSecondsOf(s.seconds)
  try {
    const idle = rss()
    const series: { atSec: number; mb: number[] }[] = []
    const started = performance.now()
    const sampler = setInterval(() => {
      const atSec = (performance.now() - started) / 1000
      series.push({ atSec, mb: rss() })
      if (Math.round(atSec) % 10 === 0) log(`[soak ${Math.round(atSec)} s] RSS ${nodes.map((n, i) => `${n.label} ${series.at(-1)!.mb[i]!.toFixed(0)} MB`).join(', ')}`)
    }, 1000)
    let writesPerSec: number
    try {
      log(`[soak] ${s.connections} connections writing for ${s.seconds} s; growth from ${warmUpSeconds} s in to the end`)
      writesPerSec = (await closedLoop(cluster.master.url + '/db/execute', { connections: s.connections, durationSec: s.seconds, body: insertOneBody })).perSec
    } finally {
      clearInterval(sampler)
    }
    const start = series.find((sample) => sample.atSec >= warmUpSeconds)
    const end = series.at(-1)
    if (start === undefined || end === undefined || end === start) throw new Error(`the soak took too few RSS samples (${series.length})`)
    return {
      seconds: s.seconds,
      warmUpSeconds,
      writesPerSec,
      nodes: nodes.map(({ label, kind, node }, i) => ({
        label,
        kind,
        idleMb: idle[i]!,
        startMb: start.mb[i]!,
        endMb: end.mb[i]!,
        peakMb: statusMb(node.child?.pid, 'VmHWM') ?? Number.NaN,
        growth: end.mb[i]! / start.mb[i]!,
      })),
    }
  } finally {
    await Promise.all([cluster.master, ...cluster.replicas].map((node) => node.kill('SIGKILL')))
  }
}

/** The master's growth, and the replica that grew most. */
export function soakFigures(r: SoakResult): Figure[] {
  const master = r.nodes.find((n) => n.kind === 'master')!
  const replica = r.nodes.filter((n) => n.kind === 'replica').sort((a, b) => b.growth - a.growth)[0]!
  const at = `${r.warmUpSeconds} s into the soak`
  return [
    figure('soak_rss_master', `RSS at the end of a ${r.seconds} s write soak, master`, 'MB', [master.endMb], [{ label: `the master's RSS ${at}`, unit: 'MB', samples: [master.startMb] }]),
    figure('soak_rss_replica', `RSS at the end of a ${r.seconds} s write soak, the replica that grew most`, 'MB', [replica.endMb], [
      { label: `that replica's RSS ${at}`, unit: 'MB', samples: [replica.startMb] },
    ]),
  ]
}

export function soakNote(r: SoakResult, connections: number): string {
  const nodes = r.nodes.map((n) => `${n.label} ${n.idleMb.toFixed(0)} → ${n.startMb.toFixed(0)} → ${n.endMb.toFixed(0)} MB (peak ${n.peakMb.toFixed(0)}, ×${n.growth.toFixed(3)})`).join('; ')
  return (
    `Soak: a fresh master and 2 replicas take one-row INSERTs from ${connections} connections flat out for ${r.seconds} s (${Math.round(r.writesPerSec).toLocaleString('en-US')} writes/s); ` +
    `RSS (VmRSS) idle → ${r.warmUpSeconds} s in → at the end: ${nodes}. One soak per run: the soak rows show one sample, not a median. Target: growth < 1.10× over 5 minutes (\`--soak-seconds 300\`).`
  )
}
