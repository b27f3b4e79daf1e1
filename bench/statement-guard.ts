/**
 * What stopping statements costs: the same cluster (a master and 2 replicas, synchronous=full)
 * with the statement guard (native/statement-guard.c: a progress handler and a statement-start
 * trace on every client connection, --query-timeout 30s, the default) beside one started with
 * TANDEM_UNSAFE_NO_STATEMENT_GUARD=1, back to back in each repetition: 64-connection HTTP writes
 * on the master and point reads on a replica (paired-clusters.ts).
 *
 * Estimate before measuring: the trace callback reads the clock once per statement (~25 ns via
 * the vDSO); the progress handler runs every 1000 VM steps, which a point read or a one-row
 * INSERT never reaches; a read thread stores the read's id in a shared word before and after it.
 * Against ~20–40 µs of CPU per request: ~0.99×, within the noise.
 */
import { measurePair, pointReadIds, startPairedCluster, type PairResult, type PairSettings } from './paired-clusters.ts'
import { figure, type Figure } from './report.ts'
import type { Resources } from './resources.ts'

export type StatementGuardSettings = PairSettings
export type StatementGuardResult = PairResult<'guarded' | 'unguarded'>

export async function measureStatementGuard(resources: Resources, s: StatementGuardSettings, log: (line: string) => void): Promise<StatementGuardResult> {
  const guarded = await startPairedCluster(resources, { name: 'guard-on', args: ['--query-timeout', '30s'], headers: {}, dispatcher: undefined })
  const unguarded = await startPairedCluster(resources, { name: 'guard-off', args: [], env: { TANDEM_UNSAFE_NO_STATEMENT_GUARD: '1' }, headers: {}, dispatcher: undefined })
  return measurePair(s, { guarded, unguarded }, (rep, r) =>
    log(`statement guard ${rep + 1}/${s.reps}: writes ${Math.round(r.writes.guarded.at(-1)!)} vs ${Math.round(r.writes.unguarded.at(-1)!)}/s, reads ${Math.round(r.reads.guarded.at(-1)!)} vs ${Math.round(r.reads.unguarded.at(-1)!)}/s`),
  )
}

export function statementGuardFigures(r: StatementGuardResult, s: StatementGuardSettings): Figure[] {
  return [
    figure('guard_writes', `HTTP writes with statement time limits (--query-timeout 30s), ${s.connections} clients`, 'tx/s', r.writes.guarded, [
      { label: `the same cluster without the statement guard, ${s.connections} clients`, unit: 'tx/s', samples: r.writes.unguarded },
    ]),
    figure('guard_reads', `HTTP point reads on a replica with statement time limits, ${s.connections} connections`, 'reads/s', r.reads.guarded, [
      { label: `the same without the statement guard, ${s.connections} connections`, unit: 'reads/s', samples: r.reads.unguarded },
    ]),
    figure('guard_write_cpu', "The master's CPU per write with statement time limits", 'µs', r.writeCpuUs.guarded, [{ label: 'the same without the guard', unit: 'µs', samples: r.writeCpuUs.unguarded }]),
    figure('guard_read_cpu', "The replica's CPU per point read with statement time limits", 'µs', r.readCpuUs.guarded, [{ label: 'the same without the guard', unit: 'µs', samples: r.readCpuUs.unguarded }]),
  ]
}

export function statementGuardNote(s: StatementGuardSettings): string {
  return `Statement guard: two clusters of a master and 2 replicas (synchronous=full), one with Tandem's statement guard loaded on every client connection (--query-timeout 30s), the other started with TANDEM_UNSAFE_NO_STATEMENT_GUARD=1 (no extension loaded: statements cannot be stopped); autocannon with ${s.connections} keep-alive connections, ${s.seconds} s per run, alternating first in each repetition. Writes: one-row INSERTs on the master. Reads: point reads by primary key over ${pointReadIds} ids on the first replica, level=none. CPU per request: the serving node's user + system time (/proc) over the run ÷ the requests answered.`
}
